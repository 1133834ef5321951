/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** How stored samples become RGB. NONE (the default) reads the values as stored, ignoring any ICC profile, as Pillow and so diffusers do; SRGB converts through the embedded profile to sRGB. */
export type ColourManagement =
  | 'NONE'
  | 'SRGB';

export type DecodeInput = {
  delivery?: Delivery | null | undefined;
  format?: ImageFormat | null | undefined;
  latent: LatentSource;
  model: string;
  scalingFactor?: number | null | undefined;
  shiftFactor?: number | null | undefined;
};

/** How a result comes back: inline base64, or a URL of this gateway that expires. */
export type Delivery =
  | 'BASE64'
  | 'URL';

export type EncodeInput = {
  /** NONE: the stored samples, as diffusers reads them. SRGB: converted through the ICC profile. */
  colourManagement?: ColourManagement | null | undefined;
  delivery?: Delivery | null | undefined;
  dtype?: LatentDType | null | undefined;
  image: ImageSource;
  model: string;
  /** Defaults to the model's. */
  scalingFactor?: number | null | undefined;
  /** Defaults to the model's. */
  shiftFactor?: number | null | undefined;
};

/** The `extensions.code` of a GraphQL error, and the code of a failed job. */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'BUSY'
  | 'CANCELLED'
  | 'DOES_NOT_FIT'
  | 'EXPIRED'
  | 'FORBIDDEN'
  | 'IMAGE_TOO_LARGE'
  | 'INTERNAL'
  | 'INVALID_IMAGE'
  | 'INVALID_LATENT'
  | 'INVALID_URL'
  | 'LATENT_CHANNELS_MISMATCH'
  | 'LATENT_SHAPE_MISMATCH'
  | 'LATENT_TOO_LARGE'
  | 'NOT_FOUND'
  | 'NO_DENOISING_STEPS'
  | 'PROMPT_TOO_LONG'
  | 'QUERY_TOO_COMPLEX'
  | 'RATE_LIMITED'
  | 'REQUEST_TOO_LARGE'
  | 'SERVICE_UNAVAILABLE'
  | 'UNAUTHENTICATED'
  | 'UNKNOWN_MODEL'
  | 'UNSUPPORTED_DTYPE'
  | 'UNSUPPORTED_OPERATION'
  | 'UNSUPPORTED_SCHEDULER'
  | 'UPSTREAM_FAILED';

export type ImageFormat =
  | 'JPEG'
  | 'PNG'
  | 'WEBP';

/** The image (PNG, JPEG or WebP): exactly one of `upload` or `base64`. */
export type ImageSource =
  {   /** The image bytes as base64. */
  base64: string; upload?: never; }
  |  { base64?: never;   /** A file of a GraphQL multipart request, e.g. at map path `variables.input.image.upload`. */
  upload: File; };

/** The arguments of diffusers' img2img pipelines, with their defaults. Give `image` or `latent`. */
export type Img2ImgInput = {
  delivery?: Delivery | null | undefined;
  /** Of the returned latent. */
  dtype?: LatentDType | null | undefined;
  format?: ImageFormat | null | undefined;
  /** Classifier-free guidance above 1 (LCM embeds it, Flux dev takes it as an input). Absent: the pipeline’s default (SD 7.5, SDXL 5, LCM 8.5, Flux 7). */
  guidanceScale?: number | null | undefined;
  /** The init image; or `latent`. */
  image?: ImageSource | null | undefined;
  /** An init latent already in the UNet space (as diffusers takes a latent `image`): skips ENCODE. */
  latent?: LatentSource | null | undefined;
  model: string;
  negativePrompt?: string | null | undefined;
  prompt: string;
  returnLatent?: boolean | null | undefined;
  /** Absent: the model folder's own. */
  scheduler?: Scheduler | null | undefined;
  /** Absent: one is drawn and returned. */
  seed?: number | string | null | undefined;
  /** num_inference_steps. Absent: the pipeline’s default (SD and SDXL 50, LCM 4, Flux 28). */
  steps?: number | null | undefined;
  /** How much of the schedule runs, 0..1. Absent: the pipeline’s diffusers default (SD 0.8, SDXL 0.3, LCM 0.8, Flux 0.6). */
  strength?: number | null | undefined;
};

/** TEXT_ENCODE: the prompts; ENCODE: the VAE encoder; DENOISE: the UNet loop; DECODE: the VAE decoder. */
export type Img2ImgStage =
  | 'DECODE'
  | 'DENOISE'
  | 'ENCODE'
  | 'TEXT_ENCODE';

