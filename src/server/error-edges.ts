/**
 * Gateway errors at the two edges, translated once each (as Yoga's mask-error.ts does for GraphQL
 * and Hono's HTTPException for HTTP):
 * - GraphQL: a GraphQLError at the field's path whose `extensions` are the code and the details.
 * - HTTP (Hybrid Inference and result URLs): the code's status and `{"error", "code", ...details}`,
 *   with `Retry-After` when the details say when to retry.
 * Anything that is not a GatewayError is a bug: logged, and answered without its message.
 * Every error answered is reported once (counted by code, logged: src/observability/answers.ts).
 */
import { GraphQLError } from 'graphql';
import { maskError as yogaMaskError } from 'graphql-yoga';
import { WWW_AUTHENTICATE } from '../auth/credentials.js';
import { type ErrorCode, GatewayError } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  UNKNOWN_MODEL: 404,
  UNSUPPORTED_OPERATION: 400,
  INVALID_IMAGE: 400,
  IMAGE_TOO_LARGE: 413,
  LATENT_TOO_LARGE: 413,
  LATENT_SHAPE_MISMATCH: 400,
  LATENT_CHANNELS_MISMATCH: 400,
  INVALID_LATENT: 400,
  UNSUPPORTED_DTYPE: 400,
  UNSUPPORTED_SCHEDULER: 400,
  NO_DENOISING_STEPS: 400,
  PROMPT_TOO_LONG: 400,
  NOT_FOUND: 404,
  EXPIRED: 410,
  INVALID_URL: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  QUERY_TOO_COMPLEX: 400,
  REQUEST_TOO_LARGE: 413,
  BUSY: 503,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
  DOES_NOT_FIT: 507,
  CANCELLED: 499,
  UPSTREAM_FAILED: 502,
  INTERNAL: 500,
};

/**
 * Yoga's `maskError` for every GraphQL result (queries, mutations, subscriptions over SSE and WebSocket):
 * `error` is what graphql-js located at a field (the thrown error is its `originalError`) or, for a
 * subscription that failed to start, possibly the thrown error itself.
 */
export function maskGraphQLError(
  observability: Observability,
  error: unknown,
  message: string,
  isDev?: boolean,
): Error {
  const located = error instanceof GraphQLError ? error : undefined;
  const original = located ? located.originalError : error;
  if (original instanceof GatewayError) {
    reportAnswer(observability, 'graphql', original);
    // No `originalError`: Yoga counts an error with a non-GraphQL original as unexpected (HTTP 500).
    return new GraphQLError(original.message, {
      nodes: located?.nodes,
      source: located?.source,
      positions: located?.positions,
      path: located?.path,
      extensions: { code: original.code, ...original.details },
    });
  }
  // graphql-js' own errors (syntax, validation, variables) are the caller's and pass as they are; a
  // variable error wraps the GraphQLError that coercion raised (an @oneOf input's, for one).
  if (located && (!original || original instanceof GraphQLError)) {
    const code = located.extensions.code;
    reportAnswer(observability, 'graphql', located, typeof code === 'string' ? code : 'BAD_REQUEST');
    return located;
  }
  reportAnswer(observability, 'graphql', original ?? error);
  return yogaMaskError(error, message, isDev);
}

/**
 * A request error (found before execution: body, parse, validation) as a GraphQL error with the code's HTTP
 * status; with `spec`, Yoga applies the status only for clients that accept application/graphql-response+json,
 * as it does for its own validation errors.
 */
export function graphqlRequestError(error: GatewayError, { spec }: { spec: boolean }): GraphQLError {
  return new GraphQLError(error.message, {
    extensions: { code: error.code, ...error.details, http: { status: HTTP_STATUS[error.code], spec } },
  });
}

export interface HttpErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: { error: string; code: ErrorCode } & Record<string, unknown>;
}

/** The HTTP answer for an error thrown while serving a request. */
export function httpErrorAnswer(observability: Observability, error: unknown): HttpErrorAnswer {
  reportAnswer(observability, 'http', error);
  if (!(error instanceof GatewayError)) {
    return { status: 500, headers: {}, body: { error: 'internal error', code: 'INTERNAL' } };
  }
  const retry = error.details.retryAfterSeconds;
  return {
    status: HTTP_STATUS[error.code],
    headers: {
      ...(typeof retry === 'number' ? { 'retry-after': String(Math.ceil(retry)) } : {}),
      // A 401 names the schemes that would be accepted (RFC 9110 section 11.6.1).
      ...(error.code === 'UNAUTHENTICATED' ? { 'www-authenticate': WWW_AUTHENTICATE } : {}),
    },
    body: { error: error.message, code: error.code, ...error.details },
  };
}
