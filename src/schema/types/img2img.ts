import { GraphQLError, Kind } from 'graphql';
import { MAX_SEED, parseSeed } from '../../diffusion/random.js';
import { GatewayError } from '../../errors.js';
import {
  IMG2IMG_STAGES,
  type Img2ImgResult,
  type Img2ImgStageReport,
  SCHEDULER_NAMES,
} from '../../pipeline/img2img-types.js';
import { img2imgResolver } from '../../resolvers/img2img.js';
import { ticketOf } from '../../resolvers/metering.js';
import { builder } from '../builder.js';
import { DecodedImageType, LatentSource } from './decode.js';
import { ImageSource, LatentType } from './encode.js';
import { DeliveryEnum, ImageFormatEnum, LatentDTypeEnum } from './enums.js';
import { PlanType } from './plan.js';

/** Seeds beyond 2^53 - 1 do not survive a JSON number: those travel as decimal strings. */
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function seedFrom(value: unknown): bigint {
  if (typeof value !== 'number' && typeof value !== 'string' && typeof value !== 'bigint')
    throw new GraphQLError(`Seed takes an integer from 0 to ${MAX_SEED} as an Int or a decimal string`);
  try {
    return parseSeed(value);
  } catch (error) {
    throw new GraphQLError(error instanceof GatewayError ? error.message : String(error), {
      extensions: { code: 'BAD_REQUEST' },
    });
  }
}

builder.scalarType('Seed', {
  description:
    `A torch.manual_seed value: an integer from 0 to 2^64 - 1 (${MAX_SEED}), given as an Int or a decimal ` +
    'string. Returned as a number up to 2^53 - 1 and as a decimal string above, so no digit is lost.',
  serialize: (seed) => {
    const value = seedFrom(seed);
    return value <= SAFE ? Number(value) : value.toString();
  },
  parseValue: (value) => seedFrom(value),
  parseLiteral: (node) => {
    if (node.kind === Kind.INT || node.kind === Kind.STRING) return seedFrom(node.value);
    throw new GraphQLError(`Seed takes an integer from 0 to ${MAX_SEED} as an Int or a decimal string`);
  },
});

export const SchedulerEnum = builder.enumType('Scheduler', {
  description:
    "A diffusers scheduler class, built from the model folder's own scheduler_config.json (as " +
    '`NewScheduler.from_config(pipe.scheduler.config)`), so betas, spacing and offset carry over. EULER: ' +
    'EulerDiscreteScheduler, EULER_ANCESTRAL: EulerAncestralDiscreteScheduler, DDIM: DDIMScheduler (eta 0), ' +
    'LCM: LCMScheduler, PNDM: PNDMScheduler (PLMS), FLOW_MATCH_EULER: FlowMatchEulerDiscreteScheduler.',
  values: SCHEDULER_NAMES,
});

export const Img2ImgStageEnum = builder.enumType('Img2ImgStage', {
  description: 'TEXT_ENCODE: the prompts; ENCODE: the VAE encoder; DENOISE: the UNet loop; DECODE: the VAE decoder.',
  values: IMG2IMG_STAGES,
});

const StageReportType = builder.objectRef<Img2ImgStageReport>('Img2ImgStageReport').implement({
  fields: (t) => ({
    stage: t.field({ type: Img2ImgStageEnum, resolve: (s) => s.stage }),
    route: t.field({ type: PlanType, description: 'Where the stage ran, and the estimate.', resolve: (s) => s.plan }),
    seconds: t.exposeFloat('seconds', { description: 'Time the stage ran, queueing included.' }),
  }),
});

export const Img2ImgResultType = builder.objectRef<Img2ImgResult>('Img2ImgResult').implement({
  fields: (t) => ({
    model: t.exposeString('model'),
    images: t.field({ type: [DecodedImageType], resolve: (r) => r.images }),
    latent: t.field({
      type: LatentType,
      nullable: true,
      description:
        'With returnLatent: the final denoised latent in the UNet space (times the VAE scaling factor), ' +
        'before the decode; what diffusers returns with output_type="latent".',
      resolve: (r) => r.latent,
    }),
    seed: t.field({
      type: 'Seed',
      description: 'The seed the run used (drawn when none was given): sending it again reproduces the result.',
      resolve: (r) => r.seed,
    }),
    scheduler: t.field({
      type: SchedulerEnum,
      nullable: true,
      description: 'The scheduler that ran; null when an upstream-only model ran its own default.',
      resolve: (r) => r.scheduler,
    }),
    timesteps: t.floatList({
      description:
        'The timesteps the denoising loop ran, one per network call (empty when an upstream-only model ran it).',
      resolve: (r) => r.timesteps,
    }),
    stages: t.field({ type: [StageReportType], resolve: (r) => r.stages }),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    seconds: t.exposeFloat('seconds', { description: 'The whole request.' }),
  }),
});

export const Img2ImgInput = builder.inputType('Img2ImgInput', {
  description: "The arguments of diffusers' img2img pipelines, with their defaults. Give `image` or `latent`.",
  fields: (t) => ({
    model: t.string({ required: true }),
    image: t.field({ type: ImageSource, required: false, description: 'The init image; or `latent`.' }),
    latent: t.field({
      type: LatentSource,
      required: false,
      description: 'An init latent already in the UNet space (as diffusers takes a latent `image`): skips ENCODE.',
    }),
    prompt: t.string({ required: true }),
    negativePrompt: t.string({ required: false }),
    strength: t.float({
      required: false,
      description:
        'How much of the schedule runs, 0..1. Absent: the pipeline’s diffusers default (SD 0.8, SDXL 0.3, ' +
        'LCM 0.8, Flux 0.6).',
    }),
    steps: t.int({
      required: false,
      description: 'num_inference_steps. Absent: the pipeline’s default (SD and SDXL 50, LCM 4, Flux 28).',
    }),
    guidanceScale: t.float({
      required: false,
      description:
        'Classifier-free guidance above 1 (LCM embeds it, Flux dev takes it as an input). Absent: the pipeline’s ' +
        'default (SD 7.5, SDXL 5, LCM 8.5, Flux 7).',
    }),
    seed: t.field({ type: 'Seed', required: false, description: 'Absent: one is drawn and returned.' }),
    scheduler: t.field({ type: SchedulerEnum, required: false, description: "Absent: the model folder's own." }),
    format: t.field({ type: ImageFormatEnum, required: false, defaultValue: 'png' }),
    delivery: t.field({ type: DeliveryEnum, required: false, defaultValue: 'BASE64' }),
    returnLatent: t.boolean({ required: false, defaultValue: false }),
    dtype: t.field({
      type: LatentDTypeEnum,
      required: false,
      defaultValue: 'float32',
      description: 'Of the returned latent.',
    }),
  }),
});

builder.mutationField('img2img', (t) =>
  t.field({
    type: Img2ImgResultType,
    description:
      'Image + prompt → new image: VAE encode, noise at `strength`, the denoising loop, VAE decode; each stage ' +
      'routed. The result equals diffusers’ for the same model, inputs and seed.',
    args: { input: t.arg({ type: Img2ImgInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => img2imgResolver(ctx, input, ticketOf(ctx, info)),
  }),
);