export type JobEventType =
  | 'CANCELLED'
  | 'DONE'
  | 'FAILED'
  | 'QUEUED'
  | 'ROUTED'
  | 'RUNNING';

/** QUEUED until the run starts (reading the input, routing, waiting for device memory), RUNNING, then one of DONE, FAILED or CANCELLED. */
export type JobStatus =
  | 'CANCELLED'
  | 'DONE'
  | 'FAILED'
  | 'QUEUED'
  | 'RUNNING';

export type LatentDType =
  | 'BFLOAT16'
  | 'FLOAT16'
  | 'FLOAT32';

/** The latent: exactly one of `tensor` or `url`. */
export type LatentSource =
  {   /** The tensor inline. */
  tensor: LatentTensorInput; url?: never; }
  |  { tensor?: never;   /** A latent URL this gateway returned. */
  url: string; };

export type LatentTensorInput = {
  /** Base64 of the raw little-endian bytes. */
  data: string;
  dtype?: LatentDType | null | undefined;
  /** [batch, channels, height, width] */
  shape: Array<number>;
};

/** What a request or a planned run does: a VAE encode or decode, img2img (a model that serves it; a job), or an img2img stage that is not a VAE run (TEXT_ENCODE: the text encoders; DENOISE: the UNet, once per step). */
export type Operation =
  | 'DECODE'
  | 'DENOISE'
  | 'ENCODE'
  | 'IMG2IMG'
  | 'TEXT_ENCODE';

/** PIL_LANCZOS: Pillow's Image.resize(..., LANCZOS), bit for bit, as diffusers' VaeImageProcessor. */
export type ResizeMethod =
  | 'PIL_LANCZOS';

/** Where a request runs: whole on a local device, tiled on a local device, on an upstream endpoint, or nowhere. */
export type Route =
  | 'LOCAL'
  | 'REJECT'
  | 'TILED'
  | 'UPSTREAM';

/** A diffusers scheduler class, built from the model folder's own scheduler_config.json (as `NewScheduler.from_config(pipe.scheduler.config)`), so betas, spacing and offset carry over. EULER: EulerDiscreteScheduler, EULER_ANCESTRAL: EulerAncestralDiscreteScheduler, DDIM: DDIMScheduler (eta 0), LCM: LCMScheduler, PNDM: PNDMScheduler (PLMS), FLOW_MATCH_EULER: FlowMatchEulerDiscreteScheduler. */
export type Scheduler =
  | 'DDIM'
  | 'EULER'
  | 'EULER_ANCESTRAL'
  | 'FLOW_MATCH_EULER'
  | 'LCM'
  | 'PNDM';

export type PlanFieldsFragment = { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } };

export type EncodeResultFieldsFragment = { model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } };

export type DecodeResultFieldsFragment = { model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } };

export type Img2ImgResultFieldsFragment = { model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> };

export type JobFieldsFragment = { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
    | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
    | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
    | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
   | null };

type JobEventFields_JobCancelledEvent_Fragment = { __typename: 'JobCancelledEvent', reason: string, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string };

type JobEventFields_JobDoneEvent_Fragment = { __typename: 'JobDoneEvent', jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, result:
    | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
    | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
    | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
   };

type JobEventFields_JobFailedEvent_Fragment = { __typename: 'JobFailedEvent', jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } };

type JobEventFields_JobQueuedEvent_Fragment = { __typename: 'JobQueuedEvent', position: number | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string };

type JobEventFields_JobRoutedEvent_Fragment = { __typename: 'JobRoutedEvent', stage: Img2ImgStage | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } };

type JobEventFields_JobRunningEvent_Fragment = { __typename: 'JobRunningEvent', done: number, total: number, stage: Img2ImgStage | null, step: number | null, timestep: number | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string };

export type JobEventFieldsFragment =
  | JobEventFields_JobCancelledEvent_Fragment
  | JobEventFields_JobDoneEvent_Fragment
  | JobEventFields_JobFailedEvent_Fragment
  | JobEventFields_JobQueuedEvent_Fragment
  | JobEventFields_JobRoutedEvent_Fragment
  | JobEventFields_JobRunningEvent_Fragment
;

export type ModelsQueryVariables = Exact<{ [key: string]: never; }>;


export type ModelsQuery = { models: Array<{ id: string, family: string, format: string, latentChannels: number, downscaleFactor: number, operations: Array<Operation>, scalingFactor: number, shiftFactor: number, runsOn: string, scheduler: Scheduler | null, schedulerClass: string | null }> };

export type JobQueryVariables = Exact<{
  id: string | number;
}>;


export type JobQuery = { job: { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
      | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
     | null } };

