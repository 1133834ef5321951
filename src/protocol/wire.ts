/**
 * The Hybrid Inference wire format, as diffusers' client speaks it (huggingface/diffusers,
 * src/diffusers/utils/remote_utils.py: `prepare_encode`, `prepare_decode`, `postprocess_encode`,
 * `postprocess_decode`), shared by the serving side and the upstream client.
 *
 * - Parameters travel in the query string the way Python's `requests` writes a params dict: a list
 *   is one `key=value` per item (`shape=1&shape=16&shape=64&shape=64`), a bool is `True`/`False`, a
 *   float is Python's `str()` of it (`0.3611`, `1.0`).
 * - Tensors travel as their raw little-endian bytes (safetensors' `_tobytes`), `Content-Type` and
 *   `Accept` `tensor/binary`; a tensor response carries the headers `shape` (a JSON list) and
 *   `dtype` (`float16`, `bfloat16`, `float32` or `uint8`).
 * - Images travel as their file bytes: the client sends PNG to encode and asks for `image/png` or
 *   `image/jpeg` from decode.
 * - An error is a non-2xx status with a JSON body; the client raises `RuntimeError(response.json())`.
 */
import { BYTES_PER_ELEMENT, type DType, elementCount, isDType } from '../tensors/dtype.js';

export const TENSOR_CONTENT_TYPE = 'tensor/binary';

export type QueryValue = string | number | boolean | readonly (string | number)[];

/** A query string as `requests.post(url, params=...)` builds it (insertion order, lists repeated). */
export function pythonQuery(params: Record<string, QueryValue | undefined | null>): URLSearchParams {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) query.append(key, String(item));
    else if (typeof value === 'boolean') query.append(key, value ? 'True' : 'False');
    else query.append(key, String(value));
  }
  return query;
}

/** The `shape` header of a tensor response: a JSON list of positive integers, else null. */
export function parseShapeHeader(value: string | null): number[] | null {
  if (value === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return null;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((d) => Number.isInteger(d) && d > 0)) return null;
  return parsed as number[];
}

export function isWireDType(value: string | null): value is DType {
  return value !== null && isDType(value);
}

export function tensorByteLength(shape: readonly number[], dtype: DType): number {
  return elementCount(shape) * BYTES_PER_ELEMENT[dtype];
}

/** Headers of a tensor response. */
export function tensorHeaders(shape: readonly number[], dtype: DType, length: number): Record<string, string> {
  return { 'content-type': TENSOR_CONTENT_TYPE, 'content-length': String(length), shape: JSON.stringify(shape), dtype };
}
