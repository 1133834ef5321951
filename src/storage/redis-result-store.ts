/**
 * Results in Redis, so that several gateway instances serve each other's URLs. Each result is
 * one hash (bytes + metadata) with the TTL as its expiry; a tombstone key outlives it by one more
 * TTL so a late caller hears "expired" rather than "unknown".
 */
import type { Redis } from 'ioredis';
import { ANONYMOUS } from '../auth/limit-specs.js';
import { issueId } from '../common/ids.js';
import { createRedis, type RedisTarget, viaRedis } from './redis-client.js';
import type { Lookup, Removal, ResultStore, StoredResult } from './result-store.js';

/** KEYS: the result, its tombstone; ARGV: the caller. 1 deleted, 0 not found, -1 someone else's. */
const REMOVE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner') or '${ANONYMOUS}'
if owner ~= ARGV[1] then return -1 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`;

export class RedisResultStore implements ResultStore {
  readonly shared = true;
  private readonly redis: Redis;

  /** `prefix` (REDIS_PREFIX) namespaces the keys, so deployments can share one Redis. */
  constructor(
    target: RedisTarget,
    private readonly ttlSeconds: number,
    private readonly prefix = 'latentgate:',
  ) {
    this.redis = createRedis(target);
  }

  private resultKey(id: string): string {
    return `${this.prefix}result:${id}`;
  }

  private tombstoneKey(id: string): string {
    return `${this.prefix}expired:${id}`;
  }

  async put(result: Omit<StoredResult, 'expiresAt'>) {
    const id = issueId();
    const expiresAt = Date.now() + this.ttlSeconds * 1000;
    const meta = JSON.stringify({
      kind: result.kind,
      shape: result.shape,
      dtype: result.dtype,
      contentType: result.contentType,
      expiresAt,
    });
    const replies = await viaRedis('storing a result', () =>
      this.redis
        .multi()
        .hset(this.resultKey(id), { meta, bytes: Buffer.from(result.bytes), owner: result.owner ?? ANONYMOUS })
        .pexpire(this.resultKey(id), this.ttlSeconds * 1000)
        .set(this.tombstoneKey(id), '1', 'PX', this.ttlSeconds * 2000)
        .exec(),
    );
    // A transaction that Redis discarded (or a command in it that failed) stored nothing.
    const failed = replies === null ? new Error('the transaction was discarded') : replies.find(([e]) => e)?.[0];
    if (failed) await viaRedis('storing a result', () => Promise.reject(failed));
    return { id, expiresAt };
  }

  async get(id: string): Promise<Lookup> {
    return viaRedis('reading a result', () => this.read(id));
  }

  private async read(id: string): Promise<Lookup> {
    const [meta, bytes, owner] = await Promise.all([
      this.redis.hget(this.resultKey(id), 'meta'),
      this.redis.hgetBuffer(this.resultKey(id), 'bytes'),
      this.redis.hget(this.resultKey(id), 'owner'),
    ]);
    if (meta && bytes) {
      const parsed = JSON.parse(meta) as Omit<StoredResult, 'bytes'>;
      return {
        status: 'found',
        result: {
          ...parsed,
          bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
          owner: owner ?? ANONYMOUS,
        },
      };
    }
    return (await this.redis.exists(this.tombstoneKey(id))) ? { status: 'expired' } : { status: 'unknown' };
  }

  async remove(id: string, owner: string): Promise<Removal> {
    const removed = await viaRedis('deleting a result', () =>
      this.redis.eval(REMOVE, 2, this.resultKey(id), this.tombstoneKey(id), owner),
    );
    return removed === 1 ? 'deleted' : removed === 0 ? 'not-found' : 'forbidden';
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
