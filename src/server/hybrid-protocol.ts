/**
 * The Hugging Face Hybrid Inference VAE protocol, served: `POST /v1/vae/{model}/encode` and
 * `POST /v1/vae/{model}/decode`, as diffusers' `remote_encode` and `remote_decode` send them
 * (huggingface/diffusers, src/diffusers/utils/remote_utils.py; wire details in src/protocol/wire.ts).
 * Both go through the same pipeline, router, ledger and limits as the GraphQL mutations.
 *
 * encode
 *   body: image bytes (PNG, JPEG, WebP), or a raw tensor [B, 3, H, W] in [-1, 1] when `shape` and
 *   `dtype` are given. Query: `scaling_factor`, `shift_factor` (applied as (z - shift) * scale; when
 *   neither is given the latent is returned raw, as diffusers documents), `dtype` of the answer for
 *   image input (default float32; a tensor input's dtype is kept); `colour_management` for image
 *   input: `none` (default, the stored samples as diffusers reads them) or `srgb` (through the ICC profile).
 *   answer: raw latent bytes, headers `shape` (JSON list) and `dtype`; for image input
 *   `x-latentgate-resize`: `none`, or `PIL_LANCZOS from=WxH to=WxH` when the sides were rounded down.
 * decode
 *   body: raw latent bytes; query `shape` (once per dimension), `dtype`; `height` and `width` for
 *   packed latents [B, (H/16)*(W/16), 4*C]; `scaling_factor`/`shift_factor` (z / scale + shift) or
 *   `do_scaling=True` for the model's own factors, else the latent is taken as unscaled;
 *   `output_type`: `pil` (default) → image bytes in `image_format` (`jpg` default, or `png`);
 *   `pt` → float NCHW in [-1, 1] of the latent's dtype, or with `partial_postprocess=True` uint8
 *   NHWC; `pil` with `Accept: tensor/binary` (diffusers' "processor" flag) → float NCHW in [0, 1].
 * errors: the status of the gateway error and `{"error": "...", "code": ..., ...details}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cancelled, GatewayError } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import { fromPlanarFloat, type ImageFormat, MIME_TYPES, type PixelRange, writeImage } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import { decodeLatent } from '../pipeline/decode.js';
import { encodePixels, prepareImage } from '../pipeline/encode.js';
import {
  type LatentDType,
  parseLatentDType,
  readLatent,
  resolveScaling,
  type Scaling,
} from '../pipeline/latent-codec.js';
import { declaredLength, readLimitedBody } from '../protocol/body.js';
import { unpackLatents } from '../protocol/packing.js';
import { parseBool, TENSOR_CONTENT_TYPE, tensorByteLength, tensorHeaders } from '../protocol/wire.js';
import type { ExecuteHooks, Plan } from '../routing/router.js';
import { decodeTensor, elementCount, encodeTensor } from '../tensors/dtype.js';
import type { RunningServices } from './services.js';

export const HYBRID_PATH = /^\/v1\/vae\/([^/]+)\/(encode|decode)$/;

const OUTPUT_TYPES = ['pil', 'pt'] as const;
const IMAGE_FORMATS: Record<string, ImageFormat> = { jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp' };

export async function handleHybrid(
  services: RunningServices,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  match: RegExpExecArray,
): Promise<void> {
  if (req.method !== 'POST')
    throw new GatewayError('BAD_REQUEST', `${url.pathname} takes POST; got ${req.method}`, { allowed: ['POST'] });
  let modelId: string;
  try {
    modelId = decodeURIComponent(match[1]);
  } catch {
    throw new GatewayError('BAD_REQUEST', `"${match[1]}" is not a valid model id`);
  }
  // A client that goes away cancels the run (the ledger drops it from the queue, tiling stops between tiles).
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(cancelled('the client closed the connection'));
  });
  const hooks: ExecuteHooks = { signal: controller.signal };
  if (match[2] === 'encode') await serveEncode(services, modelId, req, res, url.searchParams, hooks);
  else await serveDecode(services, modelId, req, res, url.searchParams, hooks);
}

async function serveEncode(
  services: RunningServices,
  modelId: string,
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
  hooks: ExecuteHooks,
): Promise<void> {
  const model = services.registry.require(modelId, 'encode');
  const limits = services.config.limits;
  const scaling = protocolScaling(model, params);
  let pixels: Nchw;
  let dtype: LatentDType;
  const extraHeaders: Record<string, string> = {};
  if (params.has('shape')) {
    dtype = parseLatentDType(params.get('dtype') ?? 'missing');
    const shape = readShape(params);
    const dims = shape.length === 3 ? [1, ...shape] : shape;
    if (dims.length !== 4 || dims[1] !== 3) {
      throw new GatewayError('BAD_REQUEST', `an image tensor has shape [B, 3, H, W] (or [3, H, W]); got [${shape}]`, {
        shape,
      });
    }
    const [batch, , height, width] = dims;
    const f = model.downscaleFactor;
    if (height % f !== 0 || width % f !== 0) {
      throw new GatewayError(
        'BAD_REQUEST',
        `image tensor is ${width}x${height}; model "${model.id}" needs sides that are multiples of ${f}`,
        { width, height, factor: f },
      );
    }
    checkSize(services, batch, width, height);
    const body = await readBody(req, limits.maxLatentBytes, 'IMAGE_TOO_LARGE', 'image tensor');
    const expected = tensorByteLength(dims, dtype);
    if (body.length !== expected) {
      throw new GatewayError(
        'LATENT_SHAPE_MISMATCH',
        `image tensor is ${body.length} bytes, but shape [${shape}] of ${dtype} needs ${expected} bytes`,
        { bytes: body.length, expectedBytes: expected },
      );
    }
    pixels = { data: fromMinusOneOne(decodeTensor(body, dtype), model.family.inputRange), dims: dims as Nchw['dims'] };
  } else {
    dtype = params.has('dtype') ? parseLatentDType(params.get('dtype')!) : 'float32';
    const body = await readBody(req, limits.maxImageBytes, 'IMAGE_TOO_LARGE', 'image');
    const colour = oneOf(params, 'colour_management', ['none', 'srgb'] as const, 'none');
    const prepared = await prepareImage(services, model, body, colour === 'srgb' ? 'SRGB' : 'NONE');
    pixels = prepared.pixels;
    const { resize } = prepared;
    extraHeaders['x-latentgate-resize'] = resize
      ? `${resize.method} from=${resize.from.width}x${resize.from.height} to=${resize.to.width}x${resize.to.height}`
      : 'none';
  }
  const { latent, plan } = await encodePixels(services, model, pixels, scaling, hooks);
  const bytes = encodeTensor(latent.data, dtype);
  res.writeHead(200, { ...tensorHeaders(latent.dims, dtype, bytes.length), ...routeHeaders(plan), ...extraHeaders });
  res.end(bytes);
}

async function serveDecode(
  services: RunningServices,
  modelId: string,
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
  hooks: ExecuteHooks,
): Promise<void> {
  const model = services.registry.require(modelId, 'decode');
  const limits = services.config.limits;
  const dtype = parseLatentDType(params.get('dtype') ?? 'missing');
  const shape = readShape(params);
  const outputType = oneOf(params, 'output_type', OUTPUT_TYPES, 'pil');
  const formatName = params.get('image_format') ?? 'jpg';
  const format = IMAGE_FORMATS[formatName];
  if (!format)
    throw new GatewayError('BAD_REQUEST', `image_format "${formatName}" is not offered; allowed: jpg, png, webp`, {
      allowed: Object.keys(IMAGE_FORMATS),
    });
  const partial = bool(params, 'partial_postprocess') ?? false;
  // diffusers asks for a tensor with output_type=pil when it has a processor (video models): Accept says which.
  const wantsTensor = outputType === 'pt' || (req.headers.accept ?? '').includes(TENSOR_CONTENT_TYPE);
  const scaling = protocolScaling(model, params);
  if (shape.length === 3 && !(params.has('height') && params.has('width'))) {
    throw new GatewayError('LATENT_SHAPE_MISMATCH', 'a packed (3-D) latent needs the height and width parameters', {
      shape,
    });
  }
  if (outputType === 'pil' && !wantsTensor && shape[0] !== 1) {
    throw new GatewayError(
      'BAD_REQUEST',
      `output_type=pil returns one image; the latent has batch ${shape[0]} (use output_type=pt)`,
      { batch: shape[0] },
    );
  }
  const body = await readBody(req, limits.maxLatentBytes, 'LATENT_TOO_LARGE', 'latent');
  const latent =
    shape.length === 3
      ? readPacked(body, shape, dtype, model, params)
      : readLatent({ bytes: body, shape, dtype }, model, limits.maxLatentBytes);
  const { output, width, height, batch, plan } = await decodeLatent(services, model, latent, scaling, hooks);
  const range = model.family.inputRange;
  if (!wantsTensor) {
    const bytes = await writeImage(fromPlanarFloat(output.data, width, height, range), format);
    res.writeHead(200, {
      'content-type': MIME_TYPES[format],
      'content-length': String(bytes.length),
      ...routeHeaders(plan),
    });
    res.end(bytes);
    return;
  }
  let tensor: { bytes: Buffer; shape: number[]; dtype: LatentDType | 'uint8' };
  if (outputType === 'pt' && partial) {
    // uint8 NHWC, denormalised (diffusers' partial postprocess): the same pixels a PNG would hold.
    const plane = 3 * width * height;
    const bytes = Buffer.alloc(batch * plane);
    for (let b = 0; b < batch; b++)
      bytes.set(
        fromPlanarFloat(output.data.subarray(b * plane, (b + 1) * plane), width, height, range).pixels,
        b * plane,
      );
    tensor = { bytes, shape: [batch, height, width, 3], dtype: 'uint8' };
  } else if (outputType === 'pt') {
    tensor = { bytes: encodeTensor(toMinusOneOne(output.data, range), dtype), shape: [...output.dims], dtype };
  } else {
    tensor = { bytes: encodeTensor(toUnit(output.data, range), dtype), shape: [...output.dims], dtype };
  }
  res.writeHead(200, { ...tensorHeaders(tensor.shape, tensor.dtype, tensor.bytes.length), ...routeHeaders(plan) });
  res.end(tensor.bytes);
}

/**
 * diffusers' rules: given factors are applied (a missing one is neutral); with neither,
 * `do_scaling=True` (the deprecated default of remote_decode) means the model's own factors, and
 * otherwise the tensor is taken as already scaled.
 */
