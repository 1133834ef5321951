import type { JobEvent } from '../jobs/events.js';
import type { Job } from '../jobs/job.js';
import { decode } from '../pipeline/decode.js';
import { encode } from '../pipeline/encode.js';
import type { GraphQLContext } from '../schema/builder.js';
import { type DecodeArgs, decodeRequest } from './decode.js';
import { type EncodeArgs, encodeRequest } from './encode.js';

/**
 * The input is read and checked before the job exists (an upload must be read while the request is
 * open; a bad argument or an unknown model is a plain GraphQL error); everything after that is the
 * job's, and fails the job rather than the mutation.
 */
export async function submitEncodeResolver({ services }: GraphQLContext, args: EncodeArgs): Promise<Job> {
  const request = await encodeRequest(services, args);
  services.registry.require(request.model, 'encode');
  return services.jobs.submit('encode', request.model, (hooks) => encode(services, request, hooks));
}

export function submitDecodeResolver({ services }: GraphQLContext, args: DecodeArgs): Job {
  const request = decodeRequest(services, args);
  services.registry.require(request.model, 'decode');
  return services.jobs.submit('decode', request.model, (hooks) => decode(services, request, hooks));
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
