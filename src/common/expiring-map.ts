/**
 * Entries by id that expire, for results and jobs kept for a TTL. An expired entry leaves a
 * tombstone for one more TTL so a caller learns "expired" rather than "unknown". Expired entries
 * are swept on every lookup and every minute (or TTL, if shorter).
 */
export type Expiring<V> = { status: 'found'; value: V } | { status: 'expired' } | { status: 'unknown' };

export class ExpiringMap<V> {
  private readonly entries = new Map<string, V>();
  private readonly tombstones = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  /**
   * `expiresAt(value)`: when the entry expires (ms since the epoch), or null while it does not.
   * `onExpire(value)`: called once an entry is removed (expired, or at close).
   */
  constructor(
    private readonly ttlMs: number,
    private readonly expiresAt: (value: V) => number | null,
    private readonly now: () => number = Date.now,
    private readonly onExpire?: (value: V) => void,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, ttlMs)).unref();
  }

  set(id: string, value: V): void {
    this.entries.set(id, value);
  }

  lookup(id: string): Expiring<V> {
    this.sweep();
    const value = this.entries.get(id);
    if (value !== undefined) return { status: 'found', value };
    return this.tombstones.has(id) ? { status: 'expired' } : { status: 'unknown' };
  }

  /** Forgets an entry without a tombstone (it was removed, not expired); false when there was none. */
  delete(id: string): boolean {
    return this.entries.delete(id);
  }

  values(): IterableIterator<V> {
    return this.entries.values();
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, value] of this.entries) {
      const expiresAt = this.expiresAt(value);
      if (expiresAt !== null && expiresAt <= now) {
        this.entries.delete(id);
        this.tombstones.set(id, now + this.ttlMs);
        this.onExpire?.(value);
      }
    }
    for (const [id, until] of this.tombstones) if (until <= now) this.tombstones.delete(id);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const value of this.entries.values()) this.onExpire?.(value);
    this.entries.clear();
  }
}
