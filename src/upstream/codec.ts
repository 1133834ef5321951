/**
 * What latentgate sends to an upstream and how it reads the answer, in the Hybrid Inference
 * protocol (see src/protocol/wire.ts). The router hands work over as float32 NCHW in the model's
 * own terms (encode: pixels in the model's input range; decode: the unscaled latent) and expects
 * the same back, so scaling never travels: the gateway applies it itself, on either side.
 *
 * - encode: an 8-bit image (which is what every gateway input is) goes as PNG, exactly as
 *   diffusers' `remote_encode` sends a PIL image; anything else goes as a float32 tensor in
 *   diffusers' [-1, 1] convention with `shape` and `dtype` parameters. No scaling parameters, so
 *   the latent comes back raw. The answer must be `[B, latentChannels, H/f, W/f]`.
 * - decode: the latent as float32 bytes with `output_type=pt&partial_postprocess=True`, the
 *   smallest transfer that keeps full 8-bit quality (diffusers' recommendation): uint8 NHWC pixels.
 *   A float NCHW answer in [-1, 1] (an endpoint that ignores partial_postprocess) is accepted too.
 */
import type { Nchw } from '../gpu/tensor.js';
import { writeImage } from '../imaging/images.js';
import type { ModelDefinition, Operation } from '../models/model.js';
import { isWireDType, parseShapeHeader, pythonQuery, TENSOR_CONTENT_TYPE, tensorByteLength } from '../protocol/wire.js';
import { decodeTensor, encodeTensor } from '../tensors/dtype.js';
import { convertRange, type PixelRange, planarToRgbExact, rgbToPlanar } from '../tensors/pixel-range.js';
import type { UpstreamRequest } from './http-client.js';

export type CodecModel = Pick<ModelDefinition, 'id' | 'latentChannels' | 'downscaleFactor'> & {
  family: { inputRange: PixelRange };
};

/** A response that does not say what the request asked for (wrong shape, dtype or length). */
export class ProtocolMismatch extends Error {}

export async function encodeRequest(url: string, model: CodecModel, input: Nchw): Promise<UpstreamRequest> {
  const [batch, channels, height, width] = input.dims;
  const range = model.family.inputRange;
  // 8-bit values exactly, as every decoded image is (then PNG is lossless).
  const pixels = batch === 1 && channels === 3 ? planarToRgbExact(input.data, width, height, range) : null;
  if (pixels) {
    const png = await writeImage({ pixels, width, height }, 'png');
    // diffusers' prepare_encode: PNG body, no parameters without scaling, no headers.
    return { url, method: 'POST', body: png };
  }
  const wire = convertRange(input.data, range, 'minus-one-one');
  const query = pythonQuery({ shape: input.dims, dtype: 'float32' });
  return { url: `${url}${url.includes('?') ? '&' : '?'}${query}`, method: 'POST', body: encodeTensor(wire, 'float32') };
}

export function decodeRequest(url: string, input: Nchw): UpstreamRequest {
  // diffusers' prepare_decode parameter order; scaling omitted (the latent is already unscaled).
  const query = pythonQuery({
    image_format: 'png',
    output_type: 'pt',
    partial_postprocess: true,
    shape: input.dims,
    dtype: 'float32',
  });
  return {
    url: `${url}${url.includes('?') ? '&' : '?'}${query}`,
    method: 'POST',
    headers: { 'Content-Type': TENSOR_CONTENT_TYPE, Accept: TENSOR_CONTENT_TYPE },
    body: encodeTensor(input.data, 'float32'),
  };
}

