/**
 * What an encode or decode holds in host memory (HOST_MEMORY), known before anything is decoded: from
 * the image header or the latent's shape. Upper bounds of each stage's buffers, summed (collection
 * of the earlier ones is not counted on):
 * - base (from acceptance to delivery): the compressed input or latent bytes; the answer when it goes
 *   back inline (its bytes and the base64 text).
 * - work (while the run is being prepared, runs and is answered): decoded samples as libvips gives
 *   them, 8-bit RGB (and its upright copy), the resize's intermediate and output, float32 model
 *   input, the network's output, the answer's bytes. URL answers are counted by the result store.
 */
import { GatewayError } from '../errors.js';
import { readImageHeader, sizeForFactor } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import { BYTES_PER_ELEMENT } from '../tensors/dtype.js';
import type { Delivery } from './delivery.js';
import type { PipelineDeps } from './encode.js';
import type { Img2ImgRequest } from './img2img-types.js';
import type { LatentDType, RawLatent } from './latent-codec.js';

const F32 = 4;
/** base64 text of n bytes (one byte per character in V8's one-byte strings). */
const base64Length = (n: number) => Math.ceil(n / 3) * 4;

export interface HostBytes {
  baseBytes: number;
  workBytes: number;
}

/** An encode of `image` (compressed bytes) with `model`: reads the header only. */
export async function encodeHostBytes(
  deps: Pick<PipelineDeps, 'config'>,
  model: ModelDefinition,
  image: Uint8Array,
  dtype: LatentDType,
  delivery: Delivery,
): Promise<HostBytes & { width: number; height: number }> {
  let header: Awaited<ReturnType<typeof readImageHeader>>;
  try {
    header = await readImageHeader(image, deps.config.limits);
  } catch (error) {
    // Bytes that are not an image within the limits: decoding refuses them the same way, in the run (a
    // job fails rather than its mutation); until then they hold only themselves.
    if (error instanceof GatewayError) return { baseBytes: image.byteLength, workBytes: 0, width: 0, height: 0 };
    throw error;
  }
  const { width: W, height: H } = header;
  const f = model.downscaleFactor;
  const { width, height } = sizeForFactor(W, H, f);
  const decoded = W * H * (header.bytesPerPixel + 3 + 3);
  const resized = width === W && height === H ? 0 : width * H * 3 + width * height * 3;
  const latentElements = model.latentChannels * Math.ceil(width / f) * Math.ceil(height / f);
  // KL encoders answer mean and log-variance: twice the latent channels.
  const output = 2 * latentElements * F32 + latentElements * F32;
  const answer = latentElements * BYTES_PER_ELEMENT[dtype];
  const inline = delivery === 'BASE64' ? answer + base64Length(answer) : 0;
  return {
    baseBytes: image.byteLength + inline,
    workBytes: decoded + resized + width * height * 3 * F32 + output + answer,
    width,
    height,
  };
}

/** A decode of `latent` with `model` (shape as sent; a shape that is not 4 positive integers counts 0). */
export function decodeHostBytes(
  model: ModelDefinition,
  latent: RawLatent,
  delivery: Delivery,
  /** The latent's bytes are the result store's (a URL), already counted there. */
  stored: boolean,
): HostBytes & { width: number; height: number; batch: number } {
  const valid = latent.shape.length === 4 && latent.shape.every((d) => Number.isInteger(d) && d > 0);
  const [batch, channels, h, w] = valid ? latent.shape : [0, 0, 0, 0];
  const [width, height] = [w * model.downscaleFactor, h * model.downscaleFactor];
  const elements = batch * channels * h * w;
  const pixels = batch * width * height;
  // Float latent and its unscaled copy, float RGB output, 8-bit RGB and written file of one image.
  const work = 2 * elements * F32 + pixels * 3 * F32 + 2 * width * height * 3;
  // An inline answer: every image's file (at most its raw size, plus headers) and its base64 text.
  const files = pixels * 3 + batch * 4096;
  const inline = delivery === 'BASE64' ? files + base64Length(files) : 0;
  return {
    baseBytes: (stored ? 0 : latent.bytes.byteLength) + inline,
    workBytes: work,
    width,
    height,
    batch,
  };
}

/** Admits an encode against HOST_MEMORY (BUSY / DOES_NOT_FIT), with its run's expected seconds. */
export async function admitEncode(
  deps: Pick<PipelineDeps, 'config' | 'router' | 'host'>,
  model: ModelDefinition,
  image: Uint8Array,
  dtype: LatentDType,
  delivery: Delivery,
): Promise<HostAdmission> {
  const bytes = await encodeHostBytes(deps, model, image, dtype, delivery);
  const seconds = runSeconds(deps, model, 'encode', bytes.width, bytes.height, 1);
  return deps.host.admit({
    ...bytes,
    workSeconds: seconds,
    label: `encode of a ${bytes.width}x${bytes.height} image with ${model.id}`,
  });
}

