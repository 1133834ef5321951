/**
 * Start-up safety: a gateway without keys serves anyone who can reach it, which is fine on loopback
 * (a developer's machine) and not elsewhere unless the operator says so with `ALLOW_UNAUTHENTICATED=true`.
 */
import { isIP } from 'node:net';
import { ConfigError } from '../config/config.js';

export interface AuthModeInput {
  host: string;
  /** Whether requests need a key (KeyStore.required). */
  keysRequired: boolean;
  /** How many keys there are now (KeyStore.size). */
  keyCount: number;
  /** Where the keys come from (KeyStore.source). */
  keySource: string;
  allowUnauthenticated: boolean;
}

/** `localhost`, 127.0.0.0/8, `::1` and their IPv4-mapped forms; a wildcard or any other name is not. */
export function isLoopback(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (address === 'localhost' || address.endsWith('.localhost')) return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('127.');
  return isIP(address) === 6 && /^(0{0,4}:){7}0{0,3}1$|^::1$/.test(address);
}

/**
 * The one-line description of the mode for the start-up log; throws ConfigError (before listening)
 * when no keys are required and `host` is not loopback, unless unauthenticated serving is allowed.
 */
export function authMode(input: AuthModeInput): string {
  if (input.keysRequired)
    return (
      `API keys required (${input.keyCount} key(s) from ${input.keySource}` +
      `${input.keyCount === 0 ? '; create one with `latentgate keys create`' : ''})`
    );
  if (isLoopback(input.host)) return 'no API keys configured: open to anyone who can reach loopback';
  if (input.allowUnauthenticated)
    return `no API keys configured: open to anyone who can reach ${input.host} (ALLOW_UNAUTHENTICATED=true)`;
  throw new ConfigError(
    `no API keys are configured, so listening on ${input.host} would let anyone use this gateway: ` +
      'create a key (latentgate keys create, with API_KEYS_FILE set), listen on 127.0.0.1, ' +
      'or set ALLOW_UNAUTHENTICATED=true',
  );
}
