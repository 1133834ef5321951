/**
 * API keys at the GraphQL edge (HTTP, SSE and WebSocket alike): the caller is authenticated once per
 * request (a WebSocket once per connection, from `connectionParams`), its key goes into the context as
 * `auth`, and each operation's root fields are checked against the key's scopes and rate limit before
 * anything runs. Without keys configured nothing is checked and `auth` stays absent.
 */
import { type DocumentNode, GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type AuthFailure, authenticate, authorize, type KeyLookup } from '../auth/authenticate.js';
import type { ApiKey, Scope } from '../auth/keys.js';
import { COMPUTE_RESERVATION, type KeyLimiter, rateLimitedError, type Ticket } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import { HTTP_STATUS } from './error-edges.js';
// Each compute field is a request against its key's rate limit and daily quota.
import { COMPUTE_FIELDS } from './graphql-limits.js';
import { fragmentsOf, rootFields } from './root-fields.js';

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

interface AuthServices extends Observability {
  keys: KeyLookup;
  limiter: KeyLimiter;
}

type AuthContext = { auth?: { keyName: string; scopes: readonly Scope[] }; tickets?: ReadonlyMap<string, Ticket> };

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
    async onExecute({ args, setResultAndStopExecution, extendContext }) {
      const checked = await checkOperation(services, args.contextValue, args.document, args.operationName);
      if (checked instanceof GraphQLError) setResultAndStopExecution({ errors: [checked] });
      else if (checked.size > 0) extendContext({ tickets: checked });
    },
    async onSubscribe({ args, setResultAndStopExecution }) {
      const checked = await checkOperation(services, args.contextValue, args.document, args.operationName);
      if (checked instanceof GraphQLError) setResultAndStopExecution({ errors: [checked] });
    },
  };
}

function failureBody(failure: AuthFailure) {
  return { message: failure.error.message, extensions: { code: failure.error.code, ...failure.error.details } };
}

/**
 * The first refusal of an operation's root fields (scope, then rate limit and quota), or the quota
 * tickets of its compute fields by response key, which their resolvers settle after the run.
 */
async function checkOperation(
  services: AuthServices,
  context: AuthContext,
  document: DocumentNode,
  operationName: string | null | undefined,
): Promise<GraphQLError | Map<string, Ticket>> {
  const tickets = new Map<string, Ticket>();
  const auth = context.auth;
  if (!auth) return tickets;
  const operation = getOperationAST(document, operationName);
  if (!operation) return tickets;
  const fields = rootFields(operation.selectionSet, fragmentsOf(document));
  const key = { name: auth.keyName, scopes: [...auth.scopes] };
  for (const name of fields.values()) {
    const scope = FIELD_SCOPES[name];
    const refusal = scope && authorize(key, scope);
    if (refusal) {
      reportAnswer(services, 'graphql', refusal.error);
      return graphqlAuthError(refusal.error);
    }
  }
  for (const [responseKey, name] of fields) {
    if (!COMPUTE_FIELDS.has(name)) continue;
    const admission = await services.limiter.admit(auth.keyName, COMPUTE_RESERVATION).catch((error: unknown) => {
      // Limits in a Redis that does not answer: SERVICE_UNAVAILABLE, with its status, not a masked 500.
      if (error instanceof GatewayError) return error;
      throw error;
    });
    if (admission instanceof GatewayError || !admission.allowed) {
      // The fields admitted before this one will not run: their reservations are given back.
      await Promise.all([...tickets.values()].map((ticket) => services.limiter.settle(ticket, 0)));
      const refusal = admission instanceof GatewayError ? admission : rateLimitedError(admission.limited);
      // Counted and logged here: what onExecute answers does not pass the error mask.
      reportAnswer(services, 'graphql', refusal);
      return graphqlAuthError(refusal);
    }
    tickets.set(responseKey, admission.ticket);
  }
  return tickets;
}
