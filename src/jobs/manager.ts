/**
 * Submits encode and decode runs as jobs: the caller gets the job at once, the run goes on in the
 * background with the router's hooks turned into job events, and `cancel` aborts it (the ledger
 * drops a queued waiter; a running job stops at the next tile boundary and releases its
 * reservation before its CANCELLED event is recorded).
 */
import { earlierRunMessage, issueId, unheldId } from '../common/ids.js';
import { cancelled, GatewayError, isCancellation } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import type { ExecuteHooks } from '../routing/router.js';
import type { JobBackend } from './backend.js';
import type { JobError, JobEvent, JobOperation, JobResult, JobRunContext } from './events.js';
import { Job } from './job.js';
import { JobStore } from './job-store.js';

/** The run behind a job: router hooks that become the job's events, and the job (for runs that report stages). */
export type JobRun = (hooks: ExecuteHooks, job: JobRunContext) => Promise<JobResult>;

/** Why a job that the shutdown deadline interrupted failed. */
export const SHUTDOWN_REASON = 'the gateway shut down before the job finished';

export class JobManager implements JobBackend {
  readonly store: JobStore;
  private readonly startedAt: number;

  constructor(
    ttlSeconds: number,
    private readonly now: () => number = Date.now,
    /** Where a failed job's error is counted and logged (none: not reported). */
    private readonly observability: Observability | null = null,
  ) {
    this.store = new JobStore(ttlSeconds, now);
    this.startedAt = now();
  }

  submit(operation: JobOperation, model: string, run: JobRun): Job {
    const job = new Job(issueId(this.now()), operation, model, this.store.ttlSeconds * 1000, this.now);
    this.store.add(job);
    job.emit({ type: 'QUEUED', position: null });
    const hooks: ExecuteHooks = {
      signal: job.signal,
      onRouted: (plan) => job.emit({ type: 'ROUTED', plan }),
      onQueued: (position) => job.emit({ type: 'QUEUED', position }),
      onStarted: (total) => job.emit({ type: 'RUNNING', done: 0, total }),
      onProgress: (done, total) => job.emit({ type: 'RUNNING', done, total }),
    };
    // The run starts on a later turn of the event loop, so the submitting mutation answers with the job as
    // submitted (QUEUED) however many microtask hops its resolver chain takes, and the caller can subscribe first.
    void new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => run(hooks, job))
      .then(
        (result) => {
          if (job.cancelRequested)
            job.emit({
              type: 'CANCELLED',
              reason: 'cancelled; the run had already finished its last step, its result was discarded',
            });
          else job.emit({ type: 'DONE', result });
        },
        (error: unknown) => {
          if (job.cancelRequested || isCancellation(error)) {
            job.emit({ type: 'CANCELLED', reason: isCancellation(error) ? error.message : 'cancelled' });
          } else {
            this.report(job, error);
            job.emit({ type: 'FAILED', error: toJobError(error) });
          }
        },
      );
    return job;
  }

  /** The job, or NOT_FOUND / EXPIRED. */
  get(id: string): Job {
    const found = this.store.lookup(id);
    if (found.status === 'expired') {
      throw new GatewayError(
        'EXPIRED',
        `job ${id} finished more than ${this.store.ttlSeconds} s ago and was removed (JOB_TTL_SECONDS)`,
        { id },
      );
    }
    if (found.status === 'found') return found.job;
    const unheld = unheldId(id, this.startedAt, this.store.ttlSeconds * 1000, this.now());
    if (unheld === 'earlier-run')
      throw new GatewayError(
        'EXPIRED',
        earlierRunMessage('job', id, 'jobs are kept in memory only, so submit it again'),
        { id, reason: 'earlier-run' },
      );
    if (unheld === 'expired')
      throw new GatewayError('EXPIRED', `job ${id} was issued by an earlier run of this gateway and has expired`, {
        id,
      });
    throw new GatewayError('NOT_FOUND', `no job with id ${id}`, { id });
  }

  /** Asks the job to stop; a finished job is returned unchanged. */
  cancel(id: string): Job {
    const job = this.get(id);
    job.requestCancel();
    return job;
  }

  subscribe(id: string): AsyncIterableIterator<JobEvent> {
    return this.get(id).subscribe();
  }

  /** Waits (up to `deadlineMs`) for the jobs in flight to finish; nothing here outlives the process to hand back. */
  async drain(deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (this.store.active().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  private report(job: Job, error: unknown): void {
    if (!this.observability) return;
    const { logger, metrics } = this.observability;
    const fields = { job: job.id, model: job.model, operation: job.operation };
    reportAnswer({ logger: logger.child(fields), metrics }, 'job', error);
  }

  /** Jobs still queued or running. */
  get activeCount(): number {
    return this.store.active().length;
  }

  /**
   * Ends every job still queued or running FAILED (SERVICE_UNAVAILABLE, SHUTDOWN_REASON), so its
   * subscribers and pollers learn why rather than losing it, and stops its run; returns how many.
   */
  interrupt(): number {
    const active = this.store.active();
    for (const job of active) {
      // FAILED first: the run's CANCELLED, when it stops, comes after the terminal event and is ignored.
      job.emit({
        type: 'FAILED',
        error: { code: 'SERVICE_UNAVAILABLE', message: SHUTDOWN_REASON, retryAfterSeconds: null },
      });
      job.abortRun(cancelled(SHUTDOWN_REASON));
    }
    return active.length;
  }

  close(): void {
    for (const job of this.store.active()) job.requestCancel(cancelled('the gateway is shutting down'));
    this.store.close();
  }
}

/** A run's failure as the job reports it (a GatewayError's code and message, INTERNAL otherwise). */
export function toJobError(error: unknown): JobError {
  if (error instanceof GatewayError) {
    const retry = error.details.retryAfterSeconds;
    return { code: error.code, message: error.message, retryAfterSeconds: typeof retry === 'number' ? retry : null };
  }
  return { code: 'INTERNAL', message: 'internal error (logged by the gateway)', retryAfterSeconds: null };
}