function protocolScaling(model: ModelDefinition, params: URLSearchParams): Scaling {
  const scale = number(params, 'scaling_factor');
  const shift = number(params, 'shift_factor');
  if (scale !== null || shift !== null) return resolveScaling(model, scale ?? 1, shift ?? 0);
  if (bool(params, 'do_scaling')) return resolveScaling(model, null, null);
  return { scalingFactor: 1, shiftFactor: 0 };
}

function readPacked(
  body: Buffer,
  shape: number[],
  dtype: LatentDType,
  model: ModelDefinition,
  params: URLSearchParams,
): Nchw {
  const height = positiveInteger(params, 'height');
  const width = positiveInteger(params, 'width');
  const expected = tensorByteLength(shape, dtype);
  if (body.length !== expected) {
    throw new GatewayError(
      'LATENT_SHAPE_MISMATCH',
      `latent data is ${body.length} bytes, but shape [${shape}] of ${dtype} needs ${expected} bytes`,
      { bytes: body.length, expectedBytes: expected },
    );
  }
  if (shape[2] !== 4 * model.latentChannels) {
    throw new GatewayError(
      'LATENT_CHANNELS_MISMATCH',
      `a packed latent of model "${model.id}" has ${4 * model.latentChannels} features (2x2 patches of ${model.latentChannels} channels); got ${shape[2]}`,
      {
        features: shape[2],
        expected: 4 * model.latentChannels,
      },
    );
  }
  try {
    return unpackLatents(
      decodeTensor(body, dtype),
      shape as [number, number, number],
      height,
      width,
      model.downscaleFactor,
    );
  } catch (error) {
    throw new GatewayError('LATENT_SHAPE_MISMATCH', (error as Error).message, { shape, height, width });
  }
}

