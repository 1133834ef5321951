/**
 * The img2img request and result as every layer sees them (GraphQL, jobs, upstream clients, the
 * pipeline). diffusers' names in comments: a result must equal StableDiffusionImg2ImgPipeline's for
 * the same model, inputs and seed.
 */
import type { SchedulerClassName } from '../diffusion/config.js';
import type { ImageFormat } from '../imaging/images.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import type { AnyPlan } from '../routing/stage-planner.js';
import type { DecodedImage } from './decode.js';
import type { Delivered, Delivery } from './delivery.js';
import type { LatentDType, RawLatent } from './latent-codec.js';

/** GraphQL enum values; each is built from the model folder's own scheduler config (`from_config`). */
export const SCHEDULER_NAMES = ['EULER', 'EULER_ANCESTRAL', 'DDIM', 'LCM', 'PNDM', 'FLOW_MATCH_EULER'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** diffusers' scheduler class for each name. */
export const SCHEDULER_CLASS_OF: Record<SchedulerName, SchedulerClassName> = {
  EULER: 'EulerDiscreteScheduler',
  EULER_ANCESTRAL: 'EulerAncestralDiscreteScheduler',
  DDIM: 'DDIMScheduler',
  LCM: 'LCMScheduler',
  PNDM: 'PNDMScheduler',
  FLOW_MATCH_EULER: 'FlowMatchEulerDiscreteScheduler',
};

/** The stages of one img2img request, in the order they run. */
export const IMG2IMG_STAGES = ['TEXT_ENCODE', 'ENCODE', 'DENOISE', 'DECODE'] as const;
export type Img2ImgStage = (typeof IMG2IMG_STAGES)[number];

/**
 * diffusers' own call defaults where a request leaves them out, per pipeline: StableDiffusionImg2ImgPipeline,
 * StableDiffusionXLImg2ImgPipeline, LatentConsistencyModelImg2ImgPipeline, FluxImg2ImgPipeline.
 */
export const DIFFUSERS_DEFAULTS = {
  sd: { strength: 0.8, steps: 50, guidanceScale: 7.5 },
  sdxl: { strength: 0.3, steps: 50, guidanceScale: 5 },
  lcm: { strength: 0.8, steps: 4, guidanceScale: 8.5 },
  flux: { strength: 0.6, steps: 28, guidanceScale: 7 },
} as const;
export type DefaultsFamily = keyof typeof DIFFUSERS_DEFAULTS;

/** A request as it arrives: strength, steps and guidance may be left to the pipeline's defaults. */
export type Img2ImgRequestInput = Omit<Img2ImgRequest, 'strength' | 'steps' | 'guidanceScale'> & {
  strength: number | null;
  steps: number | null;
  guidanceScale: number | null;
  /** Host memory already admitted (a submitted job's); absent: the pipeline admits the request itself. */
  admission?: HostAdmission;
};

/** The request with the pipeline's defaults filled in. */
export function withDefaults(request: Img2ImgRequestInput, family: DefaultsFamily): Img2ImgRequest {
  const defaults = DIFFUSERS_DEFAULTS[family];
  return {
    ...request,
    strength: request.strength ?? defaults.strength,
    steps: request.steps ?? defaults.steps,
    guidanceScale: request.guidanceScale ?? defaults.guidanceScale,
  };
}

export interface Img2ImgRequest {
  model: string;
  /** The init image's bytes (PNG, JPEG, WebP), read as diffusers reads it; or `latent` instead. */
  image?: Uint8Array;
  /** An init latent already in the UNet's space (diffusers: an `image` with the latent's channels skips the VAE). */
  latent?: RawLatent;
  prompt: string;
  /** null: the empty prompt (or zeros, where the folder says force_zeros_for_empty_prompt). */
  negativePrompt: string | null;
  /** How much of the schedule runs (diffusers' default: 0.8 for SD, see DIFFUSERS_DEFAULTS). */
  strength: number;
  /** num_inference_steps. */
  steps: number;
  guidanceScale: number;
  /** null: drawn by the gateway and returned. */
  seed: bigint | null;
  /** null: the scheduler the model folder names. */
  scheduler: SchedulerName | null;
  format: ImageFormat;
  delivery: Delivery;
  /** Also return the final latent (diffusers' output_type="latent": in the UNet's space, before decode). */
  returnLatent: boolean;
  /** dtype of the returned latent. */
  dtype: LatentDType;
}

export interface Img2ImgStageReport {
  stage: Img2ImgStage;
  /** The plan the stage ran under (route, target, estimate). */
  plan: AnyPlan;
  /** Time the stage ran, without queueing. */
  seconds: number;
}

export interface Img2ImgLatent extends Delivered {
  shape: number[];
  dtype: LatentDType;
  sha256: string;
  byteLength: number;
}

export interface Img2ImgResult {
  model: string;
  images: DecodedImage[];
  latent: Img2ImgLatent | null;
  seed: bigint;
  /** null when an upstream-only model ran its own default scheduler. */
  scheduler: SchedulerName | null;
  /** The timesteps the denoising loop ran (one per network call). */
  timesteps: number[];
  stages: Img2ImgStageReport[];
  width: number;
  height: number;
  /** The whole request, and the sum of its stages. */
  seconds: number;
}

/** A RUNNING event of an img2img job: its stage, and for DENOISE the step (from 1) of `total` and its timestep. */
export interface Img2ImgProgress {
  stage: Img2ImgStage;
  step: number;
  total: number;
  timestep: number | null;
}
