/**
 * Errors a caller can act on. Each has a stable code (GraphQL `extensions.code`, and the HTTP
 * protocol's status), a message that names what was wrong and what is allowed, and details.
 */
import { GraphQLError } from 'graphql';

export const ERROR_STATUS = {
  BAD_REQUEST: 400,
  UNKNOWN_MODEL: 404,
  UNSUPPORTED_OPERATION: 400,
  INVALID_IMAGE: 400,
  IMAGE_TOO_LARGE: 413,
  LATENT_SHAPE_MISMATCH: 400,
  LATENT_CHANNELS_MISMATCH: 400,
  UNSUPPORTED_DTYPE: 400,
  NOT_FOUND: 404,
  EXPIRED: 410,
  INVALID_URL: 400,
  BUSY: 503,
  DOES_NOT_FIT: 507,
  CANCELLED: 499,
  UPSTREAM_FAILED: 502,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class GatewayError extends GraphQLError {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...details } });
    this.code = code;
    this.details = details;
  }

  get httpStatus(): number {
    return ERROR_STATUS[this.code];
  }
}

export function isGatewayError(error: unknown): error is GatewayError {
  return error instanceof GatewayError;
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
  if (!signal?.aborted) return;
  throw signal.reason instanceof GatewayError ? signal.reason : cancelled(message);
}
