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
import { authenticateFor } from '../auth/authenticate.js';
import { COMPUTE_RESERVATION, pixelSeconds, rateLimitedError, type Ticket } from '../auth/limiter.js';
import { cancelled, GatewayError } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import { MIME_TYPES, writeImage } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import { decodeLatent } from '../pipeline/decode.js';
import { encodePixels, prepareImage } from '../pipeline/encode.js';
import { admitDecode, admitEncode, admitTensorEncode } from '../pipeline/host-bytes.js';
import { checkFinite, checkScaled, type LatentDType, readLatent } from '../pipeline/latent-codec.js';
import { declaredLength, readExactBody, readLimitedBody } from '../protocol/body.js';
import { parseDecodeParams, parseEncodeParams, protocolScaling } from '../protocol/hybrid-params.js';
import { unpackLatents } from '../protocol/packing.js';
import { tensorByteLength, tensorHeaders } from '../protocol/wire.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import type { ExecuteHooks, Plan } from '../routing/router.js';
import { decodeTensor, encodeTensor } from '../tensors/dtype.js';
import { convertRange, planarToRgb, toUnitClamped } from '../tensors/pixel-range.js';
import { crossSiteRefusal, originAllowed } from './browser-safety.js';
import type { RunningServices } from './services.js';

export const HYBRID_PATH = /^\/v1\/vae\/([^/]+)\/(encode|decode)$/;

export async function handleHybrid(
  services: RunningServices,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  match: RegExpExecArray,
): Promise<void> {
  if (req.method !== 'POST')
    throw new GatewayError('BAD_REQUEST', `${url.pathname} takes POST; got ${req.method}`, { allowed: ['POST'] });
  if (!originAllowed(req, services.config.browser.corsOrigins))
    throw crossSiteRefusal(req.headers.origin, 'Hybrid Inference request');
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
  try {
    // Before the body is read: a 401 carries WWW-Authenticate, so `requests` retries with ~/.netrc's Basic.
    const operation = match[2] === 'encode' ? 'encode' : 'decode';
    const auth = authenticateFor(services.keys, req, operation);
    if (!auth.ok) throw auth.error;
    let ticket: Ticket | null = null;
    if (auth.key) {
      const admission = await services.limiter.admit(auth.key.name, COMPUTE_RESERVATION);
      if (!admission.allowed) throw rateLimitedError(admission.limited);
      ticket = admission.ticket;
    }
    const serve = match[2] === 'encode' ? serveEncode : serveDecode;
    let measured = 0;
    try {
      measured = await serve(services, modelId, req, res, url.searchParams, hooks);
    } finally {
      if (ticket) await services.limiter.settle(ticket, measured);
    }
  } catch (error) {
    // Refused before the body was read whole: close the connection after the answer rather than read the rest.
    if (!req.complete && !res.headersSent) res.setHeader('connection', 'close');
    throw error;
  }
}

async function serveEncode(
  services: RunningServices,
  modelId: string,
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
  hooks: ExecuteHooks,
): Promise<number> {
  const model = services.registry.require(modelId, 'encode');
  const limits = services.config.limits;
  const { scaling, tensor, dtype, colourManagement } = parseEncodeParams(params);
  let pixels: Nchw;
  const extraHeaders: Record<string, string> = {};
  if (tensor) {
    const { dims } = tensor;
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
    const expected = tensorByteLength(dims, tensor.dtype);
    if (expected > limits.maxLatentBytes)
      throw new GatewayError(
        'IMAGE_TOO_LARGE',
        `image tensor [${dims}] of ${tensor.dtype} is ${expected} bytes; the limit is ${limits.maxLatentBytes} bytes`,
        { bytes: expected, maxBytes: limits.maxLatentBytes },
      );
    // Counted from acceptance: the tensor's size is known from its shape before its body is read.
    await holdHost(res, admitTensorEncode(services, model, dims, expected), hooks);
    const body = await readTensorBody(req, expected, `image tensor [${dims}] of ${tensor.dtype}`);
    // diffusers' [-1, 1] image convention → the model's input range.
    const data = convertRange(decodeTensor(body, tensor.dtype), 'minus-one-one', model.family.inputRange);
    pixels = { data, dims, transferable: true };
  } else {
    const body = await readImageBody(req, limits.maxImageBytes);
    await holdHost(res, await admitEncode(services, model, body, dtype, 'URL'), hooks);
    const prepared = await prepareImage(services, model, body, colourManagement);
    pixels = prepared.pixels;
    const { resize } = prepared;
    extraHeaders['x-latentgate-resize'] = resize
      ? `${resize.method} from=${resize.from.width}x${resize.from.height} to=${resize.to.width}x${resize.to.height}`
      : 'none';
  }
  const factors = protocolScaling(model, scaling);
  const { latent, plan, seconds } = await encodePixels(services, model, pixels, factors, hooks);
  checkScaled(latent.data, dtype, factors, 'latent');
  const bytes = encodeTensor(latent.data, dtype);
  res.writeHead(200, { ...tensorHeaders(latent.dims, dtype, bytes.length), ...routeHeaders(plan), ...extraHeaders });
  res.end(bytes);
  const [batch, , height, width] = pixels.dims;
  return pixelSeconds(batch * height * width, seconds);
}

