/**
 * This instance among its peers: every heartbeat it publishes its own record and reads the others',
 * and hands the live peers' endpoints to the upstream pool, where the router weighs them against the
 * local device like any upstream. A peer whose record expired (it stopped beating) leaves the pool;
 * so does every peer when Redis cannot be read for a whole TTL (they may be gone, nobody can tell).
 */
import { randomUUID } from 'node:crypto';
import type { PeersConfig } from '../config/config.js';
import type { Logger } from '../observability/logger.js';
import type { RedisTarget } from '../storage/redis-client.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { type PeerEndpoint, type PeerState, peerEndpoints } from './peer-endpoint.js';
import { type PeerRecord, PeerRegistry } from './registry.js';

/** What this instance advertises; the directory adds who it is and when. */
export type SelfDescription = Omit<PeerRecord, 'id' | 'name' | 'url' | 'lastSeen'>;

/** A peer as /healthz and the `plan` query show it. */
export interface PeerSnapshot extends Omit<PeerRecord, 'id' | 'lastSeen'> {
  /** The route target of requests sent there. */
  target: string;
  lastSeen: string;
}

interface Known {
  state: PeerState;
  endpoints: PeerEndpoint[];
  /** Local time this instance last read the record. */
  readAt: number;
}

export class PeerDirectory {
  readonly id = randomUUID();
  private readonly registry: PeerRegistry;
  private readonly known = new Map<string, Known>();
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private failing = false;

  constructor(
    private readonly config: PeersConfig,
    redis: RedisTarget,
    private readonly describe: () => SelfDescription,
    private readonly pool: UpstreamPool,
    private readonly logger: Logger,
  ) {
    this.registry = new PeerRegistry(redis, config.redisPrefix, config.ttlMs);
  }

  /** Beats now and every `heartbeatMs`; resolves after the first beat, so peers are known at start. */
  async start(): Promise<void> {
    this.timer = setInterval(() => void this.beat(), this.config.heartbeatMs);
    this.timer.unref();
    await this.beat();
  }

  /** One heartbeat (skipped while the previous one is still waiting on Redis). */
  beat(): Promise<void> {
    this.beating ??= this.publishAndRead().finally(() => {
      this.beating = null;
    });
    return this.beating;
  }

  private async publishAndRead(): Promise<void> {
    try {
      const { name, url } = this.config;
      await this.registry.publish({ ...this.describe(), id: this.id, name, url, lastSeen: Date.now() });
      this.update(await this.registry.list());
      if (this.failing) this.logger.info('peers: the registry answers again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: error }, 'peers: the registry in Redis did not answer');
      this.failing = true;
    }
    this.dropUnread();
  }

  private update(records: readonly PeerRecord[]): void {
    const now = Date.now();
    const live = new Set<string>();
    for (const record of records) {
      if (record.id === this.id) continue;
      live.add(record.id);
      const known = this.known.get(record.id);
      if (known && sameModels(known.state.record, record)) {
        known.state.record = record;
        known.readAt = now;
        continue;
      }
      const state = { record };
      const endpoints = peerEndpoints(state, this.config.name, this.config.token?.reveal() ?? null);
      this.known.set(record.id, { state, endpoints, readAt: now });
    }
    for (const id of this.known.keys()) if (!live.has(id)) this.known.delete(id);
    this.pool.setPeers([...this.known.values()].flatMap((k) => k.endpoints));
  }

  private dropUnread(): void {
    const before = this.known.size;
    for (const [id, k] of this.known) if (Date.now() - k.readAt > this.config.ttlMs) this.known.delete(id);
    if (this.known.size < before) this.pool.setPeers([...this.known.values()].flatMap((k) => k.endpoints));
  }

  snapshot(): PeerSnapshot[] {
    return [...this.known.values()].map(({ state: { record } }) => {
      const { id: _id, lastSeen, ...rest } = record;
      return { ...rest, target: `peer:${record.name}`, lastSeen: new Date(lastSeen).toISOString() };
    });
  }

  /** Stops beating and leaves the registry at once. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    await this.registry.remove(this.id).catch(() => {});
    await this.registry.close();
  }
}

function sameModels(a: PeerRecord, b: PeerRecord): boolean {
  return a.url === b.url && a.name === b.name && JSON.stringify(a.models) === JSON.stringify(b.models);
}
