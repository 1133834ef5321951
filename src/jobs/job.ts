/**
 * One submitted encode or decode: its state, its event log, and its live subscribers.
 *
 * Events are appended and handed to subscribers synchronously in `emit`, and `subscribe` takes its
 * snapshot of the log and registers its listener in the same synchronous step, so a subscriber sees
 * every event after its snapshot exactly once and none twice, whenever it arrives. After the terminal
 * event nothing more is recorded.
 */
import { cancelled, type GatewayError } from '../errors.js';
import type { AnyPlan } from '../routing/stage-planner.js';
import {
  applyEvent,
  compactLog,
  isTerminal,
  type JobError,
  type JobEvent,
  type JobEventBody,
  type JobOperation,
  type JobResult,
  type JobRunContext,
  type JobStatus,
  type JobView,
  statusAfter,
} from './events.js';

export class Job implements JobView, JobRunContext {
  readonly createdAt: Date;
  status: JobStatus = 'QUEUED';
  plan: AnyPlan | null = null;
  queuePosition: number | null = null;
  progress: { done: number; total: number } | null = null;
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  /** When a finished job is removed (finishedAt + the job TTL). */
  expiresAt: Date | null = null;
  result: JobResult | null = null;
  error: JobError | null = null;
  private readonly log: JobEvent[] = [];
  private readonly listeners = new Set<(event: JobEvent) => void>();
  private readonly controller = new AbortController();

  constructor(
    readonly id: string,
    readonly operation: JobOperation,
    readonly model: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.createdAt = new Date(now());
  }

  get events(): readonly JobEvent[] {
    return this.log;
  }

  /** Aborted by `requestCancel` with a CANCELLED reason; the pipeline checks it between tiles and while queued. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get cancelRequested(): boolean {
    return this.controller.signal.aborted;
  }

  get finished(): boolean {
    return this.finishedAt !== null;
  }

  /** Appends an event and hands it to live subscribers; ignored once the job has finished. */
  emit(body: JobEventBody): JobEvent | null {
    if (this.finished) return null;
    const at = new Date(this.now());
    const status = statusAfter(this.status, body);
    const event = { ...body, jobId: this.id, seq: this.log.length + 1, at, status } as JobEvent;
    applyEvent(this, event, this.ttlMs);
    this.log.push(event);
    for (const listener of [...this.listeners]) listener(event);
    if (isTerminal(event)) this.listeners.clear();
    return event;
  }

  /** Asks the run to stop (it throws `reason` where it stops); false when the job had already finished. */
  requestCancel(reason: GatewayError = cancelled('the job was cancelled (cancelJob)')): boolean {
    if (this.finished) return false;
    this.controller.abort(reason);
    return true;
  }

  /** Stops the run of a job that has already been ended (see JobManager.interrupt). */
  abortRun(reason: GatewayError): void {
    this.controller.abort(reason);
  }

  /**
   * The current state (the compacted log, see `compactLog`), then every later event, ending after
   * the terminal event. `return()` (a subscriber going away) unregisters at once.
   */
  subscribe(): AsyncIterableIterator<JobEvent> {
    const pending: JobEvent[] = compactLog(this.log);
    let closed = false;
    let wake: (() => void) | null = null;
    const listener = (event: JobEvent) => {
      pending.push(event);
      wake?.();
    };
    if (!this.finished) this.listeners.add(listener);
    const close = () => {
      closed = true;
      this.listeners.delete(listener);
      wake?.();
    };
    const iterator: AsyncIterableIterator<JobEvent> = {
      next: async () => {
        for (;;) {
          const event = pending.shift();
          if (event) {
            if (isTerminal(event)) close();
            return { value: event, done: false };
          }
          if (closed || this.finished) {
            close();
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      },
      return: async () => {
        pending.length = 0;
        close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
