/**
 * Rate limits and compute quotas per API key (a key is known by its name; 'anonymous' when the
 * gateway runs without keys).
 *
 * Compute is counted in pixel-seconds: the pixels of the request's images (the input image for an
 * encode, the output for a decode or img2img, times the batch) times the seconds its run took. Not
 * the estimator's bytes x seconds, because a caller can predict pixel-seconds from what it sends
 * and the gateway's own timings, whatever model, dtype, tiling or upstream serves it, while bytes
 * change with every recalibration of a memory profile and mean nothing for an upstream run.
 *
 * A compute request is admitted at the edge, before its input is read (so before anything is known
 * of its size), with a reservation of COMPUTE_RESERVATION pixel-seconds: it is refused once the
 * day's count has reached the quota. After the run, `settle` replaces the reservation by the
 * measured cost. Concurrent requests therefore see each other's finished runs, and a day's count
 * can pass the quota only by what the runs in flight when it ran out cost.
 */
import { GatewayError } from '../errors.js';
import type { RedisTarget } from '../storage/redis-client.js';
import {
  type CounterAdmission,
  DAY_MS,
  type LimitCounters,
  MemoryLimitCounters,
  RedisLimitCounters,
} from './limit-counters.js';
import { type KeyLimits, NO_LIMITS } from './limit-specs.js';

/** What a compute request reserves when admitted: the quota must have at least this much left. */
export const COMPUTE_RESERVATION = 1;

/** Requests are still counted, per minute, for a key without a rate limit. */
const DEFAULT_WINDOW_SECONDS = 60;

/** Pixel-seconds of one run, a whole number (rounded up) as the counters keep them. */
export function pixelSeconds(pixels: number, seconds: number): number {
  return Math.ceil(pixels * seconds);
}

/** An admitted request's reservation, to `settle` when its run is over. */
export interface Ticket {
  readonly keyName: string;
  /** The UTC day (days since the epoch) the estimate was counted in. */
  readonly day: number;
  readonly estimate: number;
}

/** Why a request was refused, and when a retry will be admitted. */
export interface RateLimited {
  keyName: string;
  /** `rate` when the window's requests are used up, `quota` when the day's pixel-seconds are; the later one. */
  reason: 'rate' | 'quota';
  /** Whole seconds until the limit that refused it resets (the later of both when both did). */
  retryAfterSeconds: number;
  /** The limit that refused it, and what is counted against it. */
  limit: number;
  used: number;
  /** The refused request's estimated pixel-seconds (0 when it runs nothing). */
  estimate: number;
}

export type Admission = { allowed: true; ticket: Ticket } | { allowed: false; limited: RateLimited };

export interface Usage {
  keyName: string;
  requests: { used: number; limit: number | null; windowSeconds: number; resetsAt: Date };
  pixelSeconds: { used: number; limit: number | null; resetsAt: Date };
}

/** The error the edges answer a refusal with: HTTP 429 + Retry-After, GraphQL code RATE_LIMITED. */
export function rateLimitedError(limited: RateLimited): GatewayError {
  const message =
    limited.reason === 'rate'
      ? `key "${limited.keyName}" has made ${limited.used} of its ${limited.limit} requests in this window`
      : `key "${limited.keyName}" has used ${limited.used} of its ${limited.limit} pixel-seconds today ` +
        `and this request is estimated at ${limited.estimate}`;
  return new GatewayError('RATE_LIMITED', `${message}; retry in ${limited.retryAfterSeconds} s`, {
    retryAfterSeconds: limited.retryAfterSeconds,
    reason: limited.reason,
    limit: limited.limit,
    used: limited.used,
  });
}

export type LimitsSource = (keyName: string) => KeyLimits | undefined | Promise<KeyLimits | undefined>;

export class KeyLimiter {
  /**
   * `limitsFor` gives a key's limits (from the key store); a key it does not know, or none given,
   * is unlimited but still counted, so `usage` shows what it used.
   */
  constructor(
    private readonly counters: LimitCounters,
    private readonly limitsFor: LimitsSource = () => NO_LIMITS,
    /** Told when a settlement could not be counted (Redis down): the run's answer still goes out. */
    private readonly onSettleError: (error: unknown, ticket: Ticket, measured: number) => void = () => {},
  ) {}

