/** Turns GraphQL inputs into pipeline requests, refusing ambiguous or malformed ones. */
import { type ErrorCode, GatewayError } from '../errors.js';

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Base64 → bytes; refuses, before decoding, text that could not fit under `limit.maxBytes` (base64 is 4/3 of the bytes). */
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

/** Exactly one of two alternative inputs. */
export function exactlyOne<A, B>(
  a: A | null | undefined,
  b: B | null | undefined,
  names: [string, string],
): { first: A } | { second: B } {
  const hasA = a !== null && a !== undefined;
  const hasB = b !== null && b !== undefined;
  if (hasA === hasB)
    throw new GatewayError('BAD_REQUEST', `give exactly one of ${names[0]} or ${names[1]}`, { fields: names });
  return hasA ? { first: a as A } : { second: b as B };
}
