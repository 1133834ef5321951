/**
 * The one place ioredis clients are made, so that every one has the same bounds: a command fails after
 * `commandTimeoutMs`, a connection attempt after `connectTimeoutMs`, nothing waits in an offline
 * queue once the first connection was made (a command sent while Redis is away fails at once), and
 * reconnection tries every second or two, so a Redis that comes back is used again within seconds.
 * A Redis failure reaches callers as SERVICE_UNAVAILABLE (`redisUnavailable`), never as a hang.
 */
import { Redis, type RedisOptions, ReplyError } from 'ioredis';
import type { Config } from '../config/config.js';
import { GatewayError, serviceUnavailable } from '../errors.js';

export interface RedisSettings {
  url: string;
  commandTimeoutMs: number;
  connectTimeoutMs: number;
}

/** Where to connect: a URL alone takes the default bounds (the CLI, tests). */
export type RedisTarget = string | RedisSettings;

export const REDIS_DEFAULTS = { commandTimeoutMs: 2000, connectTimeoutMs: 5000 } as const;

/** Longest wait between reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 2000;

/** What a caller refused because Redis failed is told to wait before retrying. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

export function redisSettings(target: RedisTarget): RedisSettings {
  return typeof target === 'string' ? { url: target, ...REDIS_DEFAULTS } : target;
}

/** The configured Redis (REDIS_URL and its bounds), or null without one. */
export function redisTarget(config: Config): RedisSettings | null {
  if (!config.redisUrl) return null;
  const { commandTimeoutMs, connectTimeoutMs } = config.redis;
  return { url: config.redisUrl, commandTimeoutMs, connectTimeoutMs };
}

/** The bounded options (for a client made elsewhere, e.g. a queue library's, to start from). */
export function redisOptions(target: RedisTarget): RedisOptions {
  const settings = redisSettings(target);
  return {
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    // A command queued while disconnected fails after one reconnection attempt rather than waiting on.
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 200, MAX_RECONNECT_DELAY_MS),
  };
}

/**
 * A client with the bounds above. Commands sent before the first connection is up wait for it (at
 * most commandTimeoutMs); after that the offline queue is off, so none piles up while Redis is away.
 */
export function createRedis(target: RedisTarget): Redis {
  const settings = redisSettings(target);
  const redis = new Redis(settings.url, { ...redisOptions(settings), enableOfflineQueue: true });
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
  // A lost connection surfaces as failed commands (and in the health monitor); the client reconnects.
  redis.on('error', () => {});
  return redis;
}

/** Redis' `url` without its password, for messages. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'REDIS_URL';
  }
}

/** Reply errors that mean "not now" rather than a wrong command. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

const NOT_CONNECTED = /max retries per request|Stream isn't writeable|Connection is closed/i;

/**
 * The error a caller gets when a Redis command failed: SERVICE_UNAVAILABLE with retryAfterSeconds for a
 * lost connection, a timeout or a Redis that is loading; any other error reply (a bug) as it is.
 */
export function redisUnavailable(error: unknown, what: string): unknown {
  if (error instanceof GatewayError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ReplyError && !TRANSIENT_REPLY.test(message)) return error;
  // ioredis' words for "not connected" name its options; the caller needs only the fact.
  const reason = NOT_CONNECTED.test(message) ? 'no connection' : message;
  return serviceUnavailable(
    `Redis did not answer while ${what} (${reason}); retry shortly`,
    REDIS_RETRY_AFTER_SECONDS,
    {
      reason: 'redis',
    },
  );
}

/** Runs `command`, turning a Redis failure into redisUnavailable's error. */
export async function viaRedis<T>(what: string, command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (error) {
    throw redisUnavailable(error, what);
  }
}
