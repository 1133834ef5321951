/**
 * A key's limits as its record writes them: `rate` ("60/min": requests per window) and `quota`
 * ("500M/day": pixel-seconds of compute per UTC day). Parsed here so the keys CLI, the key store and
 * the limiter read them alike.
 */
import { GatewayError } from '../errors.js';

export interface RateLimit {
  /** Requests admitted per window. */
  requests: number;
  /** The window's length; windows are aligned to the epoch, so every instance agrees where one ends. */
  windowSeconds: number;
  /** As written ("60/min"). */
  text: string;
}

export interface DailyQuota {
  /** Pixel-seconds (image pixels x run seconds) per UTC day. */
  pixelSeconds: number;
  /** As written ("500M/day"). */
  text: string;
}

export interface KeyLimits {
  rate: RateLimit | null;
  quota: DailyQuota | null;
}

export const NO_LIMITS: KeyLimits = { rate: null, quota: null };

/** The name a caller without a key counts as (a gateway without keys): its limits, usage and results. */
export const ANONYMOUS = 'anonymous';

const UNIT_SECONDS: Record<string, number> = {
  s: 1,
  sec: 1,
  second: 1,
  m: 60,
  min: 60,
  minute: 60,
  h: 3600,
  hour: 3600,
  d: 86400,
  day: 86400,
};

const RATE = /^(\d+)\/(\d*)(s|sec|second|m|min|minute|h|hour|d|day)s?$/;
const RATE_FORMS = 'REQUESTS/UNIT or REQUESTS/N UNIT, UNIT one of s, min, hour, day (e.g. 60/min, 100/10s)';

/** "60/min", "10/s", "100/10s", "5000/day": at least 1 request per window of 1 s to 1 day. */
export function parseRate(text: string): RateLimit {
  const match = RATE.exec(text.replace(/\s+/g, ''));
  const requests = match ? Number(match[1]) : 0;
  const windowSeconds = match ? Number(match[2] || 1) * UNIT_SECONDS[match[3]] : 0;
  if (!match || requests < 1 || !Number.isSafeInteger(requests) || windowSeconds < 1 || windowSeconds > 86400)
    throw new GatewayError('BAD_REQUEST', `rate "${text}" is not a rate limit; write ${RATE_FORMS}, window <= 1 day`, {
      field: 'rate',
    });
  return { requests, windowSeconds, text };
}

/** Powers of ten; applied in the decimal text itself, so 1.1M is exactly 1100000. */
const SUFFIX_EXPONENT: Record<string, number> = { '': 0, k: 3, K: 3, M: 6, G: 9, T: 12 };
const QUOTA = /^(\d+(?:\.\d+)?)(?:([kKMGT])|e(\d+))?\/day$/;

/** "2000000/day", "500M/day", "1.5G/day", "2e9/day": a whole number of pixel-seconds (at least 1) per UTC day. */
export function parseQuota(text: string): DailyQuota {
  const match = QUOTA.exec(text.replace(/\s+/g, ''));
  const exponent = match ? (match[3] ?? SUFFIX_EXPONENT[match[2] ?? '']) : 0;
  const pixelSeconds = match ? Number(`${match[1]}e${exponent}`) : 0;
  if (!match || pixelSeconds < 1 || !Number.isSafeInteger(pixelSeconds))
    throw new GatewayError(
      'BAD_REQUEST',
      `quota "${text}" is not a daily quota; write PIXEL_SECONDS/day, a whole number of pixel-seconds ` +
        'optionally with k, M, G or T or an exponent (e.g. 500M/day, 2e9/day)',
      { field: 'quota' },
    );
  return { pixelSeconds, text };
}

/** A window as `parseRate` reads it back: `60/min`, `100/10s`. */
export function formatRate(rate: Pick<RateLimit, 'requests' | 'windowSeconds'> | null): string {
  if (!rate) return 'unlimited';
  const unit = ['s', 'min', 'hour', 'day'].find((name) => UNIT_SECONDS[name] === rate.windowSeconds);
  return unit ? `${rate.requests}/${unit}` : `${rate.requests}/${rate.windowSeconds}s`;
}
