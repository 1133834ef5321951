/**
 * A request or response body read whole, with a size limit: refused before reading when its
 * `Content-Length` says it is too large, and as soon as the bytes read pass the limit (so a body
 * that lies about its length, or has none, cannot fill memory).
 */

/**
 * `tooLarge(bytes)` makes the error: `bytes` is the declared length, or null when the limit was
 * passed while reading.
 */
export async function readLimitedBody(
  chunks: AsyncIterable<Uint8Array> | null,
  limit: number,
  declaredBytes: number | null,
  tooLarge: (bytes: number | null) => Error,
): Promise<Buffer> {
  if (declaredBytes !== null && declaredBytes > limit) throw tooLarge(declaredBytes);
  if (!chunks) return Buffer.alloc(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    if (total > limit) throw tooLarge(null);
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}

/** A `Content-Length` header as a number, or null when absent or not a number. */
export function declaredLength(value: string | string[] | null | undefined): number | null {
  const length = Number(typeof value === 'string' ? value : Number.NaN);
  return Number.isFinite(length) ? length : null;
}

/**
 * A body whose size is known before reading (a tensor of a given shape and dtype): a declared length that
 * differs is refused before reading, reading stops as soon as the bytes pass `expected`, and a body that
 * ends short is refused. `mismatch(bytes, more)`: `bytes` is the declared or read length; with `more`,
 * only that the body is longer than `expected` is known (no length was declared).
 */
export async function readExactBody(
  chunks: AsyncIterable<Uint8Array>,
  expected: number,
  declaredBytes: number | null,
  mismatch: (bytes: number, more: boolean) => Error,
): Promise<Buffer> {
  if (declaredBytes !== null && declaredBytes !== expected) throw mismatch(declaredBytes, false);
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    if (total > expected) throw mismatch(total, true);
    parts.push(chunk);
  }
  if (total !== expected) throw mismatch(total, false);
  return Buffer.concat(parts, total);
}
