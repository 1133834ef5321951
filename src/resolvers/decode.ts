import type { ImageFormat } from '../imaging/images.js';
import { type DecodeRequest, type DecodeResult, decode } from '../pipeline/decode.js';
import type { Delivery } from '../pipeline/delivery.js';
import type { LatentDType } from '../pipeline/latent-codec.js';
import type { GraphQLContext } from '../schema/builder.js';
import { decodeBase64, exactlyOne } from './inputs.js';

export interface DecodeArgs {
  latent?: { data: string; shape: number[]; dtype?: LatentDType | null } | null;
  latentUrl?: string | null;
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  format?: ImageFormat | null;
  delivery?: Delivery | null;
}

export async function decodeResolver({ services }: GraphQLContext, args: DecodeArgs): Promise<DecodeResult> {
  return decode(services, decodeRequest(services, args));
}

/** The pipeline request for decode arguments (shared by `decode` and `submitDecode`). */
export function decodeRequest(services: GraphQLContext['services'], args: DecodeArgs): DecodeRequest {
  const source = exactlyOne(args.latent, args.latentUrl, ['latent', 'latentUrl']);
  const limit = { maxBytes: services.config.limits.maxLatentBytes, code: 'LATENT_TOO_LARGE' } as const;
  let latent: { bytes: Uint8Array; shape: number[]; dtype: string } | { url: string };
  if ('first' in source) {
    latent = {
      bytes: decodeBase64(source.first.data, 'latent.data', limit),
      shape: source.first.shape,
      dtype: source.first.dtype ?? 'float32',
    };
  } else {
    latent = { url: source.second };
  }
  return {
    latent,
    model: args.model,
    scalingFactor: args.scalingFactor,
    shiftFactor: args.shiftFactor,
    format: args.format ?? 'png',
    delivery: args.delivery ?? 'BASE64',
  };
}
