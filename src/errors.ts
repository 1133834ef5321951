/**
 * Errors a caller can act on. Each has a stable code, a message that names what was wrong and what
 * is allowed, and details. The error is a plain `Error`, free of any transport: the GraphQL and HTTP
 * edges (src/server/error-edges.ts) turn it into `extensions.code` or an HTTP status and JSON body.
 */

/** Every code a caller can see (GraphQL's ErrorCode enum, a failed job's code, the HTTP body's `code`). */
export const ERROR_CODES = [
  'BAD_REQUEST',
  'UNKNOWN_MODEL',
  'UNSUPPORTED_OPERATION',
  'INVALID_IMAGE',
  'IMAGE_TOO_LARGE',
  'LATENT_TOO_LARGE',
  'LATENT_SHAPE_MISMATCH',
  'LATENT_CHANNELS_MISMATCH',
  'INVALID_LATENT',
  'UNSUPPORTED_DTYPE',
  'UNSUPPORTED_SCHEDULER',
  'NO_DENOISING_STEPS',
  'PROMPT_TOO_LONG',
  'NOT_FOUND',
  'EXPIRED',
  'INVALID_URL',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'QUERY_TOO_COMPLEX',
  'REQUEST_TOO_LARGE',
  'BUSY',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'DOES_NOT_FIT',
  'CANCELLED',
  'UPSTREAM_FAILED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class GatewayError extends Error {
  override readonly name = 'GatewayError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/**
 * A part the gateway needs (Redis) does not answer, or the gateway is shutting down: the request was not
 * (or not fully) done and may be sent again after `retryAfterSeconds`, here or to another instance.
 */
export function serviceUnavailable(
  message: string,
  retryAfterSeconds: number,
  details: Record<string, unknown> = {},
): GatewayError {
  return new GatewayError('SERVICE_UNAVAILABLE', message, { ...details, retryAfterSeconds });
}

/**
 * The typed error for a cancelled request. Abort controllers pass it as the reason
 * (`controller.abort(cancelled('...'))`) so `signal.throwIfAborted()` throws it as it is.
 */
export function cancelled(message = 'the request was cancelled'): GatewayError {
  return new GatewayError('CANCELLED', message);
}

/** Throws CANCELLED when `signal` has aborted: its reason when that is typed, else `message`. */
export function throwIfCancelled(signal: AbortSignal | undefined, message?: string): void {
  if (signal?.aborted) throw cancellation(signal, message);
}

/** The error an aborted `signal` stands for: its reason when that is typed, else CANCELLED with `message`. */
export function cancellation(signal: AbortSignal | undefined, message?: string): GatewayError {
  return signal?.reason instanceof GatewayError ? signal.reason : cancelled(message);
}

/** True for the CANCELLED error, however the run was stopped. */
export function isCancellation(error: unknown): error is GatewayError {
  return error instanceof GatewayError && error.code === 'CANCELLED';
}
