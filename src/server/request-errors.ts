/**
 * Request errors (a document that does not parse or validate, variables that do not coerce to their
 * types, such as an @oneOf input with none or both of its members) are graphql-js' own, found before
 * any resolver runs, and reach clients without the typed `extensions.code` every other error has.
 * This plugin gives them `BAD_REQUEST`, over HTTP, SSE and WebSocket alike; the HTTP status
 * (`extensions.http`, set by Yoga) is left as it is.
 */
import { type ExecutionResult, GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ERROR_CODES, type ErrorCode } from '../errors.js';

const CODE: ErrorCode = 'BAD_REQUEST';

function markRequestError(error: GraphQLError): void {
  const extensions = error.extensions as Record<string, unknown>;
  // A limit's refusal (src/server/graphql-limits.ts) is typed already.
  if ((ERROR_CODES as readonly unknown[]).includes(extensions.code)) return;
  // Yoga marks parse and validation errors the same way (GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED).
  extensions.code = CODE;
}

/**
 * A result without `data` is one that failed before execution began (the spec's request error),
 * unlike a field error, which has data (if null) and a path. A subscription whose resolver threw as
 * it started has no data either, but its error has a path and is the resolver's own.
 */
function markRequestErrorsIn(result: ExecutionResult | AsyncIterable<unknown>): void {
  if (Symbol.asyncIterator in result || 'data' in result) return;
  for (const error of result.errors ?? []) if (!error.path) markRequestError(error);
}

export function useRequestErrorCode(): Plugin {
  return {
    onParse:
      () =>
      ({ result }) => {
        if (result instanceof GraphQLError) markRequestError(result);
      },
    onValidate:
      () =>
      ({ valid, result }) => {
        if (!valid) for (const error of result) markRequestError(error);
      },
    onExecute: () => ({ onExecuteDone: ({ result }) => markRequestErrorsIn(result) }),
    onSubscribe: () => ({ onSubscribeResult: ({ result }) => markRequestErrorsIn(result) }),
  };
}
