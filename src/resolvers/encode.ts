import type { Ticket } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import type { ColourManagement } from '../imaging/images.js';
import { encodeCost } from '../pipeline/compute-cost.js';
import type { Delivery } from '../pipeline/delivery.js';
import { type EncodeRequest, type EncodeResult, encode } from '../pipeline/encode.js';
import type { LatentDType } from '../pipeline/latent-codec.js';
import type { GraphQLContext } from '../schema/builder.js';
import { decodeBase64 } from './inputs.js';
import { metered } from './metering.js';
import { ownedServices } from './owner.js';

/** `ImageSource`, an @oneOf input: GraphQL has already checked that exactly one member is given. */
export type ImageSourceArgs = { upload: File; base64?: never } | { base64: string; upload?: never };

export interface EncodeArgs {
  image: ImageSourceArgs;
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  dtype?: LatentDType | null;
  delivery?: Delivery | null;
  colourManagement?: ColourManagement | null;
}

/**
 * The upload's bytes without copying them: `arrayBuffer()` of a multipart upload (@whatwg-node) concatenates its
 * one Buffer into a new one, and `new Uint8Array(buffer)` copied that again. `bytes()` hands over the Buffer as
 * parsed; the answer is a plain Uint8Array view of the same memory.
 */
async function uploadBytes(upload: File): Promise<Uint8Array> {
  const withBytes = upload as File & { bytes?: () => Promise<Uint8Array> };
  const bytes =
    typeof withBytes.bytes === 'function' ? await withBytes.bytes() : new Uint8Array(await upload.arrayBuffer());
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export async function imageBytes(source: ImageSourceArgs, maxBytes: number): Promise<Uint8Array> {
  if (source.upload) {
    if (source.upload.size > maxBytes) {
      throw new GatewayError(
        'IMAGE_TOO_LARGE',
        `image is ${source.upload.size} bytes; the limit is ${maxBytes} bytes`,
        {
          bytes: source.upload.size,
          maxBytes,
        },
      );
    }
    return uploadBytes(source.upload);
  }
  return decodeBase64(source.base64, 'image.base64', { maxBytes, code: 'IMAGE_TOO_LARGE' });
}

export async function encodeResolver(
  ctx: GraphQLContext,
  args: EncodeArgs,
  ticket: Ticket | null = null,
): Promise<EncodeResult> {
  const services = ownedServices(ctx);
  return metered(services.limiter, ticket, encodeCost, async () =>
    encode(services, await encodeRequest(services, args)),
  );
}

/** The pipeline request for encode arguments (shared by `encode` and `submitEncode`); reads an upload. */
export async function encodeRequest(services: GraphQLContext['services'], args: EncodeArgs): Promise<EncodeRequest> {
  const image = await imageBytes(args.image, services.config.limits.maxImageBytes);
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
