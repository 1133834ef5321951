/** decode: latent (inline or a URL of this gateway) → validated tensor → routed run → images. */
import { GatewayError } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import { type ImageFormat, MIME_TYPES, writeImage } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import type { ExecuteHooks, Plan } from '../routing/router.js';
import { earlierRunError, type ResultStore } from '../storage/result-store.js';
import { type PixelRange, planarToRgb } from '../tensors/pixel-range.js';
import { type Delivered, type Delivery, deliver } from './delivery.js';
import type { PipelineDeps } from './encode.js';
import { admitDecode } from './host-bytes.js';
import {
  checkScaled,
  type RawLatent,
  readLatent,
  resolveScaling,
  reverseScaling,
  type Scaling,
  sha256,
} from './latent-codec.js';

export interface DecodeRequest {
  latent: RawLatent | { url: string };
  model: string;
  scalingFactor?: number | null;
  shiftFactor?: number | null;
  format: ImageFormat;
  delivery: Delivery;
  /** The request's host memory, admitted when it was accepted (jobs); absent: admitted and released here. */
  admission?: HostAdmission;
}

export interface DecodedImage extends Delivered {
  format: ImageFormat;
  mimeType: string;
  width: number;
  height: number;
  sha256: string;
  byteLength: number;
}

export interface DecodeResult extends Scaling {
  model: string;
  images: DecodedImage[];
  plan: Plan;
  seconds: number;
}

/** Resolves a latent URL that this gateway issued; other URLs are refused, never fetched. */
export async function latentFromUrl(store: ResultStore, publicUrl: string, url: string): Promise<RawLatent> {
  let parsed: URL;
  try {
    parsed = new URL(url, publicUrl);
  } catch {
    throw new GatewayError('INVALID_URL', `"${url}" is not a URL`);
  }
  const match = /^\/v1\/latents\/([0-9a-f-]{36})$/.exec(parsed.pathname);
  const ours = parsed.origin === new URL(publicUrl).origin;
  // Ids are looked up, never fetched: with a shared store a sibling instance's URL is as good as ours.
  if (!match || (!ours && !store.shared)) {
    throw new GatewayError(
      'INVALID_URL',
      `"${url}" is not a latent URL of this gateway; expected ${publicUrl}/v1/latents/{id}`,
      { expected: `${publicUrl}/v1/latents/{id}` },
    );
  }
  const found = await store.get(match[1]);
  if (found.status === 'expired')
    throw new GatewayError('EXPIRED', `latent ${match[1]} has expired; encode the image again`, { id: match[1] });
  if (found.status === 'earlier-run') throw earlierRunError('latent', match[1]);
  if (found.status === 'unknown' || found.result.kind !== 'latent')
    throw new GatewayError('NOT_FOUND', `no latent with id ${match[1]}`, { id: match[1] });
  return { bytes: found.result.bytes, shape: found.result.shape!, dtype: found.result.dtype! };
}

/**
 * A checked float32 NCHW latent (scaled as given) → limits → routed run (local, tiled or upstream)
 * → planar pixels in the model's output range. Shared by GraphQL and the HTTP protocol.
 */
export async function decodeLatent(
  deps: PipelineDeps,
  model: ModelDefinition,
  latent: Nchw,
  scaling: Scaling,
  hooks: ExecuteHooks = {},
  planned?: Plan,
): Promise<{ output: Nchw; width: number; height: number; batch: number; plan: Plan; seconds: number }> {
  const [batch, , h, w] = latent.dims;
  const [height, width] = [h * model.downscaleFactor, w * model.downscaleFactor];
  if (batch > deps.config.limits.maxBatch) {
    throw new GatewayError(
      'LATENT_TOO_LARGE',
      `latent batch is ${batch}; the limit is ${deps.config.limits.maxBatch}`,
      { batch, maxBatch: deps.config.limits.maxBatch },
    );
  }
  if (width * height > deps.config.limits.maxImagePixels) {
    throw new GatewayError(
      'IMAGE_TOO_LARGE',
      `latent decodes to ${width}x${height} = ${width * height} pixels; ` +
        `the limit is ${deps.config.limits.maxImagePixels}`,
      {
        width,
        height,
        maxPixels: deps.config.limits.maxImagePixels,
      },
    );
  }
  const plan = planned ?? deps.router.plan(model, 'decode', width, height, batch);
  const input = { data: reverseScaling(latent.data, scaling), dims: latent.dims };
  // The decoder computes in float32: refused here, before the run, rather than decoded to black.
  checkScaled(input.data, 'float32', scaling, 'unscaled latent');
  const { output, plan: ran, seconds } = await deps.router.run(model, plan, input, hooks);
  return { output, width, height, batch, plan: ran, seconds };
}

export async function decode(
  deps: PipelineDeps,
  request: DecodeRequest,
  hooks: ExecuteHooks = {},
): Promise<DecodeResult> {
  const model = deps.registry.require(request.model, 'decode');
  const scaling = resolveScaling(model, request.scalingFactor, request.shiftFactor);
  const raw = await rawLatent(deps, request);
  const admission = request.admission ?? admitDecode(deps, model, raw, request.delivery, 'url' in request.latent);
  try {
    return await admission.work(async () => {
      const latent = readLatent(raw, model, deps.config.limits.maxLatentBytes);
      const { output, plan, seconds } = await decodeLatent(deps, model, latent, scaling, hooks);
      const images = await deliverImages(deps, output, model.family.inputRange, request.format, request.delivery);
      return { model: model.id, ...scaling, images, plan, seconds };
    }, hooks.signal);
  } finally {
    if (!request.admission) admission.release();
  }
}

/** The request's latent bytes and shape: as sent, or from the result store for a URL. */
export async function rawLatent(
  deps: Pick<PipelineDeps, 'store' | 'config'>,
  request: Pick<DecodeRequest, 'latent'>,
): Promise<RawLatent> {
  return 'url' in request.latent
    ? latentFromUrl(deps.store, deps.config.publicUrl, request.latent.url)
    : request.latent;
}

/** Each image of a decoded batch (planar, in `range`) as 8-bit RGB written in `format`, delivered. */
export async function deliverImages(
  deps: Pick<PipelineDeps, 'store' | 'config'>,
  output: Nchw,
  range: PixelRange,
  format: ImageFormat,
  delivery: Delivery,
): Promise<DecodedImage[]> {
  const [batch, , height, width] = output.dims;
  const plane = 3 * width * height;
  const images: DecodedImage[] = [];
  for (let b = 0; b < batch; b++) {
    const pixels = planarToRgb(output.data.subarray(b * plane, (b + 1) * plane), width, height, range);
    const bytes = await writeImage({ pixels, width, height }, format);
    const delivered = await deliver(
      deps,
      delivery,
      { kind: 'image', bytes, contentType: MIME_TYPES[format] },
      'images',
    );
    images.push({
      ...delivered,
      format,
      mimeType: MIME_TYPES[format],
      width,
      height,
      sha256: sha256(bytes),
      byteLength: bytes.length,
    });
  }
  return images;
}
