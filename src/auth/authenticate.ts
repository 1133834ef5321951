/**
 * Who is calling, and may they: what every entry point (GraphQL over HTTP, SSE and WebSocket, Hybrid
 * Inference, result URLs, the playground) asks before doing anything. Free of any transport: an edge
 * passes its headers (or a WebSocket's `connectionParams`) and answers a failure with `status`,
 * `headers` and the GatewayError (GraphQL: the error's `code`).
 */
import { GatewayError } from '../errors.js';
import { type HeaderSource, readCredentials, WWW_AUTHENTICATE } from './credentials.js';
import type { ApiKey, Scope } from './keys.js';

/** What authentication needs of a key store (KeyStore is one). */
export interface KeyLookup {
  /** Whether requests need a key at all. */
  readonly required: boolean;
  /** Set while the keys cannot be read (Redis down since start): every key-needing request is refused with it. */
  readonly unavailable?: GatewayError | null;
  find(key: string): ApiKey | undefined;
}

export interface AuthFailure {
  ok: false;
  status: 401 | 403 | 503;
  /** `WWW-Authenticate` on a 401, `Retry-After` on a 503. */
  headers: Record<string, string>;
  error: GatewayError;
}

/** `key` is null when the gateway needs no keys (none configured). */
export type Authentication = { ok: true; key: ApiKey | null } | AuthFailure;

export function authenticate(keys: KeyLookup, source: HeaderSource): Authentication {
  if (!keys.required) return { ok: true, key: null };
  const unavailable = keys.unavailable;
  if (unavailable) {
    const retry = unavailable.details.retryAfterSeconds;
    return { ok: false, status: 503, headers: { 'retry-after': String(retry) }, error: unavailable };
  }
  const credentials = readCredentials(source);
  switch (credentials.kind) {
    case 'none':
      return unauthenticated(
        'this gateway needs an API key: send "Authorization: Bearer KEY", or HTTP Basic with the key as the password',
        'missing',
      );
    case 'malformed':
      return unauthenticated(`${credentials.reason}`, 'malformed');
    case 'key': {
      const key = keys.find(credentials.key);
      return key
        ? { ok: true, key }
        : unauthenticated('the API key is not valid: it is unknown or has been revoked', 'invalid');
    }
  }
}

/** A 403 when the key lacks `scope`; null when it may go on (and always without keys). */
export function authorize(key: Pick<ApiKey, 'name' | 'scopes'> | null, scope: Scope): AuthFailure | null {
  if (!key || key.scopes.includes(scope)) return null;
  return {
    ok: false,
    status: 403,
    headers: {},
    error: new GatewayError(
      'FORBIDDEN',
      `the API key "${key.name}" may not ${scope}: its scopes are ${key.scopes.join(', ')}; ` +
        `create a key with the "${scope}" scope`,
      { scope, scopes: key.scopes },
    ),
  };
}

/** Both at once: the key, or the failure of either. */
export function authenticateFor(keys: KeyLookup, source: HeaderSource, scope: Scope): Authentication {
  const result = authenticate(keys, source);
  return result.ok ? (authorize(result.key, scope) ?? result) : result;
}

function unauthenticated(message: string, reason: 'missing' | 'malformed' | 'invalid'): AuthFailure {
  return {
    ok: false,
    status: 401,
    headers: { 'www-authenticate': WWW_AUTHENTICATE },
    error: new GatewayError('UNAUTHENTICATED', message, { reason }),
  };
}