function readShape(params: URLSearchParams): number[] {
  const values = params.getAll('shape');
  if (values.length === 0)
    throw new GatewayError('LATENT_SHAPE_MISMATCH', 'the shape parameter is missing (one shape=N per dimension)');
  // One parameter per dimension, as requests sends a list; a JSON list is taken too.
  const parts = values.length === 1 && values[0].trim().startsWith('[') ? safeJsonList(values[0]) : values;
  const shape = parts.map((v) => Number(v));
  if (shape.length < 3 || shape.length > 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new GatewayError(
      'LATENT_SHAPE_MISMATCH',
      `shape [${values}] must be 4 positive integers [batch, channels, height, width] or 3 for a packed latent`,
      { shape: values },
    );
  }
  if (elementCount(shape) > Number.MAX_SAFE_INTEGER / 8)
    throw new GatewayError('LATENT_SHAPE_MISMATCH', `shape [${shape}] is too large`, { shape });
  return shape;
}

function safeJsonList(text: string): unknown[] {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : [text];
  } catch {
    return [text];
  }
}

function checkSize(services: RunningServices, batch: number, width: number, height: number): void {
  const { maxBatch, maxImagePixels } = services.config.limits;
  if (batch > maxBatch)
    throw new GatewayError('BAD_REQUEST', `batch is ${batch}; the limit is ${maxBatch}`, { batch, maxBatch });
  if (width * height > maxImagePixels) {
    throw new GatewayError(
      'IMAGE_TOO_LARGE',
      `image is ${width}x${height} = ${width * height} pixels; the limit is ${maxImagePixels}`,
      { width, height, maxPixels: maxImagePixels },
    );
  }
}

