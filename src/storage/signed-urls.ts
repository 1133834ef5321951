/**
 * Result URLs that can be handed on: `?expires=UNIX&sig=BASE64URL`, where sig is HMAC-SHA256 keyed by
 * URL_SIGNING_KEY over the result's id and the expiry, so a browser `<img>` or another service can
 * fetch that one result until then without an API key. Every instance that serves results needs
 * the same key. Also what may delete a result: only the key that created it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Secret } from '../config/secret.js';
import { GatewayError } from '../errors.js';
import type { ResultStore } from './result-store.js';

/** Served results are the caller's own: no shared cache may keep them. */
export const RESULT_CACHE_CONTROL = 'private';

/** base64url of an HMAC-SHA256 (32 bytes) without padding. */
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

/** The signature of result `id` until `expires` (Unix seconds). */
export function resultSignature(key: Secret, id: string, expires: number): string {
  // A fixed label first, so this MAC cannot be replayed as one the gateway makes for anything else.
  return createHmac('sha256', key.reveal()).update(`latentgate-result\n${id}\n${expires}`).digest('base64url');
}

/** `url` (the result's address) with `expires` and `sig` added; `expiresAt` in ms, rounded down to a second. */
export function signResultUrl(url: string, id: string, expiresAt: number, key: Secret): string {
  const expires = Math.floor(expiresAt / 1000);
  const signed = new URL(url);
  signed.searchParams.set('expires', String(expires));
  signed.searchParams.set('sig', resultSignature(key, id, expires));
  return signed.toString();
}

/**
 * May this request read result `id`? For the edges: 'valid' serves it (with RESULT_CACHE_CONTROL),
 * 401 asks for a key or a signature, 403 refuses a signature.
 */
export type ResultAccess =
  | { status: 'valid' }
  | { status: 401; reason: 'unsigned'; message: string }
  | { status: 403; reason: 'malformed' | 'tampered' | 'expired' | 'signing-disabled'; message: string };

export interface AccessOptions {
  /** URL_SIGNING_KEY; null when this gateway signs nothing. */
  signingKey: Secret | null;
  /** True when the request may read results without a signature: it holds a valid key, or no keys are configured. */
  callerAuthorized: boolean;
  /** Milliseconds since the epoch. */
  now?: number;
}

/**
 * A signature, when the URL has one, decides alone (a wrong one is refused even for a key holder,
 * so a tampered URL never passes unnoticed); without one, the caller's key does.
 */
export function checkResultAccess(query: URLSearchParams, id: string, options: AccessOptions): ResultAccess {
  const expires = query.get('expires');
  const sig = query.get('sig');
  if (expires === null && sig === null)
    return options.callerAuthorized
      ? { status: 'valid' }
      : { status: 401, reason: 'unsigned', message: 'this result URL needs an API key or a signature (expires, sig)' };
  if (!options.signingKey)
    return {
      status: 403,
      reason: 'signing-disabled',
      message: 'this gateway signs no URLs (URL_SIGNING_KEY is unset)',
    };
  if (expires === null || sig === null || !UNIX_SECONDS.test(expires) || !SIGNATURE.test(sig))
    return {
      status: 403,
      reason: 'malformed',
      message: 'a signed result URL has expires (Unix seconds) and sig (43 base64url characters)',
    };
  // Compared as the canonical text in constant time: decoding sig first would accept other spellings of it.
  const expected = Buffer.from(resultSignature(options.signingKey, id, Number(expires)));
  if (!timingSafeEqual(expected, Buffer.from(sig)))
    return { status: 403, reason: 'tampered', message: 'the signature does not match this result URL' };
  if (Number(expires) * 1000 <= (options.now ?? Date.now()))
    return {
      status: 403,
      reason: 'expired',
      message: `this signed URL expired at ${new Date(Number(expires) * 1000).toISOString()}`,
    };
  return { status: 'valid' };
}

/**
 * Deletes result `id` for its owner `keyName` (the edges' DELETE /v1/{latents,images}/{id}):
 * NOT_FOUND when none is kept (or it expired), FORBIDDEN for another key.
 */
export async function deleteResult(store: ResultStore, id: string, keyName: string): Promise<void> {
  const removal = await store.remove(id, keyName);
  if (removal === 'not-found') throw new GatewayError('NOT_FOUND', `no result with id ${id}`, { id });
  if (removal === 'forbidden')
    throw new GatewayError('FORBIDDEN', `result ${id} was created by another key; only its creator may delete it`, {
      id,
    });
}
