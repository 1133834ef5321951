/**
 * Where jobs live: in this process (`JobManager`) or, with REDIS_URL, in Redis behind a shared queue
 * (`DurableJobs`). Submitting differs (a closure runs here; a serializable spec is queued), reading,
 * cancelling and following a job do not.
 */
import type { JobEvent, JobView } from './events.js';

export interface JobBackend {
  /** The job, or NOT_FOUND / EXPIRED. */
  get(id: string): JobView | Promise<JobView>;
  /** Asks the job to stop wherever it runs; a finished job is returned unchanged. */
  cancel(id: string): JobView | Promise<JobView>;
  /** The compacted log, then each new event, ending after the terminal one. */
  subscribe(id: string): AsyncIterable<JobEvent> | Promise<AsyncIterable<JobEvent>>;
  /** Stops taking new work, lets runs in flight finish for up to `deadlineMs`, hands back what it can. */
  drain(deadlineMs: number): Promise<void>;
  close(): void | Promise<void>;
}