async function serveDecode(
  services: RunningServices,
  modelId: string,
  req: IncomingMessage,
  res: ServerResponse,
  params: URLSearchParams,
  hooks: ExecuteHooks,
): Promise<number> {
  const model = services.registry.require(modelId, 'decode');
  const limits = services.config.limits;
  const {
    shape,
    dtype,
    packedSize,
    outputType,
    imageFormat: format,
    partialPostprocess: partial,
    wantsTensor,
    scaling,
  } = parseDecodeParams(params, req.headers.accept);
  // Everything the query says is checked before the body is read, and then exactly its bytes are read.
  const expected = tensorByteLength(shape, dtype);
  checkLatentBeforeReading(services, model, shape, expected, packedSize);
  const body = await readTensorBody(req, expected, `latent [${shape}] of ${dtype}`);
  const latent = packedSize
    ? readPacked(body, shape, dtype, model, packedSize)
    : readLatent({ bytes: body, shape, dtype }, model, limits.maxLatentBytes);
  await holdHost(res, admitDecode(services, model, { bytes: body, shape: latent.dims, dtype }, 'URL', false), hooks);
  const { output, width, height, batch, plan, seconds } = await decodeLatent(
    services,
    model,
    latent,
    protocolScaling(model, scaling),
    hooks,
  );
  const cost = pixelSeconds(batch * width * height, seconds);
  const range = model.family.inputRange;
  if (!wantsTensor) {
    const bytes = await writeImage({ pixels: planarToRgb(output.data, width, height, range), width, height }, format);
    res.writeHead(200, {
      'content-type': MIME_TYPES[format],
      'content-length': String(bytes.length),
      ...routeHeaders(plan),
    });
    res.end(bytes);
    return cost;
  }
  let tensor: { bytes: Buffer; shape: number[]; dtype: LatentDType | 'uint8' };
  if (outputType === 'pt' && partial) {
    // uint8 NHWC, denormalised (diffusers' partial postprocess): the same pixels a PNG would hold.
    const plane = 3 * width * height;
    const bytes = Buffer.alloc(batch * plane);
    for (let b = 0; b < batch; b++)
      planarToRgb(output.data.subarray(b * plane, (b + 1) * plane), width, height, range, bytes.subarray(b * plane));
    tensor = { bytes, shape: [batch, height, width, 3], dtype: 'uint8' };
  } else if (outputType === 'pt') {
    const values = convertRange(output.data, range, 'minus-one-one');
    tensor = { bytes: encodeTensor(values, dtype), shape: [...output.dims], dtype };
  } else {
    tensor = { bytes: encodeTensor(toUnitClamped(output.data, range), dtype), shape: [...output.dims], dtype };
  }
  res.writeHead(200, { ...tensorHeaders(tensor.shape, tensor.dtype, tensor.bytes.length), ...routeHeaders(plan) });
  res.end(tensor.bytes);
  return cost;
}

/** The request's HOST_MEMORY, held from admission (its work once it fits) until the response closes. */
async function holdHost(res: ServerResponse, admission: HostAdmission, hooks: ExecuteHooks): Promise<void> {
  res.once('close', () => admission.release());
  await admission.start(hooks.signal);
}

