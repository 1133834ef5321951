/**
 * Where API keys live: the keys file (`API_KEYS_FILE`; JSON, mode 0600, replaced atomically) and,
 * when `REDIS_URL` is set, a Redis hash that every instance reads, so a key created or revoked on one
 * host counts on all of them. With Redis, Redis is the list the gateway checks (the file is this host's
 * copy); without it, the file is.
 *
 * A gateway's store keeps the list in memory and rereads it every `refreshMs` (at most 10 s), and at
 * once when another instance announces a change on the Redis channel, so a revoked key stops working
 * everywhere within that time even if the announcement is lost.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { type Config, ConfigError } from '../config/config.js';
import { GatewayError, serviceUnavailable } from '../errors.js';
import {
  createRedis,
  REDIS_RETRY_AFTER_SECONDS,
  type RedisTarget,
  redisTarget,
  viaRedis,
} from '../storage/redis-client.js';
import { describeProblem, validate } from '../validation/problems.js';
import {
  type ApiKey,
  generateKey,
  hashKey,
  NAME_PATTERN,
  publicKey,
  type RateLimit,
  type Scope,
  type StoredKey,
  storedKeySchema,
} from './keys.js';

export interface KeyStoreOptions {
  keysFile: string | null;
  redisUrl: RedisTarget | null;
  /** Prefix of the Redis hash and channel (`API_KEYS_REDIS_PREFIX`; tests give each their own). */
  redisPrefix: string;
  /** How often the list is reread; 0 (the CLI's) rereads nothing and subscribes to nothing. */
  refreshMs?: number;
  /**
   * Open even when Redis does not answer (REDIS_REQUIRED=false): until a read succeeds every request
   * needs a key and none is known, so the gateway fails closed rather than open.
   */
  tolerateUnavailable?: boolean;
}

export interface NewKey {
  name: string;
  scopes: Scope[];
  rate?: RateLimit | null;
  quotaPixelSecondsPerDay?: number | null;
}

const fileSchema = z.strictObject({ version: z.literal(1), keys: z.array(storedKeySchema) });

interface Entry {
  digest: Buffer;
  key: ApiKey;
}

export class KeyStore {
  private entries: Entry[] = [];
  private everHeldKeys = false;
  /** True from a failed first read until a read succeeds (see KeyStoreOptions.tolerateUnavailable). */
  private unverified = false;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** Names in the keys file that Redis does not hold (so no instance accepts them), found at open. */
  fileOnlyNames: string[] = [];
  /** Why the last reread failed (the list read before it stays in force); null after a good one. */
  lastRefreshError: Error | null = null;

  private constructor(
    private readonly options: KeyStoreOptions,
    private readonly redis: Redis | null,
    private readonly subscriber: Redis | null,
  ) {}

  /** The gateway's store (`watch`: rereading and subscribing) or the CLI's, as configured. */
  static fromConfig(config: Config, watch: boolean): Promise<KeyStore> {
    return KeyStore.open({
      keysFile: config.auth.keysFile,
      redisUrl: redisTarget(config),
      redisPrefix: config.auth.redisPrefix,
      refreshMs: watch ? config.auth.refreshMs : 0,
      tolerateUnavailable: watch && !config.redis.required,
    });
  }

  static async open(options: KeyStoreOptions): Promise<KeyStore> {
    const redis = options.redisUrl ? createRedis(options.redisUrl) : null;
    const watch = (options.refreshMs ?? 0) > 0;
    const subscriber = options.redisUrl && watch ? createRedis(options.redisUrl) : null;
    const store = new KeyStore(options, redis, subscriber);
    try {
      await store.refresh(!options.tolerateUnavailable);
      if (store.lastRefreshError) {
        store.unverified = true;
        // Subscribed on the subscriber's first connection (see listen).
        if (subscriber) store.listen(subscriber).catch(() => {});
        store.timer = setInterval(() => void store.refresh(), options.refreshMs).unref();
        return store;
      }
      if (redis && options.keysFile) {
        const shared = new Set((await store.readRedis()).map((k) => k.name));
        store.fileOnlyNames = (await readKeysFile(options.keysFile))
          .filter((k) => !shared.has(k.name))
          .map((k) => k.name);
      }
      if (subscriber) await store.listen(subscriber);
    } catch (error) {
      await store.close();
      throw error;
    }
    if (watch) store.timer = setInterval(() => void store.refresh(), options.refreshMs).unref();
    return store;
  }

  /**
   * Whether requests need a key: when a keys file is configured, or once this store has held a key (so
   * revoking the last key locks the gateway rather than opening it).
   */
  get required(): boolean {
    return this.options.keysFile !== null || this.everHeldKeys || this.unverified;
  }

  /** SERVICE_UNAVAILABLE while no read of the keys has succeeded yet (Redis down since start), else null. */
  get unavailable(): GatewayError | null {
    if (!this.unverified) return null;
    const reason = this.lastRefreshError?.message ?? 'not read yet';
    return serviceUnavailable(`the API keys cannot be checked yet: ${reason}`, REDIS_RETRY_AFTER_SECONDS, {
      reason: 'redis',
    });
  }

  get size(): number {
    return this.entries.length;
  }

  /** Where the list comes from, for the start-up line. */
  get source(): string {
    return this.redis ? 'Redis' : `${this.options.keysFile}`;
  }

