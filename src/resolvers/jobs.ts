import type { Ticket } from '../auth/limiter.js';
import type { JobBackend } from '../jobs/backend.js';
import type { JobEvent, JobView } from '../jobs/events.js';
import { type JobSpec, prepareRun } from '../jobs/runs.js';
import { resultCost } from '../pipeline/compute-cost.js';
import type { GraphQLContext } from '../schema/builder.js';
import { type DecodeArgs, decodeRequest } from './decode.js';
import { type EncodeArgs, encodeRequest } from './encode.js';
import { metered, submitted } from './metering.js';
import { ownedServices } from './owner.js';

/**
 * The input is read and checked before the job exists (an upload must be read while the request is
 * open; a bad argument or an unknown model is a plain GraphQL error); everything after that is the
 * job's, and fails the job rather than the mutation.
 */
export async function submitEncodeResolver(
  ctx: GraphQLContext,
  args: EncodeArgs,
  ticket: Ticket | null = null,
): Promise<JobView> {
  return submitted(ctx.services.limiter, ticket, async () => {
    const request = await encodeRequest(ctx.services, args);
    ctx.services.registry.require(request.model, 'encode');
    return submitJob(ctx, { operation: 'encode', request }, ticket);
  });
}

export async function submitDecodeResolver(
  ctx: GraphQLContext,
  args: DecodeArgs,
  ticket: Ticket | null = null,
): Promise<JobView> {
  return submitted(ctx.services.limiter, ticket, async () => {
    const request = decodeRequest(ctx.services, args);
    ctx.services.registry.require(request.model, 'decode');
    return submitJob(ctx, { operation: 'decode', request }, ticket);
  });
}

/**
 * In memory, the job's host memory is admitted here (BUSY answers the mutation) and it runs in this
 * process; with Redis it is queued for whichever instance has room (src/jobs/durable-jobs.ts). Either
 * way the quota `ticket` is settled once, when the job ends.
 */
export async function submitJob(ctx: GraphQLContext, spec: JobSpec, ticket: Ticket | null): Promise<JobView> {
  const { services } = ctx;
  if (services.durableJobs) return services.durableJobs.submit(spec, ctx.auth?.keyName ?? null, ticket);
  const run = await prepareRun(ownedServices(ctx), spec);
  return services.jobs.submit(spec.operation, spec.request.model, (hooks, job) =>
    metered(
      services.limiter,
      ticket,
      (result) => resultCost(spec.operation, result),
      () => run(hooks, job),
    ),
  );
}

/** Where this gateway's jobs live: Redis when configured, this process otherwise. */
export function jobBackend(services: GraphQLContext['services']): JobBackend {
  return services.durableJobs ?? services.jobs;
}

export function jobResolver({ services }: GraphQLContext, id: string): JobView | Promise<JobView> {
  return jobBackend(services).get(id);
}

export function cancelJobResolver({ services }: GraphQLContext, id: string): JobView | Promise<JobView> {
  return jobBackend(services).cancel(id);
}

export function jobProgressSubscribe(
  { services }: GraphQLContext,
  id: string,
): AsyncIterable<JobEvent> | Promise<AsyncIterable<JobEvent>> {
  return jobBackend(services).subscribe(id);
}
