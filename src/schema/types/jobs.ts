/**
 * Jobs: `submitEncode` / `submitDecode` return a Job at once; `job(id)` reads it, `cancelJob(id)`
 * cancels it, and the `jobProgress(id)` subscription streams its events (SSE or graphql-ws).
 */
import { ERROR_CODES } from '../../errors.js';
import type { JobError, JobEvent, JobEventOf, JobEventType, JobResult, JobView } from '../../jobs/events.js';
import { submitImg2imgResolver } from '../../resolvers/img2img.js';
import {
  cancelJobResolver,
  jobProgressSubscribe,
  jobResolver,
  submitDecodeResolver,
  submitEncodeResolver,
} from '../../resolvers/jobs.js';
import { ticketOf } from '../../resolvers/metering.js';
import { builder } from '../builder.js';
import { DecodeInput, DecodeResultType } from './decode.js';
import { EncodeInput, EncodeResultType } from './encode.js';
import { OperationEnum } from './enums.js';
import { Img2ImgInput, Img2ImgResultType, Img2ImgStageEnum } from './img2img.js';
import { PlanType } from './plan.js';

export const JobStatusEnum = builder.enumType('JobStatus', {
  description:
    'QUEUED until the run starts (reading the input, routing, waiting for device memory), ' +
    'RUNNING, then one of DONE, FAILED or CANCELLED.',
  values: ['QUEUED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED'] as const,
});

export const JobEventTypeEnum = builder.enumType('JobEventType', {
  values: ['QUEUED', 'ROUTED', 'RUNNING', 'DONE', 'FAILED', 'CANCELLED'] as const,
});

export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'The `extensions.code` of a GraphQL error, and the code of a failed job.',
  values: ERROR_CODES,
});

export const JobErrorType = builder.objectRef<JobError>('JobError').implement({
  description: 'Why a job failed: the same code and message a synchronous request would have got.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (e) => e.code }),
    message: t.exposeString('message'),
    retryAfterSeconds: t.float({
      nullable: true,
      description: 'For BUSY and SERVICE_UNAVAILABLE (Redis down, draining): when a retry is likely to be admitted.',
      resolve: (e) => e.retryAfterSeconds,
    }),
  }),
});

export const JobResultUnion = builder.unionType('JobResult', {
  description: 'What a finished job produced: the type `encode`, `decode` or `img2img` returns.',
  types: [EncodeResultType, DecodeResultType, Img2ImgResultType],
  resolveType: (result: JobResult) =>
    'timesteps' in result ? Img2ImgResultType : 'latent' in result ? EncodeResultType : DecodeResultType,
});

const JobProgressType = builder.objectRef<{ done: number; total: number }>('JobProgress').implement({
  description:
    'Steps of the run: tiles (plus the latent-resolution stage: its tiles, ' +
    'or one step where it runs on the whole map), ' +
    'or 1 for a whole run.',
  fields: (t) => ({
    done: t.exposeInt('done'),
    total: t.exposeInt('total'),
  }),
});

const EVENT_TYPE_NAMES: Record<JobEventType, string> = {
  QUEUED: 'JobQueuedEvent',
  ROUTED: 'JobRoutedEvent',
  RUNNING: 'JobRunningEvent',
  DONE: 'JobDoneEvent',
  FAILED: 'JobFailedEvent',
  CANCELLED: 'JobCancelledEvent',
};

