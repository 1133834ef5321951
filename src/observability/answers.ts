/**
 * Every error a client is answered with, reported once: counted in
 * `latentgate_rejections_total{reason}` and logged (a GatewayError other than INTERNAL is the
 * client's: info, no stack; anything else is a bug: error, with its stack). The GraphQL and HTTP
 * edges (src/server/error-edges.ts) and failed jobs (src/jobs/manager.ts) call it.
 */
import { GatewayError } from '../errors.js';
import type { Logger } from './logger.js';
import type { GatewayMetrics } from './metrics.js';

/** What reporting needs (RunningServices has both). */
export interface Observability {
  logger: Logger;
  metrics: GatewayMetrics;
}

/** Where the answer went out. */
export type AnswerEdge = 'graphql' | 'http' | 'job';

/** A client's message can quote what it sent (graphql-js quotes a bad variable whole): the log keeps this much. */
const MAX_LOGGED_MESSAGE = 1000;

function loggable(message: string): string {
  if (message.length <= MAX_LOGGED_MESSAGE) return message;
  return `${message.slice(0, MAX_LOGGED_MESSAGE)}... (${message.length - MAX_LOGGED_MESSAGE} more characters)`;
}

/** Errors already reported: an edge may see one error twice, and Yoga's own log skips them. */
const reported = new WeakSet<object>();

/** True for a reported error, or a GraphQL error located from one (what Yoga logs). */
export function wasReported(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const original = (error as { originalError?: unknown }).originalError;
  return reported.has(error) || (typeof original === 'object' && original !== null && reported.has(original));
}

/**
 * Counts and logs `error`, answered to a client with `code` (a GatewayError's own when not given;
 * INTERNAL for anything else).
 */
export function reportAnswer(
  observability: Observability,
  edge: AnswerEdge,
  error: unknown,
  code: string = error instanceof GatewayError ? error.code : 'INTERNAL',
): void {
  if (typeof error === 'object' && error !== null) {
    if (reported.has(error)) return;
    reported.add(error);
  }
  const { logger, metrics } = observability;
  metrics.rejections.inc({ reason: code });
  if (code === 'INTERNAL') {
    logger.error({ edge, code, err: error }, 'internal error');
    return;
  }
  // The caller's error (a GatewayError, or graphql-js' syntax, validation and variable errors): no stack.
  const details = error instanceof GatewayError ? error.details : undefined;
  const retry = details?.retryAfterSeconds;
  if (code === 'BUSY' && typeof retry === 'number') metrics.busyRetryAfter.observe(retry);
  logger.info({ edge, code, details }, loggable(error instanceof Error ? error.message : String(error)));
}
