/**
 * Whether Redis answers: a PING every few seconds on a client of its own, so /healthz and /metrics
 * say so (and the log says when it goes and comes back) before a request finds out the hard way.
 */
import type { Redis } from 'ioredis';
import { createRedis, type RedisSettings, redactedUrl } from '../storage/redis-client.js';
import type { Logger } from './logger.js';

export interface RedisHealthSnapshot {
  ok: boolean;
  /** Why the last check failed; null when it passed. */
  reason: string | null;
  /** When the last check finished (null before the first). */
  checkedAt: Date | null;
  /** Failed checks since start. */
  failures: number;
}

export class RedisHealth {
  private readonly redis: Redis;
  private state: RedisHealthSnapshot = { ok: false, reason: 'not checked yet', checkedAt: null, failures: 0 };
  /** The connection's last error (e.g. ECONNREFUSED), a clearer reason than "max retries" while it reconnects. */
  private lastConnectionError: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly settings: RedisSettings,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {
    this.redis = createRedis(settings);
    this.redis.on('error', (error: Error) => (this.lastConnectionError = error.message || error.name));
    this.redis.on('ready', () => (this.lastConnectionError = null));
  }

  snapshot(): RedisHealthSnapshot {
    return { ...this.state };
  }

  /** One PING (bounded by the command timeout); updates the state and logs a change. */
  async check(): Promise<RedisHealthSnapshot> {
    let reason: string | null = null;
    try {
      await this.redis.ping();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reason = this.redis.status !== 'ready' && this.lastConnectionError ? this.lastConnectionError : message;
    }
    const was = this.state;
    this.state = { ok: reason === null, reason, checkedAt: new Date(), failures: was.failures + (reason ? 1 : 0) };
    const where = redactedUrl(this.settings.url);
    if (was.checkedAt && was.ok && reason)
      this.logger.warn({ redis: where, reason }, `Redis at ${where} is down: ${reason}`);
    if (was.checkedAt && !was.ok && !reason) this.logger.info({ redis: where }, `Redis at ${where} answers again`);
    return this.snapshot();
  }

  /** Checks every intervalMs from now on (the first check is the caller's). */
  start(): void {
    const next = () => {
      if (this.closed) return;
      this.timer = setTimeout(() => void this.check().then(next), this.intervalMs).unref();
    };
    next();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
