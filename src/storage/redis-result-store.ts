/**
 * Results in Redis, so that several gateway instances serve each other's URLs. Each result is
 * one hash (bytes + metadata) with the TTL as its expiry; a tombstone key outlives it by one more
 * TTL so a late caller hears "expired" rather than "unknown".
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Lookup, ResultStore, StoredResult } from './result-store.js';

const PREFIX = 'latentgate:result:';
const TOMBSTONE = 'latentgate:expired:';

export class RedisResultStore implements ResultStore {
  readonly shared = true;
  private readonly redis: Redis;

  constructor(
    url: string,
    private readonly ttlSeconds: number,
  ) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    // A lost connection surfaces as failed requests; the client reconnects on its own.
    this.redis.on('error', () => {});
  }

  async put(result: Omit<StoredResult, 'expiresAt'>) {
    const id = randomUUID();
    const expiresAt = Date.now() + this.ttlSeconds * 1000;
    const meta = JSON.stringify({
      kind: result.kind,
      shape: result.shape,
      dtype: result.dtype,
      contentType: result.contentType,
      expiresAt,
    });
    await this.redis
      .multi()
      .hset(PREFIX + id, { meta, bytes: Buffer.from(result.bytes) })
      .pexpire(PREFIX + id, this.ttlSeconds * 1000)
      .set(TOMBSTONE + id, '1', 'PX', this.ttlSeconds * 2000)
      .exec();
    return { id, expiresAt };
  }

  async get(id: string): Promise<Lookup> {
    const [meta, bytes] = await Promise.all([
      this.redis.hget(PREFIX + id, 'meta'),
      this.redis.hgetBuffer(PREFIX + id, 'bytes'),
    ]);
    if (meta && bytes) {
      const parsed = JSON.parse(meta) as Omit<StoredResult, 'bytes'>;
      return {
        status: 'found',
        result: { ...parsed, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      };
    }
    return (await this.redis.exists(TOMBSTONE + id)) ? { status: 'expired' } : { status: 'unknown' };
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