  /**
   * Counts one request of `keyName` and reserves `estimate` pixel-seconds (0 for a request that runs
   * nothing: it is held to the rate limit only), or says why not. An estimate above the whole daily
   * quota can never be admitted: BAD_REQUEST.
   */
  async admit(keyName: string, estimate = 0): Promise<Admission> {
    if (!Number.isFinite(estimate) || estimate < 0) throw new RangeError(`estimate must be >= 0, got ${estimate}`);
    const reserved = Math.ceil(estimate);
    const limits = (await this.limitsFor(keyName)) ?? NO_LIMITS;
    if (limits.quota && reserved > limits.quota.pixelSeconds)
      throw new GatewayError(
        'BAD_REQUEST',
        `this request is estimated at ${reserved} pixel-seconds, more than key "${keyName}"'s whole daily quota ` +
          `(${limits.quota.text}); send smaller images or fewer at once`,
        { estimate: reserved, quota: limits.quota.pixelSeconds },
      );
    const counted = await this.counters.admit(keyName, {
      windowMs: windowSeconds(limits) * 1000,
      maxRequests: limits.rate?.requests ?? null,
      maxPixelSeconds: limits.quota?.pixelSeconds ?? null,
      estimate: reserved,
    });
    if (counted.allowed) return { allowed: true, ticket: { keyName, day: counted.day, estimate: reserved } };
    return { allowed: false, limited: refusal(keyName, limits, counted, reserved) };
  }

  /**
   * Replaces an admitted request's estimate by what its run measured (pixelSeconds(); 0 if it never
   * ran). Never throws: a finished run's answer is not withheld for a counter, `onSettleError` hears it.
   */
  async settle(ticket: Ticket, measured: number): Promise<void> {
    const delta = Math.ceil(measured) - ticket.estimate;
    if (delta === 0) return;
    try {
      await this.counters.adjust(ticket.keyName, ticket.day, delta);
    } catch (error) {
      this.onSettleError(error, ticket, measured);
    }
  }

  /** What `keyName` has used in the current window and today, its limits, and when each count resets. */
  async usage(keyName: string): Promise<Usage> {
    const limits = (await this.limitsFor(keyName)) ?? NO_LIMITS;
    const windowMs = windowSeconds(limits) * 1000;
    const { requests, pixelSeconds, now } = await this.counters.read(keyName, windowMs);
    return {
      keyName,
      requests: {
        used: requests,
        limit: limits.rate?.requests ?? null,
        windowSeconds: windowMs / 1000,
        resetsAt: new Date(now - (now % windowMs) + windowMs),
      },
      pixelSeconds: {
        used: pixelSeconds,
        limit: limits.quota?.pixelSeconds ?? null,
        resetsAt: new Date(now - (now % DAY_MS) + DAY_MS),
      },
    };
  }

  close(): Promise<void> {
    return this.counters.close();
  }
}

function windowSeconds(limits: KeyLimits): number {
  return limits.rate?.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
}

function refusal(
  keyName: string,
  limits: KeyLimits,
  counted: Extract<CounterAdmission, { allowed: false }>,
  estimate: number,
): RateLimited {
  const byQuota = counted.quotaRetryMs > counted.rateRetryMs;
  return {
    keyName,
    reason: byQuota ? 'quota' : 'rate',
    retryAfterSeconds: Math.ceil(Math.max(counted.rateRetryMs, counted.quotaRetryMs) / 1000),
    limit: byQuota ? limits.quota!.pixelSeconds : limits.rate!.requests,
    used: byQuota ? counted.pixelSeconds : counted.requests,
    estimate,
  };
}

/** Counters in Redis when `redisUrl` is set (shared by every instance), else in this process. */
export function createKeyLimiter(
  redisUrl: RedisTarget | null,
  limitsFor?: LimitsSource,
  options: {
    prefix?: string;
    now?: () => number;
    onSettleError?: (error: unknown, ticket: Ticket, measured: number) => void;
  } = {},
): KeyLimiter {
  const counters = redisUrl ? new RedisLimitCounters(redisUrl, options.prefix) : new MemoryLimitCounters(options.now);
  return new KeyLimiter(counters, limitsFor, options.onSettleError);
}