function readTensor(headers: Headers, body: Uint8Array): { shape: number[]; values: Float32Array; dtype: string } {
  const shapeText = headers.get('shape');
  const dtype = headers.get('dtype');
  const shape = parseShapeHeader(shapeText);
  if (!shape)
    throw new ProtocolMismatch(
      `the shape header is ${shapeText === null ? 'missing' : `"${shapeText}"`}, not a JSON list of positive integers`,
    );
  if (!isWireDType(dtype))
    throw new ProtocolMismatch(
      `the dtype header is ${dtype === null ? 'missing' : `"${dtype}"`}; expected float16, bfloat16, float32 or uint8`,
    );
  const expected = tensorByteLength(shape, dtype);
  if (body.length !== expected)
    throw new ProtocolMismatch(
      `the body is ${body.length} bytes, but shape ${JSON.stringify(shape)} of ${dtype} needs ${expected}`,
    );
  return { shape, values: decodeTensor(body, dtype), dtype };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The raw latent from an encode answer, checked against the request. */
export function readEncodeResponse(model: CodecModel, input: Nchw, headers: Headers, body: Uint8Array): Nchw {
  const [batch, , height, width] = input.dims;
  const f = model.downscaleFactor;
  const expected: Nchw['dims'] = [batch, model.latentChannels, Math.floor(height / f), Math.floor(width / f)];
  const tensor = readTensor(headers, body);
  if (tensor.dtype === 'uint8') throw new ProtocolMismatch('the latent came back as uint8');
  if (!sameShape(tensor.shape, expected))
    throw new ProtocolMismatch(
      `the latent has shape ${JSON.stringify(tensor.shape)}; expected ${JSON.stringify(expected)}`,
    );
  return { data: tensor.values, dims: expected };
}

/** The decoded pixels, in the model's output range as float32 NCHW, from a decode answer. */
export function readDecodeResponse(model: CodecModel, input: Nchw, headers: Headers, body: Uint8Array): Nchw {
  const [batch, , h, w] = input.dims;
  const [height, width] = [h * model.downscaleFactor, w * model.downscaleFactor];
  const dims: Nchw['dims'] = [batch, 3, height, width];
  const tensor = readTensor(headers, body);
  const plane = height * width;
  const range = model.family.inputRange;
  if (tensor.dtype === 'uint8') {
    if (!sameShape(tensor.shape, [batch, height, width, 3])) {
      throw new ProtocolMismatch(
        `the image tensor has shape ${JSON.stringify(tensor.shape)}; ` +
          `expected ${JSON.stringify([batch, height, width, 3])} (uint8 NHWC)`,
      );
    }
    const out = new Float32Array(batch * 3 * plane);
    for (let b = 0; b < batch; b++) {
      const item = tensor.values.subarray(b * 3 * plane, (b + 1) * 3 * plane);
      rgbToPlanar(item, width, height, range, out.subarray(b * 3 * plane));
    }
    return { data: out, dims };
  }
  if (!sameShape(tensor.shape, dims))
    throw new ProtocolMismatch(
      `the image tensor has shape ${JSON.stringify(tensor.shape)}; expected ${JSON.stringify(dims)} (float NCHW)`,
    );
  return { data: convertRange(tensor.values, 'minus-one-one', range), dims };
}

export async function buildRequest(
  operation: Operation,
  url: string,
  model: CodecModel,
  input: Nchw,
): Promise<UpstreamRequest> {
  return operation === 'encode' ? encodeRequest(url, model, input) : decodeRequest(url, input);
}

export function readResponse(
  operation: Operation,
  model: CodecModel,
  input: Nchw,
  headers: Headers,
  body: Uint8Array,
): Nchw {
  return operation === 'encode'
    ? readEncodeResponse(model, input, headers, body)
    : readDecodeResponse(model, input, headers, body);
}

/** Bytes an answer may have: the expected tensor at float32, with slack for headers of images. */
export function maxResponseBytes(operation: Operation, model: CodecModel, input: Nchw): number {
  const [batch, , h, w] = input.dims;
  const elements =
    operation === 'encode'
      ? batch * model.latentChannels * Math.ceil(h / model.downscaleFactor) * Math.ceil(w / model.downscaleFactor)
      : batch * 3 * h * w * model.downscaleFactor ** 2;
  return elements * 4 + 65536;
}
