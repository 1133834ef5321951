/** Helpers for reading GraphQL inputs: base64 bytes, bounded before they are decoded. */
import { type ErrorCode, GatewayError } from '../errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Base64 → bytes; refuses, before decoding, text that could not fit under `limit.maxBytes` (base64 is 4/3 of the
 * bytes).
 */
export function decodeBase64(value: string, field: string, limit: { maxBytes: number; code: ErrorCode }): Uint8Array {
  if (value.length > Math.ceil((limit.maxBytes * 4) / 3) + 4) {
    throw new GatewayError(limit.code, `${field} decodes to more than the ${limit.maxBytes}-byte limit`, {
      maxBytes: limit.maxBytes,
    });
  }
  const compact = value.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new GatewayError('BAD_REQUEST', `${field} is not valid base64 (standard alphabet, padded)`, { field });
  }
  return new Uint8Array(Buffer.from(compact, 'base64'));
}
