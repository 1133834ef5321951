/** Results go back inline (base64) or as a URL of this gateway that expires. */
import type { StoredResult } from '../storage/result-store.js';
import type { PipelineDeps } from './encode.js';

export type Delivery = 'BASE64' | 'URL';

export interface Delivered {
  data: string | null;
  url: string | null;
  expiresAt: Date | null;
}

export async function deliver(
  deps: Pick<PipelineDeps, 'store' | 'config'>,
  delivery: Delivery,
  result: Omit<StoredResult, 'expiresAt'>,
  path: 'latents' | 'images',
): Promise<Delivered> {
  if (delivery === 'BASE64') {
    // A view, not a copy, of the bytes.
    const data = Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength).toString('base64');
    return { data, url: null, expiresAt: null };
  }
  const { id, expiresAt } = await deps.store.put(result);
  return { data: null, url: `${deps.config.publicUrl}/v1/${path}/${id}`, expiresAt: new Date(expiresAt) };
}
