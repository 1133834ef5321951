import { GatewayError } from '../errors.js';
import type { ColourManagement } from '../imaging/images.js';
import type { Delivery } from '../pipeline/delivery.js';
import { type EncodeRequest, type EncodeResult, encode } from '../pipeline/encode.js';
import type { LatentDType } from '../pipeline/latent-codec.js';
import type { GraphQLContext } from '../schema/builder.js';
import { decodeBase64, exactlyOne } from './inputs.js';

export interface EncodeArgs {
  image?: File | null;
  imageBase64?: string | null;
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  dtype?: LatentDType | null;
  delivery?: Delivery | null;
  colourManagement?: ColourManagement | null;
}

export async function imageBytes(
  args: Pick<EncodeArgs, 'image' | 'imageBase64'>,
  maxBytes: number,
): Promise<Uint8Array> {
  const source = exactlyOne(args.image, args.imageBase64, ['image', 'imageBase64']);
  if ('first' in source) {
    if (source.first.size > maxBytes) {
      throw new GatewayError('IMAGE_TOO_LARGE', `image is ${source.first.size} bytes; the limit is ${maxBytes} bytes`, {
        bytes: source.first.size,
        maxBytes,
      });
    }
    return new Uint8Array(await source.first.arrayBuffer());
  }
  return decodeBase64(source.second, 'imageBase64', { maxBytes, code: 'IMAGE_TOO_LARGE' });
}

export async function encodeResolver({ services }: GraphQLContext, args: EncodeArgs): Promise<EncodeResult> {
  return encode(services, await encodeRequest(services, args));
}

/** The pipeline request for encode arguments (shared by `encode` and `submitEncode`); reads an upload. */
export async function encodeRequest(services: GraphQLContext['services'], args: EncodeArgs): Promise<EncodeRequest> {
  const image = await imageBytes(args, services.config.limits.maxImageBytes);
  return {
    image,
    model: args.model,
    scalingFactor: args.scalingFactor,
    shiftFactor: args.shiftFactor,
    dtype: args.dtype ?? 'float32',
    delivery: args.delivery ?? 'BASE64',
    colourManagement: args.colourManagement ?? 'NONE',
  };
}
