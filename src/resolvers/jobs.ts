import type { Ticket } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import type { JobEvent } from '../jobs/events.js';
import type { Job } from '../jobs/job.js';
import { decode, rawLatent } from '../pipeline/decode.js';
import { encode } from '../pipeline/encode.js';
import { admitDecode, admitEncode } from '../pipeline/host-bytes.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import type { GraphQLContext } from '../schema/builder.js';
import { type DecodeArgs, decodeRequest } from './decode.js';
import { type EncodeArgs, encodeRequest } from './encode.js';
import { decodeCost, encodeCost, metered, submitted } from './metering.js';
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
): Promise<Job> {
  const services = ownedServices(ctx);
  return submitted(services.limiter, ticket, async () => {
    const request = await encodeRequest(services, args);
    const model = services.registry.require(request.model, 'encode');
    // Accepted only if its host memory is (BUSY otherwise); queued, it holds its compressed bytes only.
    const admission = await admitEncode(services, model, request.image, request.dtype, request.delivery);
    return services.jobs.submit('encode', request.model, (hooks) =>
      metered(services.limiter, ticket, encodeCost, () =>
        kept(
          services,
          admission,
          encode(services, { ...request, admission }, hooks),
          (r) => r.latent.data?.length ?? 0,
        ),
      ),
    );
  });
}

export async function submitDecodeResolver(
  ctx: GraphQLContext,
  args: DecodeArgs,
  ticket: Ticket | null = null,
): Promise<Job> {
  const services = ownedServices(ctx);
  return submitted(services.limiter, ticket, async () => {
    const request = decodeRequest(services, args);
    const model = services.registry.require(request.model, 'decode');
    // A URL that does not resolve fails the job (as before), which then holds nothing.
    const raw = await rawLatent(services, request).catch((error: unknown) => {
      if (error instanceof GatewayError) return { bytes: new Uint8Array(0), shape: [], dtype: 'float32' };
      throw error;
    });
    const admission = admitDecode(services, model, raw, request.delivery, 'url' in request.latent);
    return services.jobs.submit('decode', request.model, (hooks) =>
      metered(services.limiter, ticket, decodeCost, () =>
        kept(services, admission, decode(services, { ...request, admission }, hooks), (r) =>
          r.images.reduce((n, image) => n + (image.data?.length ?? 0), 0),
        ),
      ),
    );
  });
}

/** A finished job keeps its inline result for JOB_TTL_SECONDS: counted that long, the rest freed now. */
async function kept<T>(
  services: GraphQLContext['services'],
  admission: HostAdmission,
  run: Promise<T>,
  resultBytes: (result: T) => number,
): Promise<T> {
  try {
    const result = await run;
    admission.keep(resultBytes(result), services.config.jobTtlSeconds);
    return result;
  } catch (error) {
    admission.release();
    throw error;
  }
}

export function jobResolver({ services }: GraphQLContext, id: string): Job {
  return services.jobs.get(id);
}

export function cancelJobResolver({ services }: GraphQLContext, id: string): Job {
  return services.jobs.cancel(id);
}

export function jobProgressSubscribe({ services }: GraphQLContext, id: string): AsyncIterable<JobEvent> {
  return services.jobs.get(id).subscribe();
}