/** Admits an encode of an image tensor already read (`bytes` of it, NCHW `dims`) against HOST_MEMORY. */
export function admitTensorEncode(
  deps: Pick<PipelineDeps, 'router' | 'host'>,
  model: ModelDefinition,
  dims: readonly number[],
  bytes: number,
): HostAdmission {
  const [batch, channels, height, width] = dims;
  const f = model.downscaleFactor;
  const latentElements = batch * model.latentChannels * Math.ceil(width / f) * Math.ceil(height / f);
  // float32 input in the model's range; mean and log-variance output, the mean and the answer's bytes.
  const workBytes = batch * channels * height * width * F32 + 4 * latentElements * F32;
  return deps.host.admit({
    baseBytes: bytes,
    workBytes,
    workSeconds: runSeconds(deps, model, 'encode', width, height, batch),
    label: `encode of a [${dims}] image tensor with ${model.id}`,
  });
}

/**
 * Admits an img2img against HOST_MEMORY: the init image's encode (header-sized, as `admitEncode`) or
 * the init latent, the denoising latents (noise, latents, the UNet's doubled input and output under
 * guidance, scheduler state), prompt embeddings (77 tokens x 2048 features x 2 prompts, SDXL's size),
 * the decode of the result and the answer (an inline image and, when asked, the latent). `workSeconds`
 * is the caller's estimate of the whole run (stage plans' runSeconds summed), for Retry-After.
 */
export async function admitImg2Img(
  deps: Pick<PipelineDeps, 'config' | 'host'>,
  model: ModelDefinition,
  request: Pick<Img2ImgRequest, 'image' | 'latent' | 'delivery' | 'returnLatent' | 'dtype'>,
  workSeconds: number,
): Promise<HostAdmission> {
  const f = model.downscaleFactor;
  let init: HostBytes & { width: number; height: number };
  if (request.image) init = await encodeHostBytes(deps, model, request.image, 'float32', 'URL');
  else {
    const decoded = decodeHostBytes(
      model,
      request.latent ?? { bytes: new Uint8Array(0), shape: [], dtype: '' },
      'URL',
      false,
    );
    init = { baseBytes: decoded.baseBytes, workBytes: 0, width: decoded.width, height: decoded.height };
  }
  const { width, height } = init;
  const latentBytes = model.latentChannels * Math.ceil(width / f) * Math.ceil(height / f) * F32;
  const denoise = 10 * latentBytes + 2 * 2 * 77 * 2048 * F32;
  const output = decodeHostBytes(
    model,
    {
      bytes: new Uint8Array(0),
      shape: [1, model.latentChannels, Math.ceil(height / f), Math.ceil(width / f)],
      dtype: '',
    },
    request.delivery,
    true,
  );
  const latentAnswer = request.returnLatent ? latentBytes + base64Length(latentBytes) : 0;
  return deps.host.admit({
    baseBytes: init.baseBytes + output.baseBytes + latentAnswer,
    workBytes: init.workBytes + denoise + output.workBytes,
    workSeconds,
    label: `img2img of a ${width}x${height} image with ${model.id}`,
  });
}

/** Admits a decode against HOST_MEMORY (BUSY / DOES_NOT_FIT). */
export function admitDecode(
  deps: Pick<PipelineDeps, 'router' | 'host'>,
  model: ModelDefinition,
  latent: RawLatent,
  delivery: Delivery,
  stored: boolean,
): HostAdmission {
  const bytes = decodeHostBytes(model, latent, delivery, stored);
  const seconds = bytes.batch > 0 ? runSeconds(deps, model, 'decode', bytes.width, bytes.height, bytes.batch) : 0;
  return deps.host.admit({
    ...bytes,
    workSeconds: seconds,
    label: `decode of ${bytes.batch} ${bytes.width}x${bytes.height} image(s) with ${model.id}`,
  });
}

function runSeconds(
  deps: Pick<PipelineDeps, 'router'>,
  model: ModelDefinition,
  operation: 'encode' | 'decode',
  width: number,
  height: number,
  batch: number,
): number {
  if (width === 0 || height === 0) return 0;
  try {
    return deps.router.plan(model, operation, width, height, batch).runSeconds;
  } catch (error) {
    // No profile for the model: the run itself reports that; the estimate only feeds Retry-After.
    if (error instanceof GatewayError) return 0;
    throw error;
  }
}
