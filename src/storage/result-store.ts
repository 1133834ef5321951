/**
 * Results delivered by URL (latents and images), kept for a limited time. Expired entries leave a
 * tombstone for a while so a caller learns "expired" rather than "unknown".
 */
import { ANONYMOUS } from '../auth/limit-specs.js';
import { ExpiringMap } from '../common/expiring-map.js';
import { earlierRunMessage, issueId, unheldId } from '../common/ids.js';
import { GatewayError } from '../errors.js';

export interface StoredResult {
  kind: 'latent' | 'image';
  bytes: Uint8Array;
  /** Latents: shape and dtype, as the Hybrid Inference headers carry them. */
  shape?: number[];
  dtype?: string;
  contentType: string;
  expiresAt: number;
  /** The name of the API key that created it (absent: ANONYMOUS): only it may delete the result. */
  owner?: string;
}

export type Removal = 'deleted' | 'not-found' | 'forbidden';

/** 'earlier-run': issued by this gateway before it restarted, and lost with the process (in-memory store only). */
export type Lookup =
  | { status: 'found'; result: StoredResult }
  | { status: 'expired' }
  | { status: 'earlier-run' }
  | { status: 'unknown' };

export interface ResultStore {
  /** True when other gateway instances see the same results (their URLs are then accepted too). */
  readonly shared: boolean;
  put(result: Omit<StoredResult, 'expiresAt'>): Promise<{ id: string; expiresAt: number }>;
  get(id: string): Promise<Lookup>;
  /** Deletes the result if `owner` created it, in one step; an expired one is 'not-found'. */
  remove(id: string, owner: string): Promise<Removal>;
  close(): Promise<void>;
}

/** The answer for an 'earlier-run' lookup: EXPIRED (HTTP 410), with a reason that tells it from a plain expiry. */
export function earlierRunError(kind: 'latent' | 'image', id: string): GatewayError {
  const advice = `${kind === 'latent' ? 'encode the image' : 'run the request'} again (set REDIS_URL to keep results across restarts)`;
  return new GatewayError('EXPIRED', earlierRunMessage(kind, id, advice), { id, reason: 'earlier-run' });
}

/** What the in-memory store tells HOST_MEMORY (src/routing/host-ledger.ts): the bytes it keeps, until expiry. */
export interface HeldBytes {
  hold(bytes: number, expectedSeconds: number): { release(): void };
}

export class MemoryResultStore implements ResultStore {
  readonly shared = false;
  private readonly results: ExpiringMap<StoredResult & { held?: { release(): void } }>;
  private readonly startedAt: number;

  constructor(
    private readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly host?: HeldBytes,
  ) {
    this.startedAt = now();
    this.results = new ExpiringMap(
      ttlSeconds * 1000,
      (result) => result.expiresAt,
      now,
      (result) => result.held?.release(),
    );
  }

  async put(result: Omit<StoredResult, 'expiresAt'>) {
    const id = issueId(this.now());
    const expiresAt = this.now() + this.ttlSeconds * 1000;
    // Kept bytes count against HOST_MEMORY until they expire.
    const held = this.host?.hold(result.bytes.byteLength, this.ttlSeconds);
    this.results.set(id, { ...result, expiresAt, held });
    return { id, expiresAt };
  }

  async get(id: string): Promise<Lookup> {
    const found = this.results.lookup(id);
    if (found.status === 'found') return { status: 'found', result: found.value };
    if (found.status === 'expired') return found;
    return { status: unheldId(id, this.startedAt, this.ttlSeconds * 1000, this.now()) };
  }

  async remove(id: string, owner: string): Promise<Removal> {
    const found = this.results.lookup(id);
    if (found.status !== 'found') return 'not-found';
    if ((found.value.owner ?? ANONYMOUS) !== owner) return 'forbidden';
    this.results.delete(id);
    return 'deleted';
  }

  async close(): Promise<void> {
    this.results.close();
  }
}
