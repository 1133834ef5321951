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
  if (delivery === 'BASE64') return { data: Buffer.from(result.bytes).toString('base64'), url: null, expiresAt: null };
  const { id, expiresAt } = await deps.store.put(result);
  return { data: null, url: `${deps.config.publicUrl}/v1/${path}/${id}`, expiresAt: new Date(expiresAt) };
}