export type SubmitEncodeMutationVariables = Exact<{
  input: EncodeInput;
}>;


export type SubmitEncodeMutation = { submitEncode: { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
      | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
     | null } };

export type SubmitDecodeMutationVariables = Exact<{
  input: DecodeInput;
}>;


export type SubmitDecodeMutation = { submitDecode: { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
      | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
     | null } };

export type SubmitImg2imgMutationVariables = Exact<{
  input: Img2ImgInput;
}>;


export type SubmitImg2imgMutation = { submitImg2img: { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
      | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
     | null } };

export type CancelJobMutationVariables = Exact<{
  id: string | number;
}>;


export type CancelJobMutation = { cancelJob: { id: string, operation: Operation, model: string, status: JobStatus, cancelRequested: boolean, queuePosition: number | null, createdAt: string, startedAt: string | null, finishedAt: string | null, expiresAt: string | null, progress: { done: number, total: number } | null, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } | null, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } | null, result:
      | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
      | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
     | null } };

export type JobProgressSubscriptionVariables = Exact<{
  id: string | number;
}>;


export type JobProgressSubscription = { jobProgress:
    | { __typename: 'JobCancelledEvent', reason: string, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string }
    | { __typename: 'JobDoneEvent', jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, result:
        | { __typename: 'DecodeResult', model: string, scalingFactor: number, shiftFactor: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
        | { __typename: 'EncodeResult', model: string, width: number, height: number, originalWidth: number, originalHeight: number, resized: boolean, scalingFactor: number, shiftFactor: number, seconds: number, resize: { method: ResizeMethod, from: { width: number, height: number }, to: { width: number, height: number } } | null, latent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
        | { __typename: 'Img2ImgResult', model: string, seed: number | string, scheduler: Scheduler | null, timesteps: Array<number>, width: number, height: number, seconds: number, images: Array<{ format: ImageFormat, mimeType: string, width: number, height: number, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number }>, finalLatent: { shape: Array<number>, dtype: LatentDType, data: string | null, url: string | null, expiresAt: string | null, sha256: string, byteLength: number } | null, stages: Array<{ stage: Img2ImgStage, seconds: number, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }> }
       }
    | { __typename: 'JobFailedEvent', jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, error: { code: ErrorCode, message: string, retryAfterSeconds: number | null } }
    | { __typename: 'JobQueuedEvent', position: number | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string }
    | { __typename: 'JobRoutedEvent', stage: Img2ImgStage | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string, route: { route: Route, target: string, reason: string, bytes: number, tile: number | null, expectedSeconds: number, budgetBytes: number, freeBytes: number, estimates: { whole: { bytes: number, calibrated: boolean }, tiled: { bytes: number, tile: number, overlap: number, calibrated: boolean } | null } } }
    | { __typename: 'JobRunningEvent', done: number, total: number, stage: Img2ImgStage | null, step: number | null, timestep: number | null, jobId: string, seq: number, type: JobEventType, status: JobStatus, at: string }
   };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const PlanFieldsFragmentDoc = new TypedDocumentString(`
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
    `, {"fragmentName":"PlanFields"}) as unknown as TypedDocumentString<PlanFieldsFragment, unknown>;
export const EncodeResultFieldsFragmentDoc = new TypedDocumentString(`
    fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}`, {"fragmentName":"EncodeResultFields"}) as unknown as TypedDocumentString<EncodeResultFieldsFragment, unknown>;
export const DecodeResultFieldsFragmentDoc = new TypedDocumentString(`
    fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}`, {"fragmentName":"DecodeResultFields"}) as unknown as TypedDocumentString<DecodeResultFieldsFragment, unknown>;
export const Img2ImgResultFieldsFragmentDoc = new TypedDocumentString(`
    fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}`, {"fragmentName":"Img2ImgResultFields"}) as unknown as TypedDocumentString<Img2ImgResultFieldsFragment, unknown>;
export const JobFieldsFragmentDoc = new TypedDocumentString(`
    fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}`, {"fragmentName":"JobFields"}) as unknown as TypedDocumentString<JobFieldsFragment, unknown>;
export const JobEventFieldsFragmentDoc = new TypedDocumentString(`
    fragment JobEventFields on JobEvent {
  __typename
  jobId
  seq
  type
  status
  at
  ... on JobQueuedEvent {
    position
  }
  ... on JobRoutedEvent {
    stage
    route {
      ...PlanFields
    }
  }
  ... on JobRunningEvent {
    done
    total
    stage
    step
    timestep
  }
  ... on JobDoneEvent {
    result {
      __typename
      ...EncodeResultFields
      ...DecodeResultFields
      ...Img2ImgResultFields
    }
  }
  ... on JobFailedEvent {
    error {
      code
      message
      retryAfterSeconds
    }
  }
  ... on JobCancelledEvent {
    reason
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}`, {"fragmentName":"JobEventFields"}) as unknown as TypedDocumentString<JobEventFieldsFragment, unknown>;
export const ModelsDocument = new TypedDocumentString(`
    query Models {
  models {
    id
    family
    format
    latentChannels
    downscaleFactor
    operations
    scalingFactor
    shiftFactor
    runsOn
    scheduler
    schedulerClass
  }
}
    `) as unknown as TypedDocumentString<ModelsQuery, ModelsQueryVariables>;
export const JobDocument = new TypedDocumentString(`
    query Job($id: ID!) {
  job(id: $id) {
    ...JobFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}`) as unknown as TypedDocumentString<JobQuery, JobQueryVariables>;
export const SubmitEncodeDocument = new TypedDocumentString(`
    mutation SubmitEncode($input: EncodeInput!) {
  submitEncode(input: $input) {
    ...JobFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}`) as unknown as TypedDocumentString<SubmitEncodeMutation, SubmitEncodeMutationVariables>;
export const SubmitDecodeDocument = new TypedDocumentString(`
    mutation SubmitDecode($input: DecodeInput!) {
  submitDecode(input: $input) {
    ...JobFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}`) as unknown as TypedDocumentString<SubmitDecodeMutation, SubmitDecodeMutationVariables>;
export const SubmitImg2imgDocument = new TypedDocumentString(`
    mutation SubmitImg2img($input: Img2ImgInput!) {
  submitImg2img(input: $input) {
    ...JobFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}`) as unknown as TypedDocumentString<SubmitImg2imgMutation, SubmitImg2imgMutationVariables>;
export const CancelJobDocument = new TypedDocumentString(`
    mutation CancelJob($id: ID!) {
  cancelJob(id: $id) {
    ...JobFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobFields on Job {
  id
  operation
  model
  status
  cancelRequested
  queuePosition
  createdAt
  startedAt
  finishedAt
  expiresAt
  progress {
    done
    total
  }
  route {
    ...PlanFields
  }
  error {
    code
    message
    retryAfterSeconds
  }
  result {
    __typename
    ...EncodeResultFields
    ...DecodeResultFields
    ...Img2ImgResultFields
  }
}`) as unknown as TypedDocumentString<CancelJobMutation, CancelJobMutationVariables>;
export const JobProgressDocument = new TypedDocumentString(`
    subscription JobProgress($id: ID!) {
  jobProgress(id: $id) {
    ...JobEventFields
  }
}
    fragment PlanFields on Plan {
  route
  target
  reason
  bytes
  tile
  expectedSeconds
  budgetBytes
  freeBytes
  estimates {
    whole {
      bytes
      calibrated
    }
    tiled {
      bytes
      tile
      overlap
      calibrated
    }
  }
}
fragment EncodeResultFields on EncodeResult {
  model
  width
  height
  originalWidth
  originalHeight
  resized
  resize {
    method
    from {
      width
      height
    }
    to {
      width
      height
    }
  }
  scalingFactor
  shiftFactor
  seconds
  latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment DecodeResultFields on DecodeResult {
  model
  scalingFactor
  shiftFactor
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  route {
    ...PlanFields
  }
}
fragment Img2ImgResultFields on Img2ImgResult {
  model
  seed
  scheduler
  timesteps
  width
  height
  seconds
  images {
    format
    mimeType
    width
    height
    data
    url
    expiresAt
    sha256
    byteLength
  }
  finalLatent: latent {
    shape
    dtype
    data
    url
    expiresAt
    sha256
    byteLength
  }
  stages {
    stage
    seconds
    route {
      ...PlanFields
    }
  }
}
fragment JobEventFields on JobEvent {
  __typename
  jobId
  seq
  type
  status
  at
  ... on JobQueuedEvent {
    position
  }
  ... on JobRoutedEvent {
    stage
    route {
      ...PlanFields
    }
  }
  ... on JobRunningEvent {
    done
    total
    stage
    step
    timestep
  }
  ... on JobDoneEvent {
    result {
      __typename
      ...EncodeResultFields
      ...DecodeResultFields
      ...Img2ImgResultFields
    }
  }
  ... on JobFailedEvent {
    error {
      code
      message
      retryAfterSeconds
    }
  }
  ... on JobCancelledEvent {
    reason
  }
}`) as unknown as TypedDocumentString<JobProgressSubscription, JobProgressSubscriptionVariables>;