/**
 * API keys: their format, their hash, and what a stored key record holds. A key is `lg_` and 32
 * random bytes in base64url, so a leaked one is easy to spot (and to search for in logs and commits).
 *
 * Only SHA-256 of the key is stored. A slow password hash (scrypt, bcrypt) exists to make guessing a
 * low-entropy password expensive; a key has 256 random bits, so no guess list exists and one fast hash
 * already makes the stored value useless to whoever reads it, while checking a request costs microseconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';

export const KEY_PREFIX = 'lg_';
/** Any string shaped like a latentgate key (for spotting one in text). */
export const KEY_PATTERN = /lg_[A-Za-z0-9_-]{43}/;

/** What a key may do: one scope per kind of operation. `admin` does not imply the others. */
export const SCOPES = ['encode', 'decode', 'img2img', 'jobs', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** Requests per window. */
export interface RateLimit {
  requests: number;
  windowSeconds: number;
}

/** A key as every part of the gateway may see it: never the key, never its hash. */
export interface ApiKey {
  name: string;
  scopes: Scope[];
  rate: RateLimit | null;
  /** Compute per day, in pixel-seconds. */
  quotaPixelSecondsPerDay: number | null;
  /** ISO 8601. */
  created: string;
}

/** A key as stored: the public record and the SHA-256 of the key (hex). */
export interface StoredKey extends ApiKey {
  hash: string;
}

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const storedKeySchema = z.strictObject({
  name: z.string().regex(NAME_PATTERN),
  scopes: z.array(z.enum(SCOPES)).min(1),
  rate: z.strictObject({ requests: z.number().int().min(1), windowSeconds: z.number().int().min(1) }).nullable(),
  quotaPixelSecondsPerDay: z.number().positive().nullable(),
  created: z.string(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});

export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** SHA-256 of the key's text (hex), the only form in which a key is kept. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function publicKey({ hash: _hash, ...key }: StoredKey): ApiKey {
  return key;
}
