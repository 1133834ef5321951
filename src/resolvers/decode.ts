import type { Ticket } from '../auth/limiter.js';
import type { ImageFormat } from '../imaging/images.js';
import { decodeCost } from '../pipeline/compute-cost.js';
import { type DecodeRequest, type DecodeResult, decode } from '../pipeline/decode.js';
import type { Delivery } from '../pipeline/delivery.js';
import type { LatentDType } from '../pipeline/latent-codec.js';
import type { GraphQLContext } from '../schema/builder.js';
import { decodeBase64 } from './inputs.js';
import { metered } from './metering.js';
import { ownedServices } from './owner.js';

interface LatentTensorArgs {
  data: string;
  shape: number[];
  dtype?: LatentDType | null;
}

/** `LatentSource`, an @oneOf input: GraphQL has already checked that exactly one member is given. */
export type LatentSourceArgs = { tensor: LatentTensorArgs; url?: never } | { url: string; tensor?: never };

export interface DecodeArgs {
  latent: LatentSourceArgs;
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  format?: ImageFormat | null;
  delivery?: Delivery | null;
}

export async function decodeResolver(
  ctx: GraphQLContext,
  args: DecodeArgs,
  ticket: Ticket | null = null,
): Promise<DecodeResult> {
  const services = ownedServices(ctx);
  return metered(services.limiter, ticket, decodeCost, () => decode(services, decodeRequest(services, args)));
}

/** The pipeline request for decode arguments (shared by `decode` and `submitDecode`). */
export function decodeRequest(services: GraphQLContext['services'], args: DecodeArgs): DecodeRequest {
  const limit = { maxBytes: services.config.limits.maxLatentBytes, code: 'LATENT_TOO_LARGE' } as const;
  const source = args.latent;
  const latent = source.tensor
    ? {
        bytes: decodeBase64(source.tensor.data, 'latent.tensor.data', limit),
        shape: source.tensor.shape,
        dtype: source.tensor.dtype ?? 'float32',
      }
    : { url: source.url };
  return {
    latent,
    model: args.model,
    scalingFactor: args.scalingFactor,
    shiftFactor: args.shiftFactor,
    format: args.format ?? 'png',
    delivery: args.delivery ?? 'BASE64',
  };
}
