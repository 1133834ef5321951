import type { Ticket } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import type { ImageFormat } from '../imaging/images.js';
import type { JobView } from '../jobs/events.js';
import { img2imgCost } from '../pipeline/compute-cost.js';
import { latentFromUrl } from '../pipeline/decode.js';
import type { Delivery } from '../pipeline/delivery.js';
import { img2img } from '../pipeline/img2img.js';
import type { Img2ImgRequestInput, Img2ImgResult, SchedulerName } from '../pipeline/img2img-types.js';
import type { LatentDType } from '../pipeline/latent-codec.js';
import type { GraphQLContext } from '../schema/builder.js';
import type { LatentSourceArgs } from './decode.js';
import { type ImageSourceArgs, imageBytes } from './encode.js';
import { decodeBase64 } from './inputs.js';
import { submitJob } from './jobs.js';
import { metered, submitted } from './metering.js';
import { ownedServices } from './owner.js';

export interface Img2ImgArgs {
  model: string;
  image?: ImageSourceArgs | null;
  latent?: LatentSourceArgs | null;
  prompt: string;
  negativePrompt?: string | null;
  strength?: number | null;
  steps?: number | null;
  guidanceScale?: number | null;
  seed?: bigint | null;
  scheduler?: SchedulerName | null;
  format?: ImageFormat | null;
  delivery?: Delivery | null;
  returnLatent?: boolean | null;
  dtype?: LatentDType | null;
}

/** The pipeline request: the image (or latent) read, every default filled in as diffusers' would be. */
export async function img2imgRequest(
  services: GraphQLContext['services'],
  args: Img2ImgArgs,
): Promise<Img2ImgRequestInput> {
  if (!args.image === !args.latent)
    throw new GatewayError('BAD_REQUEST', 'img2img takes exactly one of `image` and `latent`', {
      field: 'image',
    });
  const request: Img2ImgRequestInput = {
    model: args.model,
    prompt: args.prompt,
    negativePrompt: args.negativePrompt ?? null,
    // Left out: the model's pipeline defaults (diffusers' own), filled in by the pipeline.
    strength: args.strength ?? null,
    steps: args.steps ?? null,
    guidanceScale: args.guidanceScale ?? null,
    seed: args.seed ?? null,
    scheduler: args.scheduler ?? null,
    format: args.format ?? 'png',
    delivery: args.delivery ?? 'BASE64',
    returnLatent: args.returnLatent ?? false,
    dtype: args.dtype ?? 'float32',
  };
  if (args.image) request.image = await imageBytes(args.image, services.config.limits.maxImageBytes);
  else if (args.latent?.tensor) {
    const limit = { maxBytes: services.config.limits.maxLatentBytes, code: 'LATENT_TOO_LARGE' } as const;
    request.latent = {
      bytes: decodeBase64(args.latent.tensor.data, 'latent.tensor.data', limit),
      shape: args.latent.tensor.shape,
      dtype: args.latent.tensor.dtype ?? 'float32',
    };
  } else if (args.latent?.url) {
    request.latent = await latentFromUrl(services.store, services.config.publicUrl, args.latent.url);
  }
  return request;
}

export async function img2imgResolver(
  ctx: GraphQLContext,
  args: Img2ImgArgs,
  ticket: Ticket | null = null,
): Promise<Img2ImgResult> {
  const services = ownedServices(ctx);
  return metered(services.limiter, ticket, img2imgCost, async () =>
    img2img(services, await img2imgRequest(services, args)),
  );
}

/** As submitEncode: the input is read and checked first; the stages are the job's, reported as its events. */
export async function submitImg2imgResolver(
  ctx: GraphQLContext,
  args: Img2ImgArgs,
  ticket: Ticket | null = null,
): Promise<JobView> {
  return submitted(ctx.services.limiter, ticket, async () => {
    const request = await img2imgRequest(ctx.services, args);
    ctx.services.registry.require(request.model, 'img2img');
    return submitJob(ctx, { operation: 'img2img', request }, ticket);
  });
}
