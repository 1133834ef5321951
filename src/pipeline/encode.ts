/** encode: image bytes → validated RGB → model input → routed run → scaled latent → delivery. */
import type { Config } from '../config/config.js';
import { GatewayError } from '../errors.js';
import { leadingChannels, type Nchw } from '../gpu/tensor.js';
import { type ColourManagement, type ResizeReport, readImage, resizeImage, sizeForFactor } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import type { ModelRegistry } from '../models/registry.js';
import type { EncodeBatcher } from '../routing/batcher.js';
import type { HostAdmission, HostLedger } from '../routing/host-ledger.js';
import type { Router } from '../routing/index.js';
import type { ExecuteHooks, Plan } from '../routing/router.js';
import type { ResultStore } from '../storage/result-store.js';
import { rgbToPlanar } from '../tensors/pixel-range.js';
import { reportPart, stamp, timed, timedAsync, timingParts } from '../timing.js';
import { type Delivered, type Delivery, deliver } from './delivery.js';
import { admitEncode } from './host-bytes.js';
import {
  applyScaling,
  checkScaled,
  encodeLatent,
  type LatentDType,
  resolveScaling,
  type Scaling,
  sha256,
} from './latent-codec.js';

export interface EncodeRequest {
  image: Uint8Array;
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  dtype: LatentDType;
  delivery: Delivery;
  /** How stored samples become RGB; default NONE, as diffusers reads them. */
  colourManagement?: ColourManagement;
  /** The request's host memory, admitted when it was accepted (jobs); absent: admitted and released here. */
  admission?: HostAdmission;
}

/** `width`/`height` are the size actually encoded; `original*` the size sent. */
export interface EncodeResult extends Scaling, Omit<PreparedImage, 'pixels'> {
  model: string;
  latent: Delivered & { shape: number[]; dtype: LatentDType; sha256: string; byteLength: number };
  plan: Plan;
  seconds: number;
}

export interface PipelineDeps {
  config: Config;
  registry: ModelRegistry;
  router: Router;
  store: ResultStore;
  /**
   * Batches concurrent single-image encodes of the same model and size (src/routing/batcher.ts); absent = no batching.
   */
  batcher?: EncodeBatcher | null;
  /** HOST_MEMORY: what requests hold in this process (src/routing/host-ledger.ts). */
  host: HostLedger;
  /** The API key name results are kept for (only it may delete them); absent = ANONYMOUS. */
  owner?: string;
}

/** An image read, checked and resized for a model: planar pixels in the model's input range. */
export interface PreparedImage {
  pixels: Nchw;
  width: number;
  height: number;
  originalWidth: number;
  originalHeight: number;
  resized: boolean;
  /** The resize that ran (Pillow LANCZOS), or null. */
  resize: ResizeReport | null;
}

export async function prepareImage(
  deps: Pick<PipelineDeps, 'config'>,
  model: ModelDefinition,
  bytes: Uint8Array,
  colourManagement: ColourManagement = 'NONE',
): Promise<PreparedImage> {
  const decodeStart = timingParts() ? stamp() : null;
  const original = await readImage(bytes, deps.config.limits, { colourManagement });
  const size = sizeForFactor(original.width, original.height, model.downscaleFactor);
  if (size.width === 0 || size.height === 0) {
    throw new GatewayError(
      'INVALID_IMAGE',
      `image is ${original.width}x${original.height}; ` +
        `model "${model.id}" needs at least ${model.downscaleFactor}x${model.downscaleFactor}`,
      {
        minSide: model.downscaleFactor,
      },
    );
  }
  const { image, resize } = await resizeImage(original, size.width, size.height);
  if (decodeStart) reportPart('imageDecode', decodeStart);
  return {
    pixels: {
      data: timed('pixelConversion', () =>
        rgbToPlanar(image.pixels, image.width, image.height, model.family.inputRange),
      ),
      dims: [1, 3, size.height, size.width],
      // Made for this run alone: the runtime may move it to its worker rather than copy it.
      transferable: true,
    },
    width: size.width,
    height: size.height,
    originalWidth: original.width,
    originalHeight: original.height,
    resized: resize !== null,
    resize,
  };
}

/** Pixels → routed run (local, tiled or upstream) → scaled float32 latent. Shared by GraphQL and the HTTP protocol. */
export async function encodePixels(
  deps: PipelineDeps,
  model: ModelDefinition,
  pixels: Nchw,
  scaling: Scaling,
  hooks: ExecuteHooks = {},
): Promise<{ latent: Nchw; plan: Plan; seconds: number }> {
  const [batch, , height, width] = pixels.dims;
  const {
    output,
    plan: ran,
    seconds,
  } = deps.batcher
    ? await deps.batcher.encode(model, pixels, hooks)
    : await deps.router.run(model, deps.router.plan(model, 'encode', width, height, batch), pixels, hooks);
  // diffusers' encode gives the mean (`latent_dist.mode()`) of a KL encoder's mean and log-variance.
  const mean = leadingChannels(output, model.latentChannels);
  // The run's output is this request's own: scaled where it lies.
  const latent = timed('scaling', () => applyScaling(mean.data, scaling, mean.data));
  return { latent: { data: latent, dims: mean.dims }, plan: ran, seconds };
}

export async function encode(
  deps: PipelineDeps,
  request: EncodeRequest,
  hooks: ExecuteHooks = {},
): Promise<EncodeResult> {
  const model = deps.registry.require(request.model, 'encode');
  const scaling = resolveScaling(model, request.scalingFactor, request.shiftFactor);
  const admission =
    request.admission ?? (await admitEncode(deps, model, request.image, request.dtype, request.delivery));
  try {
    // The image is decoded only once its host memory is free (a queued job holds its compressed bytes only).
    return await admission.work(() => encodeAdmitted(deps, model, scaling, request, hooks), hooks.signal);
  } finally {
    if (!request.admission) admission.release();
  }
}

async function encodeAdmitted(
  deps: PipelineDeps,
  model: ModelDefinition,
  scaling: Scaling,
  request: EncodeRequest,
  hooks: ExecuteHooks,
): Promise<EncodeResult> {
  const image = await prepareImage(deps, model, request.image, request.colourManagement);
  const { latent, plan, seconds } = await encodePixels(deps, model, image.pixels, scaling, hooks);
  checkScaled(latent.data, request.dtype, scaling, 'latent');
  const bytes = timed('dtypeEncoding', () => encodeLatent(latent, request.dtype));
  const shape = [...latent.dims];
  const delivered = await timedAsync('answer', () =>
    deliver(
      deps,
      request.delivery,
      { kind: 'latent', bytes, shape, dtype: request.dtype, contentType: 'application/octet-stream' },
      'latents',
    ),
  );
  const digest = timed('sha256', () => sha256(bytes));
  return {
    model: model.id,
    ...scaling,
    latent: { ...delivered, shape, dtype: request.dtype, sha256: digest, byteLength: bytes.length },
    width: image.width,
    height: image.height,
    originalWidth: image.originalWidth,
    originalHeight: image.originalHeight,
    resized: image.resized,
    resize: image.resize,
    plan,
    seconds,
  };
}
