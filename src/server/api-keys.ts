/**
 * API keys at the GraphQL edge (HTTP, SSE and WebSocket alike): the caller is authenticated once per
 * request (a WebSocket once per connection, from `connectionParams`), its key goes into the context as
 * `auth`, and each operation's root fields are checked against the key's scopes and rate limit before
 * anything runs. Without keys configured nothing is checked and `auth` stays absent.
 */
import {
  type DocumentNode,
  GraphQLError,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type AuthFailure, authenticate, authorize, type KeyLookup } from '../auth/authenticate.js';
import type { ApiKey, Scope } from '../auth/keys.js';
import { type KeyLimiter, rateLimitedError } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import { HTTP_STATUS } from './error-edges.js';

/** The scope each root field needs; a field not listed needs only a valid key (plan, models, usage). */
export const FIELD_SCOPES: Readonly<Record<string, Scope>> = {
  encode: 'encode',
  submitEncode: 'encode',
  decode: 'decode',
  submitDecode: 'decode',
  img2img: 'img2img',
  submitImg2img: 'img2img',
  job: 'jobs',
  cancelJob: 'jobs',
  jobProgress: 'jobs',
};

/** Root fields that run compute: each one is a request against its key's rate limit. */
export const COMPUTE_FIELDS: ReadonlySet<string> = new Set([
  'encode',
  'submitEncode',
  'decode',
  'submitDecode',
  'img2img',
  'submitImg2img',
]);

interface AuthServices extends Observability {
  keys: KeyLookup;
  limiter: KeyLimiter;
}

type AuthContext = { auth?: { keyName: string; scopes: readonly Scope[] } };

/** The GraphQL error a refusal becomes, with its HTTP status (and headers) for the HTTP and SSE answer. */
export function graphqlAuthError(error: GatewayError, headers: Record<string, string> = {}): GraphQLError {
  const retry = error.details.retryAfterSeconds;
  if (typeof retry === 'number') headers = { ...headers, 'retry-after': String(retry) };
  return new GraphQLError(error.message, {
    extensions: { code: error.code, ...error.details, http: { status: HTTP_STATUS[error.code], headers } },
  });
}

export function useApiKeys(services: AuthServices): Plugin<AuthContext> {
  const keyOf = new WeakMap<Request, ApiKey | null>();
  return {
    onRequest({ request, endResponse, fetchAPI }) {
      // A CORS preflight carries no credentials by design.
      if (request.method === 'OPTIONS') return;
      const result = authenticate(services.keys, request.headers);
      if (result.ok) {
        keyOf.set(request, result.key);
        return;
      }
      reportAnswer(services, 'graphql', result.error);
      endResponse(
        new fetchAPI.Response(JSON.stringify({ errors: [failureBody(result)] }), {
          status: result.status,
          headers: { 'content-type': 'application/json', ...result.headers },
        }),
      );
    },
    onContextBuilding({ context, extendContext }) {
      const initial = context as { request?: Request; connectionParams?: Readonly<Record<string, unknown>> };
      let key: ApiKey | null | undefined;
      if (initial.connectionParams !== undefined || !initial.request) {
        // A WebSocket: onConnect refused the connection unless these authenticate.
        const result = authenticate(services.keys, initial.connectionParams ?? {});
        key = result.ok ? result.key : undefined;
      } else key = keyOf.get(initial.request);
      if (key) extendContext({ auth: { keyName: key.name, scopes: key.scopes } });
    },
    async onExecute({ args, setResultAndStopExecution }) {
      const error = await checkOperation(services, args.contextValue, args.document, args.operationName);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const error = await checkOperation(services, args.contextValue, args.document, args.operationName);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}

function failureBody(failure: AuthFailure) {
  return { message: failure.error.message, extensions: { code: failure.error.code, ...failure.error.details } };
}

/** The first refusal of an operation's root fields (scope, then rate limit), or null when it may run. */
async function checkOperation(
  services: AuthServices,
  context: AuthContext,
  document: DocumentNode,
  operationName: string | null | undefined,
): Promise<GraphQLError | null> {
  const auth = context.auth;
  if (!auth) return null;
  const operation = getOperationAST(document, operationName);
  if (!operation) return null;
  const fields = rootFields(document, operation);
  const key = { name: auth.keyName, scopes: [...auth.scopes] };
  for (const field of fields) {
    const scope = FIELD_SCOPES[field];
    const refusal = scope && authorize(key, scope);
    if (refusal) return graphqlAuthError(refusal.error);
  }
  for (const field of fields) {
    if (!COMPUTE_FIELDS.has(field)) continue;
    const admission = await services.limiter.admit(auth.keyName, 0).catch((error: unknown) => {
      // Limits in a Redis that does not answer: SERVICE_UNAVAILABLE, with its status, not a masked 500.
      if (error instanceof GatewayError) return error;
      throw error;
    });
    if (admission instanceof GatewayError) {
      // Counted and logged here: what onExecute answers does not pass the error mask.
      reportAnswer(services, 'graphql', admission);
      return graphqlAuthError(admission);
    }
    if (!admission.allowed) return graphqlAuthError(rateLimitedError(admission.limited));
  }
  return null;
}

/** The root field names an operation selects, through its fragments. */
export function rootFields(document: DocumentNode, operation: OperationDefinitionNode): string[] {
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d] as const] : [])),
  );
  const names: string[] = [];
  const seen = new Set<string>();
  const visit = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) names.push(selection.name.value);
      else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) visit(fragment.selectionSet);
      }
    }
  };
  visit(operation.selectionSet);
  return names;
}
