/**
 * What the limiter counts per key: requests in the current window and pixel-seconds of the current
 * UTC day, one record per key name. Two stores with one contract: in this process, or in Redis so
 * every gateway instance counts against the same figures. Each `admit` checks both limits and
 * counts both in one step (one Lua script in Redis), so concurrent requests on any instance cannot
 * all pass a check that only one of them should. Redis' own clock decides windows and days, so
 * instances whose clocks differ still agree.
 */
import type { Redis } from 'ioredis';
import { createRedis, type RedisTarget, viaRedis } from '../storage/redis-client.js';

export const DAY_MS = 86_400_000;

export interface AdmitRequest {
  /** The request window's length (aligned to the epoch). */
  windowMs: number;
  /** Requests allowed per window; null = unlimited (still counted). */
  maxRequests: number | null;
  /** Pixel-seconds allowed per UTC day; null = unlimited (still counted). */
  maxPixelSeconds: number | null;
  /**
   * Pixel-seconds reserved now (a whole number >= 0); 0 skips the quota check (a request that runs
   * nothing), 1 or more is refused once the day's count plus it passes the quota.
   */
  estimate: number;
}

export type CounterAdmission =
  | { allowed: true; requests: number; pixelSeconds: number; now: number; day: number }
  | {
      allowed: false;
      requests: number;
      pixelSeconds: number;
      now: number;
      /** Milliseconds until the window ends when it is full, else 0. */
      rateRetryMs: number;
      /** Milliseconds until the day ends when the estimate does not fit, else 0. */
      quotaRetryMs: number;
    };

export interface CounterReading {
  requests: number;
  pixelSeconds: number;
  now: number;
}

export interface LimitCounters {
  admit(keyName: string, request: AdmitRequest): Promise<CounterAdmission>;
  /** Adds `delta` (whole, maybe negative) pixel-seconds to `day`'s count; nothing once that day has passed. */
  adjust(keyName: string, day: number, delta: number): Promise<void>;
  read(keyName: string, windowMs: number): Promise<CounterReading>;
  close(): Promise<void>;
}

interface KeyRecord {
  /** `windowStartMs/windowMs` of the window `requests` counts. */
  window: string;
  requests: number;
  day: number;
  pixelSeconds: number;
}

export class MemoryLimitCounters implements LimitCounters {
  // One small record per key name that ever called; the names are the configured keys and 'anonymous'.
  private readonly records = new Map<string, KeyRecord>();

  constructor(private readonly now: () => number = Date.now) {}

  async admit(keyName: string, request: AdmitRequest): Promise<CounterAdmission> {
    const now = this.now();
    const current = this.current(keyName, request.windowMs, now);
    const rateRetryMs =
      request.maxRequests !== null && current.requests >= request.maxRequests
        ? windowStart(now, request.windowMs) + request.windowMs - now
        : 0;
    const quotaRetryMs =
      request.maxPixelSeconds !== null &&
      request.estimate > 0 &&
      current.pixelSeconds + request.estimate > request.maxPixelSeconds
        ? (current.day + 1) * DAY_MS - now
        : 0;
    if (rateRetryMs > 0 || quotaRetryMs > 0)
      return {
        allowed: false,
        requests: current.requests,
        pixelSeconds: current.pixelSeconds,
        now,
        rateRetryMs,
        quotaRetryMs,
      };
    current.requests += 1;
    current.pixelSeconds += request.estimate;
    this.records.set(keyName, current);
    return { allowed: true, requests: current.requests, pixelSeconds: current.pixelSeconds, now, day: current.day };
  }

  async adjust(keyName: string, day: number, delta: number): Promise<void> {
    const record = this.records.get(keyName);
    if (record?.day === day) record.pixelSeconds += delta;
  }

  async read(keyName: string, windowMs: number): Promise<CounterReading> {
    const now = this.now();
    const { requests, pixelSeconds } = this.current(keyName, windowMs, now);
    return { requests, pixelSeconds, now };
  }

  async close(): Promise<void> {}

