/**
 * Jobs by id. A job stays while it runs; once finished it is kept for the job TTL
 * (`JOB_TTL_SECONDS`) with its result and event log, then removed. A removed job leaves a
 * tombstone for another TTL so a caller learns "expired" rather than "unknown".
 */
import { ExpiringMap } from '../common/expiring-map.js';
import type { Job } from './job.js';

export type JobLookup = { status: 'found'; job: Job } | { status: 'expired' } | { status: 'unknown' };

export class JobStore {
  // A job does not expire while it runs; once finished, its expiresAt is set.
  private readonly jobs: ExpiringMap<Job>;

  constructor(
    readonly ttlSeconds: number,
    now: () => number = Date.now,
  ) {
    this.jobs = new ExpiringMap(ttlSeconds * 1000, (job) => job.expiresAt?.getTime() ?? null, now);
  }

  add(job: Job): void {
    this.jobs.set(job.id, job);
  }

  lookup(id: string): JobLookup {
    const found = this.jobs.lookup(id);
    return found.status === 'found' ? { status: 'found', job: found.value } : found;
  }

  /** Jobs still queued or running. */
  active(): Job[] {
    return [...this.jobs.values()].filter((job) => !job.finished);
  }

  close(): void {
    this.jobs.close();
  }
}
