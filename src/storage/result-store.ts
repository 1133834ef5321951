/**
 * Results delivered by URL (latents and images), kept for a limited time. Expired entries leave a
 * tombstone for a while so a caller learns "expired" rather than "unknown".
 */
import { randomUUID } from 'node:crypto';

export interface StoredResult {
  kind: 'latent' | 'image';
  bytes: Uint8Array;
  /** Latents: shape and dtype, as the Hybrid Inference headers carry them. */
  shape?: number[];
  dtype?: string;
  contentType: string;
  expiresAt: number;
}

export type Lookup = { status: 'found'; result: StoredResult } | { status: 'expired' } | { status: 'unknown' };

export interface ResultStore {
  /** True when other gateway instances see the same results (their URLs are then accepted too). */
  readonly shared: boolean;
  put(result: Omit<StoredResult, 'expiresAt'>): Promise<{ id: string; expiresAt: number }>;
  get(id: string): Promise<Lookup>;
  close(): Promise<void>;
}

export class MemoryResultStore implements ResultStore {
  readonly shared = false;
  private readonly results = new Map<string, StoredResult>();
  private readonly tombstones = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, ttlSeconds * 1000)).unref();
  }

  async put(result: Omit<StoredResult, 'expiresAt'>) {
    const id = randomUUID();
    const expiresAt = this.now() + this.ttlSeconds * 1000;
    this.results.set(id, { ...result, expiresAt });
    return { id, expiresAt };
  }

  async get(id: string): Promise<Lookup> {
    this.sweep();
    const result = this.results.get(id);
    if (result) return { status: 'found', result };
    return this.tombstones.has(id) ? { status: 'expired' } : { status: 'unknown' };
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, result] of this.results) {
      if (result.expiresAt <= now) {
        this.results.delete(id);
        this.tombstones.set(id, now + this.ttlSeconds * 1000);
      }
    }
    for (const [id, until] of this.tombstones) if (until <= now) this.tombstones.delete(id);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