function readPacked(
  body: Buffer,
  shape: number[],
  dtype: LatentDType,
  model: ModelDefinition,
  { height, width }: { height: number; width: number },
): Nchw {
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
      `a packed latent of model "${model.id}" has ${4 * model.latentChannels} features ` +
        `(2x2 patches of ${model.latentChannels} channels); ` +
        `got ${shape[2]}`,
      {
        features: shape[2],
        expected: 4 * model.latentChannels,
      },
    );
  }
  const values = decodeTensor(body, dtype);
  checkFinite(values, 'latent');
  try {
    return unpackLatents(values, shape as [number, number, number], height, width, model.downscaleFactor);
  } catch (error) {
    throw new GatewayError('LATENT_SHAPE_MISMATCH', (error as Error).message, { shape, height, width });
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

/** Size, channels, batch and pixels of a latent, from the query alone. */
function checkLatentBeforeReading(
  services: RunningServices,
  model: ModelDefinition,
  shape: number[],
  bytes: number,
  packedSize: { height: number; width: number } | null,
): void {
  const { maxLatentBytes, maxBatch, maxImagePixels } = services.config.limits;
  if (bytes > maxLatentBytes)
    throw new GatewayError(
      'LATENT_TOO_LARGE',
      `latent [${shape}] is ${bytes} bytes; the limit is ${maxLatentBytes} bytes (MAX_LATENT_BYTES)`,
      { bytes, maxBytes: maxLatentBytes },
    );
  const channels = packedSize ? shape[2] : shape[1];
  const expected = packedSize ? 4 * model.latentChannels : model.latentChannels;
  if (channels !== expected)
    throw new GatewayError(
      'LATENT_CHANNELS_MISMATCH',
      `latent [${shape}] has ${channels} ${packedSize ? 'features' : 'channels'}; model "${model.id}" takes ${expected}`,
      { channels, expected, model: model.id },
    );
  if (shape[0] > maxBatch)
    throw new GatewayError('LATENT_TOO_LARGE', `latent batch is ${shape[0]}; the limit is ${maxBatch} (MAX_BATCH)`, {
      batch: shape[0],
      maxBatch,
    });
  const f = model.downscaleFactor;
  const { width, height } = packedSize ?? { width: shape[3] * f, height: shape[2] * f };
  if (width * height > maxImagePixels)
    throw new GatewayError(
      'IMAGE_TOO_LARGE',
      `latent decodes to ${width}x${height} = ${width * height} pixels; the limit is ${maxImagePixels} (MAX_IMAGE_PIXELS)`,
      { width, height, maxPixels: maxImagePixels },
    );
}

/** Exactly the `expected` bytes of a tensor body; a body of any other length is LATENT_SHAPE_MISMATCH. */
function readTensorBody(req: IncomingMessage, expected: number, what: string): Promise<Buffer> {
  const mismatch = (bytes: number, more: boolean) =>
    new GatewayError(
      'LATENT_SHAPE_MISMATCH',
      `the body is ${more ? `more than ${expected}` : bytes} bytes, but ${what} needs ${expected} bytes`,
      { bytes, expectedBytes: expected },
    );
  return typedReadErrors(readExactBody(req, expected, declaredLength(req.headers['content-length']), mismatch));
}

/** An image file body, refused before reading when its declared length is over `limit`, else once it passes it. */
function readImageBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (bytes: number | null) =>
    new GatewayError(
      'IMAGE_TOO_LARGE',
      `the image is ${bytes ?? `over ${limit}`} bytes; the limit is ${limit} bytes (MAX_IMAGE_BYTES)`,
      { maxBytes: limit },
    );
  return typedReadErrors(readLimitedBody(req, limit, declaredLength(req.headers['content-length']), tooLarge));
}

/** A client that goes away mid-body (or is cut off by REQUEST_TIMEOUT_MS) cancelled its request: no internal error. */
async function typedReadErrors(body: Promise<Buffer>): Promise<Buffer> {
  try {
    return await body;
  } catch (error) {
    throw error instanceof GatewayError ? error : cancelled('the client stopped sending the body');
  }
}

function routeHeaders(plan: Plan): Record<string, string> {
  return { 'x-latentgate-route': plan.route, 'x-latentgate-target': plan.target };
}