function number(params: URLSearchParams, name: string): number | null {
  const text = params.get(name);
  if (text === null || text === 'None') return null;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw new GatewayError('BAD_REQUEST', `${name} is "${text}"; it must be a number`, { field: name });
  return value;
}

function positiveInteger(params: URLSearchParams, name: string): number {
  const value = number(params, name);
  if (value === null || !Number.isInteger(value) || value <= 0)
    throw new GatewayError('BAD_REQUEST', `${name} must be a positive integer; got ${params.get(name)}`, {
      field: name,
    });
  return value;
}

function bool(params: URLSearchParams, name: string): boolean | null {
  try {
    return parseBool(params.get(name));
  } catch (error) {
    throw new GatewayError('BAD_REQUEST', `${name}: ${(error as Error).message}`, { field: name });
  }
}

function oneOf<T extends string>(params: URLSearchParams, name: string, allowed: readonly T[], fallback: T): T {
  const value = params.get(name);
  if (value === null) return fallback;
  if (!(allowed as readonly string[]).includes(value))
    throw new GatewayError('BAD_REQUEST', `${name} "${value}" is not offered; allowed: ${allowed.join(', ')}`, {
      field: name,
      allowed,
    });
  return value as T;
}

/** The request body, refused with `code` once it passes `limit` bytes. */
function readBody(
  req: IncomingMessage,
  limit: number,
  code: 'IMAGE_TOO_LARGE' | 'LATENT_TOO_LARGE',
  what: string,
): Promise<Buffer> {
  return readLimitedBody(
    req,
    limit,
    declaredLength(req.headers['content-length']),
    (bytes) =>
      new GatewayError(code, `the ${what} is ${bytes ?? `over ${limit}`} bytes; the limit is ${limit} bytes`, {
        maxBytes: limit,
      }),
  );
}

/** diffusers' [-1, 1] image convention → the model's input range. */
function fromMinusOneOne(values: Float32Array, range: PixelRange): Float32Array {
  return range === 'minus-one-one' ? values : values.map((v) => (v + 1) / 2);
}

function toMinusOneOne(values: Float32Array, range: PixelRange): Float32Array {
  return range === 'minus-one-one' ? values : values.map((v) => v * 2 - 1);
}

function toUnit(values: Float32Array, range: PixelRange): Float32Array {
  return values.map((v) => Math.min(1, Math.max(0, range === 'zero-one' ? v : (v + 1) / 2)));
}

function routeHeaders(plan: Plan): Record<string, string> {
  return { 'x-latentgate-route': plan.route, 'x-latentgate-target': plan.target };
}