  /** The key's record as of `now`: a count from an earlier window or day reads as 0. */
  private current(keyName: string, windowMs: number, now: number): KeyRecord {
    const stored = this.records.get(keyName);
    const window = `${windowStart(now, windowMs)}/${windowMs}`;
    const day = Math.floor(now / DAY_MS);
    return {
      window,
      requests: stored?.window === window ? stored.requests : 0,
      day,
      pixelSeconds: stored?.day === day ? stored.pixelSeconds : 0,
    };
  }
}

function windowStart(now: number, windowMs: number): number {
  return now - (now % windowMs);
}

/** Redis' clock in milliseconds, the window of ARGV[1] ms and the UTC day; then the key's counts in them. */
const CURRENT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local windowMs = tonumber(ARGV[1])
local window = string.format('%.0f/%.0f', now - now % windowMs, windowMs)
local day = math.floor(now / ${DAY_MS})
local stored = redis.call('HMGET', KEYS[1], 'window', 'requests', 'day', 'ps')
local requests = 0
if stored[1] == window then requests = tonumber(stored[2]) end
local used = 0
if tonumber(stored[3]) == day then used = tonumber(stored[4]) end
`;

/** ARGV: windowMs, maxRequests (-1 = none), maxPixelSeconds (-1 = none), estimate. */
const ADMIT = `${CURRENT}
local maxRequests = tonumber(ARGV[2])
local maxPs = tonumber(ARGV[3])
local estimate = tonumber(ARGV[4])
local rateRetry = 0
if maxRequests >= 0 and requests >= maxRequests then rateRetry = now - now % windowMs + windowMs - now end
local quotaRetry = 0
if maxPs >= 0 and estimate > 0 and used + estimate > maxPs then quotaRetry = (day + 1) * ${DAY_MS} - now end
if rateRetry > 0 or quotaRetry > 0 then return {0, requests, used, now, rateRetry, quotaRetry} end
redis.call('HSET', KEYS[1], 'window', window, 'requests', requests + 1, 'day', day,
  'ps', string.format('%.0f', used + estimate))
redis.call('PEXPIRE', KEYS[1], ${2 * DAY_MS})
return {1, requests + 1, used + estimate, now, day}
`;

/** ARGV: day, delta. */
const ADJUST = `
if tonumber(redis.call('HGET', KEYS[1], 'day')) == tonumber(ARGV[1]) then
  local ps = tonumber(redis.call('HGET', KEYS[1], 'ps')) + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'ps', string.format('%.0f', ps))
end
return 0
`;

const READ = `${CURRENT}
return {requests, used, now}
`;

export class RedisLimitCounters implements LimitCounters {
  private readonly redis: Redis;

  /** `prefix` namespaces the records (`PREFIX + key name`), so tests and deployments can share a Redis. */
  constructor(
    target: RedisTarget,
    private readonly prefix = 'latentgate:limits:',
  ) {
    this.redis = createRedis(target);
  }

  async admit(keyName: string, request: AdmitRequest): Promise<CounterAdmission> {
    const reply = (await viaRedis("counting the request against its key's limits", () =>
      this.redis.eval(
        ADMIT,
        1,
        this.prefix + keyName,
        request.windowMs,
        request.maxRequests ?? -1,
        request.maxPixelSeconds ?? -1,
        request.estimate,
      ),
    )) as number[];
    const [allowed, requests, pixelSeconds, now] = reply;
    return allowed === 1
      ? { allowed: true, requests, pixelSeconds, now, day: reply[4] }
      : { allowed: false, requests, pixelSeconds, now, rateRetryMs: reply[4], quotaRetryMs: reply[5] };
  }

  async adjust(keyName: string, day: number, delta: number): Promise<void> {
    await viaRedis("adjusting a key's quota", () => this.redis.eval(ADJUST, 1, this.prefix + keyName, day, delta));
  }

  async read(keyName: string, windowMs: number): Promise<CounterReading> {
    const [requests, pixelSeconds, now] = (await viaRedis("reading a key's usage", () =>
      this.redis.eval(READ, 1, this.prefix + keyName, windowMs),
    )) as number[];
    return { requests, pixelSeconds, now };
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