  /** The key's record, or undefined; compares the key's hash with every stored one in constant time. */
  find(key: string): ApiKey | undefined {
    const digest = createHash('sha256').update(key, 'utf8').digest();
    let found: ApiKey | undefined;
    // No early exit: the time taken does not depend on which (or whether a) key matched.
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, digest)) found = entry.key;
    return found;
  }

  list(): ApiKey[] {
    return this.entries.map((e) => e.key).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Stores a new key's hash and returns the key, which is never seen again. */
  async create(request: NewKey): Promise<{ key: string; record: ApiKey }> {
    if (!NAME_PATTERN.test(request.name))
      throw new GatewayError(
        'BAD_REQUEST',
        `the key name "${request.name}" is not allowed; use 1 to 64 letters, digits, ".", "_" or "-", ` +
          'starting with a letter or digit',
      );
    if (!this.redis && !this.options.keysFile)
      throw new ConfigError('nowhere to keep API keys: set API_KEYS_FILE (and REDIS_URL to share them between hosts)');
    const key = generateKey();
    const stored: StoredKey = {
      name: request.name,
      scopes: [...new Set(request.scopes)],
      rate: request.rate ?? null,
      quotaPixelSecondsPerDay: request.quotaPixelSecondsPerDay ?? null,
      created: new Date().toISOString(),
      hash: hashKey(key),
    };
    if (this.redis) {
      const redis = this.redis;
      const added = await viaRedis('storing a key', () =>
        redis.hsetnx(this.hashName, stored.name, JSON.stringify(stored)),
      );
      if (!added) throw exists(stored.name);
      await viaRedis('announcing a key', () => redis.publish(this.channel, `create ${stored.name}`));
    }
    if (this.options.keysFile) {
      const file = this.options.keysFile;
      const write = async () => {
        const keys = await readKeysFile(file);
        // With Redis a name only the file holds is a leftover of an older list, which Redis has replaced.
        if (!this.redis && keys.some((k) => k.name === stored.name)) throw exists(stored.name);
        await writeKeysFile(file, [...keys.filter((k) => k.name !== stored.name), stored]);
      };
      // A key nobody was shown must not stay usable (nor keep its name taken) in Redis.
      await write().catch(async (error) => {
        await this.redis?.hdel(this.hashName, stored.name);
        throw error;
      });
    }
    await this.refresh(true);
    return { key, record: publicKey(stored) };
  }

  /** Removes the key from the file and from Redis, announcing it to every instance; false if no key has the name. */
  async revoke(name: string): Promise<boolean> {
    let removed = false;
    if (this.redis) {
      const redis = this.redis;
      removed = (await viaRedis('revoking a key', () => redis.hdel(this.hashName, name))) > 0;
      await viaRedis('announcing a revocation', () => redis.publish(this.channel, `revoke ${name}`));
    }
    if (this.options.keysFile) {
      const keys = await readKeysFile(this.options.keysFile);
      const kept = keys.filter((k) => k.name !== name);
      if (kept.length < keys.length) {
        await writeKeysFile(this.options.keysFile, kept);
        removed = true;
      }
    }
    await this.refresh(true);
    return removed;
  }

  /**
   * Rereads the list. A failed reread keeps the list in force and is kept in `lastRefreshError`; with
   * `strict` it throws instead (at open, and after a change made here).
   */
  async refresh(strict = false): Promise<void> {
    // One reread at a time; a change announced during one is picked up by running another after it.
    const previous = this.refreshing;
    const run = (async () => {
      await previous?.catch(() => {});
      try {
        const stored = this.redis
          ? await this.readRedis()
          : this.options.keysFile
            ? await readKeysFile(this.options.keysFile)
            : [];
        this.entries = stored.map((k) => ({ digest: Buffer.from(k.hash, 'hex'), key: publicKey(k) }));
        if (stored.length > 0) this.everHeldKeys = true;
        this.unverified = false;
        this.lastRefreshError = null;
      } catch (error) {
        this.lastRefreshError = error as Error;
        if (strict) throw error;
      }
    })();
    this.refreshing = run;
    await run;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.subscriber, this.redis].map((r) => r?.quit().catch(() => r.disconnect())));
  }

  private get hashName(): string {
    return `${this.options.redisPrefix}keys`;
  }

  private get channel(): string {
    return `${this.options.redisPrefix}changes`;
  }

  /**
   * Rereads on every announced change, and on each (re)connection, since changes announced while it was
   * away were missed; subscribes again then too (a first failed subscription included).
   */
  private listen(subscriber: Redis): Promise<unknown> {
    subscriber.on('message', () => void this.refresh());
    subscriber.on('ready', () => void subscriber.subscribe(this.channel).catch(() => {}));
    this.redis?.on('ready', () => void this.refresh());
    return viaRedis('subscribing to key changes', () => subscriber.subscribe(this.channel));
  }

  private async readRedis(): Promise<StoredKey[]> {
    const fields = await viaRedis('reading the API keys', () => (this.redis as Redis).hgetall(this.hashName));
    return Object.entries(fields).map(([name, text]) => {
      const result = validate(storedKeySchema, parseJson(text));
      if (!result.ok)
        throw new ConfigError(
          `the API key "${name}" in Redis (${this.hashName}) is not a key record: ` +
            result.problems.map(describeProblem).join('. '),
        );
      return result.value;
    });
  }
}

function exists(name: string): GatewayError {
  return new GatewayError(
    'BAD_REQUEST',
    `a key named "${name}" already exists; revoke it first or choose another name`,
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The keys in the file; none when the file does not exist yet. */
export async function readKeysFile(path: string): Promise<StoredKey[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigError(`API_KEYS_FILE names ${path}, which cannot be read: ${(error as Error).message}`);
  }
  const result = validate(fileSchema, parseJson(text));
  if (!result.ok)
    throw new ConfigError(`the keys file ${path} is not valid: ${result.problems.map(describeProblem).join('. ')}`);
  return result.value.keys;
}

/** Replaces the file in one step (a reader sees the old list or the new one), readable by its owner only. */
async function writeKeysFile(path: string, keys: StoredKey[]): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify({ version: 1, keys }, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(temp, 0o600); // whatever the umask
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