export const JobEventInterface = builder.interfaceRef<JobEvent>('JobEvent').implement({
  description:
    "One step of a job. A job's events are numbered from 1 in order (`seq`); " +
    'the first is QUEUED and the last is exactly one of DONE, FAILED or CANCELLED.',
  resolveType: (event) => EVENT_TYPE_NAMES[event.type],
  fields: (t) => ({
    jobId: t.exposeID('jobId'),
    seq: t.exposeInt('seq', { description: "Position in the job's event log, from 1." }),
    type: t.field({ type: JobEventTypeEnum, resolve: (e) => e.type }),
    status: t.field({
      type: JobStatusEnum,
      description: "The job's status once this event happened.",
      resolve: (e) => e.status,
    }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
  }),
});

builder.objectRef<JobEventOf<'QUEUED'>>('JobQueuedEvent').implement({
  description:
    'Submitted (position null: the input is being read and routed), ' +
    'or waiting for device memory at `position` (1 = next).',
  interfaces: [JobEventInterface],
  fields: (t) => ({ position: t.exposeInt('position', { nullable: true }) }),
});

builder.objectRef<JobEventOf<'ROUTED'>>('JobRoutedEvent').implement({
  description: "The router's decision: route, target and the estimate it was planned with.",
  interfaces: [JobEventInterface],
  fields: (t) => ({
    route: t.field({ type: PlanType, resolve: (e) => e.plan }),
    stage: t.field({
      type: Img2ImgStageEnum,
      nullable: true,
      description: 'For img2img: the stage this plan is for.',
      resolve: (e) => e.stage ?? null,
    }),
  }),
});

builder.objectRef<JobEventOf<'RUNNING'>>('JobRunningEvent').implement({
  description:
    'Admitted and running (done 0), then after each tile. img2img: `stage`, and in DENOISE one event per ' +
    'network call: `done` is the step (from 1) of `total`, with its `timestep`.',
  interfaces: [JobEventInterface],
  fields: (t) => ({
    done: t.exposeInt('done'),
    total: t.exposeInt('total'),
    stage: t.field({ type: Img2ImgStageEnum, nullable: true, resolve: (e) => e.stage ?? null }),
    step: t.int({
      nullable: true,
      description: 'DENOISE: the step, from 1 (= done).',
      resolve: (e) => (e.stage === 'DENOISE' ? e.done : null),
    }),
    timestep: t.float({ nullable: true, resolve: (e) => e.timestep ?? null }),
  }),
});

builder.objectRef<JobEventOf<'DONE'>>('JobDoneEvent').implement({
  interfaces: [JobEventInterface],
  fields: (t) => ({ result: t.field({ type: JobResultUnion, resolve: (e) => e.result }) }),
});

builder.objectRef<JobEventOf<'FAILED'>>('JobFailedEvent').implement({
  interfaces: [JobEventInterface],
  fields: (t) => ({ error: t.field({ type: JobErrorType, resolve: (e) => e.error }) }),
});

builder.objectRef<JobEventOf<'CANCELLED'>>('JobCancelledEvent').implement({
  description: 'Stopped by cancelJob; any reservation it held has been released.',
  interfaces: [JobEventInterface],
  fields: (t) => ({ reason: t.exposeString('reason') }),
});

export const JobType = builder.objectRef<JobView>('Job').implement({
  description: `An encode, decode or img2img run in the background. Finished jobs are kept for JOB_TTL_SECONDS.`,
  fields: (t) => ({
    id: t.exposeID('id'),
    operation: t.field({ type: OperationEnum, resolve: (j) => j.operation }),
    model: t.exposeString('model'),
    status: t.field({ type: JobStatusEnum, resolve: (j) => j.status }),
    cancelRequested: t.boolean({
      description: 'True once cancelJob was called; the CANCELLED event follows when the run has stopped.',
      resolve: (j) => j.cancelRequested,
    }),
    queuePosition: t.int({
      nullable: true,
      description: 'While waiting for device memory: 1 = next.',
      resolve: (j) => j.queuePosition,
    }),
    route: t.field({
      type: PlanType,
      nullable: true,
      description: 'Set once the job has been routed.',
      resolve: (j) => j.plan,
    }),
    progress: t.field({ type: JobProgressType, nullable: true, resolve: (j) => j.progress }),
    result: t.field({ type: JobResultUnion, nullable: true, resolve: (j) => j.result }),
    error: t.field({ type: JobErrorType, nullable: true, resolve: (j) => j.error }),
    createdAt: t.field({ type: 'DateTime', resolve: (j) => j.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (j) => j.finishedAt }),
    expiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When a finished job is removed.',
      resolve: (j) => j.expiresAt,
    }),
    events: t.field({
      type: [JobEventInterface],
      description: 'The whole event log so far.',
      resolve: (j) => [...j.events],
    }),
  }),
});

builder.queryField('job', (t) =>
  t.field({
    type: JobType,
    description: 'A job by id (NOT_FOUND, or EXPIRED once removed after JOB_TTL_SECONDS).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => jobResolver(ctx, String(id)),
  }),
);

builder.mutationField('submitEncode', (t) =>
  t.field({
    type: JobType,
    description: 'Encodes an image as a job: returns at once; follow it with jobProgress or job.',
    args: { input: t.arg({ type: EncodeInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => submitEncodeResolver(ctx, input, ticketOf(ctx, info)),
  }),
);

builder.mutationField('submitDecode', (t) =>
  t.field({
    type: JobType,
    description: 'Decodes a latent as a job: returns at once; follow it with jobProgress or job.',
    args: { input: t.arg({ type: DecodeInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => submitDecodeResolver(ctx, input, ticketOf(ctx, info)),
  }),
);

builder.mutationField('submitImg2img', (t) =>
  t.field({
    type: JobType,
    description: 'img2img as a job: returns at once; its RUNNING events report each stage and denoising step.',
    args: { input: t.arg({ type: Img2ImgInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => submitImg2imgResolver(ctx, input, ticketOf(ctx, info)),
  }),
);

builder.mutationField('cancelJob', (t) =>
  t.field({
    type: JobType,
    description:
      'Cancels a job: a queued job leaves the queue, a running one stops at the next tile or denoising step. ' +
      'A finished job is returned unchanged.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => cancelJobResolver(ctx, String(id)),
  }),
);

builder.subscriptionField('jobProgress', (t) =>
  t.field({
    type: JobEventInterface,
    description:
      "A job's events: first its current state (latest queue position, route, latest progress, " +
      'and the terminal event if it has finished), ' +
      'then each new event, ending after the terminal one.',
    args: { id: t.arg.id({ required: true }) },
    subscribe: (_root, { id }, ctx) => jobProgressSubscribe(ctx, String(id)),
    resolve: (event: JobEvent) => event,
  }),
);
