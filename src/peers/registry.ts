/**
 * Where instances find each other: each one's record (models, free memory, queue, measured speed)
 * is a Redis string that expires `ttlMs` after its last heartbeat, so an instance that dies drops out
 * by itself; a sorted set indexes the ids (by last heartbeat) so nobody has to SCAN for them.
 */
import type { Redis } from 'ioredis';
import type { ServedOperation } from '../models/model.js';
import { createRedis, type RedisTarget, redisSettings } from '../storage/redis-client.js';

export interface PeerSpeed {
  model: string;
  operation: string;
  /** Measured on that instance (whole runs), seconds per megapixel. */
  secondsPerMegapixel: number;
}

/** What an instance says about itself in each heartbeat. */
export interface PeerRecord {
  /** Random per process start, so a restarted instance is a new peer. */
  id: string;
  name: string;
  url: string;
  models: { id: string; operations: ServedOperation[] }[];
  device: string;
  budgetBytes: number;
  freeBytes: number;
  queued: number;
  running: number;
  maxQueueLength: number;
  /** Seconds until everything admitted or queued there now has run (its ledger's estimate). */
  drainSeconds: number;
  speed: PeerSpeed[];
  /** Epoch ms of this heartbeat (the instance's clock). */
  lastSeen: number;
}

export class PeerRegistry {
  private readonly redis: Redis;
  private readonly index: string;

  constructor(
    target: RedisTarget,
    private readonly prefix: string,
    private readonly ttlMs: number,
  ) {
    // A heartbeat that cannot be sent is retried on the next beat; none should wait long for a dead Redis.
    const settings = redisSettings(target);
    this.redis = createRedis({ ...settings, commandTimeoutMs: Math.min(settings.commandTimeoutMs, ttlMs / 2) });
    this.index = `${prefix}index`;
  }

  private key(id: string): string {
    return `${this.prefix}instance:${id}`;
  }

  async publish(record: PeerRecord): Promise<void> {
    await this.redis
      .multi()
      .set(this.key(record.id), JSON.stringify(record), 'PX', this.ttlMs)
      .zadd(this.index, record.lastSeen, record.id)
      .exec();
  }

  /** Every live record (its key has not expired); ids whose key is gone leave the index. */
  async list(): Promise<PeerRecord[]> {
    const ids = await this.redis.zrange(this.index, 0, -1);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.key(id)));
    const gone = ids.filter((_, i) => values[i] === null);
    if (gone.length > 0) await this.redis.zrem(this.index, ...gone);
    return values.flatMap((v) => (v === null ? [] : parseRecord(v)));
  }

  /** Leaves at once (a clean shutdown), rather than after the TTL. */
  async remove(id: string): Promise<void> {
    await this.redis.multi().del(this.key(id)).zrem(this.index, id).exec();
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** A record as written by `publish`; one that is not (another version's, a stray key) is left out. */
function parseRecord(text: string): PeerRecord[] {
  try {
    const record = JSON.parse(text) as PeerRecord;
    const valid =
      typeof record.id === 'string' &&
      typeof record.url === 'string' &&
      Array.isArray(record.models) &&
      Array.isArray(record.speed) &&
      [record.budgetBytes, record.freeBytes, record.queued, record.maxQueueLength, record.drainSeconds].every(
        Number.isFinite,
      );
    return valid ? [record] : [];
  } catch {
    return [];
  }
}
