/** Results go back inline (base64) or as a URL of this gateway that expires, signed when URL_SIGNING_KEY is set. */
import type { StoredResult } from '../storage/result-store.js';
import { signResultUrl } from '../storage/signed-urls.js';
import type { PipelineDeps } from './encode.js';

export type Delivery = 'BASE64' | 'URL';

export interface Delivered {
  data: string | null;
  url: string | null;
  expiresAt: Date | null;
}

export async function deliver(
  deps: Pick<PipelineDeps, 'store' | 'config' | 'owner'>,
  delivery: Delivery,
  result: Omit<StoredResult, 'expiresAt'>,
  path: 'latents' | 'images',
): Promise<Delivered> {
  if (delivery === 'BASE64') {
    // A view, not a copy, of the bytes.
    const data = Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength).toString('base64');
    return { data, url: null, expiresAt: null };
  }
  const { id, expiresAt } = await deps.store.put(deps.owner ? { ...result, owner: deps.owner } : result);
  const url = `${deps.config.publicUrl}/v1/${path}/${id}`;
  const key = deps.config.urlSigningKey;
  return { data: null, url: key ? signResultUrl(url, id, expiresAt, key) : url, expiresAt: new Date(expiresAt) };
}
