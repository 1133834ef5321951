/**
 * What a job reports while it runs. Every job's log starts with QUEUED and ends with exactly one
 * terminal event (DONE, FAILED or CANCELLED); `seq` numbers events of one job from 1, in order.
 *
 *   QUEUED(position: null)       submitted; the input is being read and the request planned
 *   ROUTED(plan)                 the router's decision (route, target, estimates); again on failover
 *   QUEUED(position: n)          waiting for device memory, n-th in the ledger's queue (0+ times)
 *   RUNNING(done: 0, total)      admitted: the reservation is held and the run started
 *   RUNNING(done: k, total)      after each tile (or the whole run) finished
 *
 * img2img jobs route and run four stages: ROUTED and RUNNING carry the `stage`; RUNNING events of
 * the DENOISE stage are exactly one per network call, `done` = the step (from 1) with its `timestep`.
 *   DONE(result) | FAILED(error) | CANCELLED
 */
import type { ErrorCode } from '../errors.js';
import type { ServedOperation } from '../models/model.js';
import type { DecodeResult } from '../pipeline/decode.js';
import type { EncodeResult } from '../pipeline/encode.js';
import type { Img2ImgResult, Img2ImgStage } from '../pipeline/img2img-types.js';
import type { AnyPlan } from '../routing/stage-planner.js';

export type JobStatus = 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED';
export type JobEventType = 'QUEUED' | 'ROUTED' | 'RUNNING' | 'DONE' | 'FAILED' | 'CANCELLED';
export type JobOperation = ServedOperation;
export type JobResult = EncodeResult | DecodeResult | Img2ImgResult;

export interface JobError {
  code: ErrorCode;
  message: string;
  retryAfterSeconds: number | null;
}

interface EventBase {
  jobId: string;
  seq: number;
  at: Date;
  /** The job's status once this event happened. */
  status: JobStatus;
}

export type JobEventBody =
  | { type: 'QUEUED'; position: number | null }
  | { type: 'ROUTED'; plan: AnyPlan; stage?: Img2ImgStage }
  | { type: 'RUNNING'; done: number; total: number; stage?: Img2ImgStage; timestep?: number | null }
  | { type: 'DONE'; result: JobResult }
  | { type: 'FAILED'; error: JobError }
  | { type: 'CANCELLED'; reason: string };

export type JobEvent = EventBase & JobEventBody;
export type JobEventOf<T extends JobEventType> = Extract<JobEvent, { type: T }>;

export const TERMINAL: ReadonlySet<JobEventType> = new Set(['DONE', 'FAILED', 'CANCELLED']);

export function isTerminal(event: Pick<JobEvent, 'type'>): boolean {
  return TERMINAL.has(event.type);
}

export function statusAfter(current: JobStatus, body: JobEventBody): JobStatus {
  switch (body.type) {
    case 'QUEUED':
    case 'ROUTED':
      return current === 'RUNNING' ? 'RUNNING' : 'QUEUED';
    case 'RUNNING':
      return 'RUNNING';
    default:
      return body.type;
  }
}

/** A job's state as GraphQL's `Job` reads it: an in-memory `Job`, or one read from Redis (src/jobs/redis-job-log.ts). */
export interface JobView {
  readonly id: string;
  readonly operation: JobOperation;
  readonly model: string;
  readonly createdAt: Date;
  readonly cancelRequested: boolean;
  readonly events: readonly JobEvent[];
  status: JobStatus;
  plan: AnyPlan | null;
  queuePosition: number | null;
  progress: { done: number; total: number } | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  expiresAt: Date | null;
  result: JobResult | null;
  error: JobError | null;
}

/** What a run sees of its job: the signal that cancels it, and where it records events of its own (img2img stages). */
export interface JobRunContext {
  readonly signal: AbortSignal;
  emit(body: JobEventBody): unknown;
}

/** The fields of a job's state that its events set. */
export type JobStateFields = Pick<
  JobView,
  'status' | 'plan' | 'queuePosition' | 'progress' | 'startedAt' | 'finishedAt' | 'expiresAt' | 'result' | 'error'
>;

/** `state` after `event` (already numbered and given its status); both modes replay events through this. */
export function applyEvent(state: JobStateFields, event: JobEvent, ttlMs: number): void {
  state.status = event.status;
  switch (event.type) {
    case 'QUEUED':
      state.queuePosition = event.position;
      break;
    case 'ROUTED':
      state.plan = event.plan;
      break;
    case 'RUNNING':
      state.queuePosition = null;
      state.startedAt ??= event.at;
      state.progress = { done: event.done, total: event.total };
      break;
    case 'DONE':
      state.result = event.result;
      break;
    case 'FAILED':
      state.error = event.error;
      break;
  }
  if (isTerminal(event)) {
    state.queuePosition = null;
    state.finishedAt = event.at;
    state.expiresAt = new Date(event.at.getTime() + ttlMs);
  }
}

/**
 * The current state as a short, ordered event list for a subscriber that arrives late: every
 * QUEUED or RUNNING event that a later event of the same type supersedes is left out, so what
 * remains is (in order) the latest queue position, the route, the latest progress and the
 * terminal event, each with its original `seq`.
 */
export function compactLog(events: readonly JobEvent[]): JobEvent[] {
  const lastOfType = new Map<JobEventType, number>();
  for (const [i, e] of events.entries()) lastOfType.set(e.type, i);
  return events.filter((e, i) => (e.type !== 'QUEUED' && e.type !== 'RUNNING') || lastOfType.get(e.type) === i);
}
