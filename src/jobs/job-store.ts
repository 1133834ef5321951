/**
 * Jobs by id. A job stays while it runs; once finished it is kept for the job TTL
 * (`JOB_TTL_SECONDS`) with its result and event log, then removed. A removed job leaves a
 * tombstone for another TTL so a caller learns "expired" rather than "unknown".
 */
import type { Job } from './job.js';

export type JobLookup = { status: 'found'; job: Job } | { status: 'expired' } | { status: 'unknown' };

export class JobStore {
  private readonly jobs = new Map<string, Job>();
  private readonly tombstones = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    readonly ttlSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(60_000, ttlSeconds * 1000)).unref();
  }

  add(job: Job): void {
    this.jobs.set(job.id, job);
  }

  lookup(id: string): JobLookup {
    this.sweep();
    const job = this.jobs.get(id);
    if (job) return { status: 'found', job };
    return this.tombstones.has(id) ? { status: 'expired' } : { status: 'unknown' };
  }

  /** Jobs still queued or running. */
  active(): Job[] {
    return [...this.jobs.values()].filter((job) => !job.finished);
  }

  get size(): number {
    return this.jobs.size;
  }

  sweep(): void {
    const now = this.now();
    for (const [id, job] of this.jobs) {
      if (job.expiresAt && job.expiresAt.getTime() <= now) {
        this.jobs.delete(id);
        this.tombstones.set(id, now + this.ttlSeconds * 1000);
      }
    }
    for (const [id, until] of this.tombstones) if (until <= now) this.tombstones.delete(id);
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
