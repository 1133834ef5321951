/**
 * The credentials a request carries: `Authorization: Bearer KEY`, or HTTP Basic with the key as the
 * password (the user name is ignored), which is what `requests` sends by itself from a `~/.netrc` entry,
 * so diffusers' unchanged `remote_encode` / `remote_decode` can authenticate.
 */

/** The `WWW-Authenticate` value of every 401: both schemes this gateway accepts. */
export const WWW_AUTHENTICATE = 'Bearer realm="latentgate", Basic realm="latentgate"';

/**
 * Fetch `Headers`, a `Request`, Node's `IncomingMessage` or its `headers`, or a plain object such as
 * a WebSocket's `connectionParams` (`{ Authorization }` or `{ headers: { Authorization } }`).
 */
export type HeaderSource = Headers | { readonly headers: unknown } | Readonly<Record<string, unknown>>;

export type Credentials =
  | { kind: 'none' }
  | { kind: 'key'; key: string; scheme: 'bearer' | 'basic' }
  | { kind: 'malformed'; reason: string };

/** The `Authorization` header's value, wherever the edge keeps it; a plain object's name is matched in any case. */
export function authorizationHeader(source: HeaderSource): string | undefined {
  if (isHeaders(source)) return source.get('authorization') ?? undefined;
  const record = source as Readonly<Record<string, unknown>>;
  for (const [name, value] of Object.entries(record)) {
    if (name.toLowerCase() !== 'authorization') continue;
    if (typeof value === 'string') return value;
    // Two Authorization headers are ambiguous: answered as a malformed one.
    return Array.isArray(value) && value.length === 1 ? String(value[0]) : '?';
  }
  const nested = record.headers;
  return isHeaders(nested) || (typeof nested === 'object' && nested !== null && !Array.isArray(nested))
    ? authorizationHeader(nested as HeaderSource)
    : undefined;
}

/** Fetch `Headers`, or a ponyfill's (Yoga's requests carry @whatwg-node's, which is not the global class). */
function isHeaders(value: unknown): value is Pick<Headers, 'get'> {
  return (
    value instanceof Headers ||
    (typeof value === 'object' && value !== null && typeof (value as Headers).get === 'function')
  );
}

export function readCredentials(source: HeaderSource): Credentials {
  const header = authorizationHeader(source);
  if (header === undefined || header.trim() === '') return { kind: 'none' };
  const match = /^\s*(\S+)\s+(\S+)\s*$/.exec(header);
  if (!match) return { kind: 'malformed', reason: 'the Authorization header must be "Bearer KEY" or "Basic ..."' };
  const [, scheme, value] = match;
  switch (scheme.toLowerCase()) {
    case 'bearer':
      return { kind: 'key', key: value, scheme: 'bearer' };
    case 'basic': {
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value))
        return { kind: 'malformed', reason: 'the Basic credentials are not base64' };
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return { kind: 'malformed', reason: 'the Basic credentials must be "user:key"' };
      return { kind: 'key', key: decoded.slice(colon + 1), scheme: 'basic' };
    }
    default:
      return { kind: 'malformed', reason: `the Authorization scheme "${scheme}" is not accepted; use Bearer or Basic` };
  }
}
