/**
 * What every img2img protocol client shares: the call as prepared once (seed fixed, init image
 * measured and in base64), the answer every client returns, and the checks on answer images.
 */
import { randomBytes } from 'node:crypto';
import sharp, { type Metadata } from 'sharp';
import { GatewayError } from '../../errors.js';
import { type ImageFormat, INPUT_FORMATS, MIME_TYPES, sizeForFactor } from '../../imaging/images.js';
import type { Img2ImgRequest } from '../../pipeline/img2img-types.js';
import { ProtocolMismatch } from '../codec.js';
import type { UpstreamConfig } from '../config.js';
import type { UpstreamRequest, UpstreamResponse } from '../http-client.js';

/** One finished img2img call: the encoded image as the endpoint sent it, and the seed it ran with. */
export interface UpstreamImg2ImgAnswer {
  /** Encoded image bytes (PNG, JPEG or WebP; `contentType` says which). */
  image: Uint8Array;
  contentType: string;
  seed: bigint;
  width: number;
  height: number;
}

/** The init image as sent: upright size, and the size diffusers' VaeImageProcessor makes of it (multiples of 8). */
export interface InitImage {
  bytes: Uint8Array;
  base64: string;
  width: number;
  height: number;
  /** Each side rounded down to a multiple of 8: the size of the result. */
  outputWidth: number;
  outputHeight: number;
}

export interface Img2ImgCall {
  request: Img2ImgRequest;
  image: InitImage;
  /** The request's seed, or one drawn for it (every protocol is sent a seed, so every result can be reproduced). */
  seed: bigint;
}

/** One protocol: whether it can express a request, the HTTP request for it, and how its answer reads. */
export interface Img2ImgClient {
  /** Why this protocol cannot carry `request` faithfully; null when it can. */
  refusal(request: Img2ImgRequest): string | null;
  build(call: Img2ImgCall, config: UpstreamConfig): UpstreamRequest;
  /** The answer; a ProtocolMismatch when it is not what the API documents. */
  read(call: Img2ImgCall, response: UpstreamResponse): Promise<UpstreamImg2ImgAnswer>;
}

/** What img2img needs from the VAE: sides of at least 8 pixels. */
const FACTOR = 8;

/** Measures the init image from its header (EXIF orientation applied, as diffusers' load_image does). */
export async function initImage(bytes: Uint8Array): Promise<InitImage> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new GatewayError(
      'INVALID_IMAGE',
      `the init image is not a PNG, JPEG or WebP image: ${(error as Error).message}`,
      {
        allowed: INPUT_FORMATS,
      },
    );
  }
  if (!meta.format || !INPUT_FORMATS.includes(meta.format) || !meta.width || !meta.height)
    throw new GatewayError('INVALID_IMAGE', `the init image is not a PNG, JPEG or WebP image (found ${meta.format})`, {
      allowed: INPUT_FORMATS,
    });
  const swapped = (meta.orientation ?? 1) >= 5;
  const [width, height] = swapped ? [meta.height, meta.width] : [meta.width, meta.height];
  const output = sizeForFactor(width, height, FACTOR);
  if (output.width === 0 || output.height === 0)
    throw new GatewayError('INVALID_IMAGE', `the init image is ${width}x${height}; img2img needs at least 8x8 pixels`, {
      width,
      height,
    });
  return {
    bytes,
    base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'),
    width,
    height,
    outputWidth: output.width,
    outputHeight: output.height,
  };
}

/** A seed from 0 to `max`, for a request that gave none. */
export function drawSeed(max: bigint): bigint {
  return randomBytes(8).readBigUInt64BE() % (max + 1n);
}

/** Denoising steps a request runs (diffusers: int(steps * strength)), at least one; the unit of img2img run time. */
export function denoisingSteps(request: Pick<Img2ImgRequest, 'steps' | 'strength'>): number {
  return Math.max(1, Math.floor(request.steps * request.strength));
}

/** Bytes an answer may have: the result as uncompressed 16-bit RGBA, base64, plus an echo of the request. */
export function maxImg2ImgResponseBytes(image: InitImage): number {
  const raw = image.outputWidth * image.outputHeight * 8 + image.bytes.length;
  return Math.ceil((raw * 4) / 3) + (1 << 20);
}

/** JSON text in which bigint values are written as plain integers (JSON.stringify refuses them). */
export function jsonWithBigInts(value: unknown): string {
  const marker = '\u0000bigint:';
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${marker}${v}` : v)).replace(
    /"\\u0000bigint:(-?\d+)"/g,
    '$1',
  );
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 (Buffer.from skips characters it does not know, which would hide a broken answer). */
export function decodeBase64(text: unknown, what: string): Uint8Array {
  if (typeof text !== 'string' || text.length === 0 || !BASE64.test(text))
    throw new ProtocolMismatch(`${what} is not a base64 string`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** The answer image's format and size from its own bytes; a ProtocolMismatch when they are no image. */
export async function answerImage(
  bytes: Uint8Array,
  seed: bigint,
): Promise<UpstreamImg2ImgAnswer & { format: ImageFormat }> {
  let meta: Metadata | null = null;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    meta = null;
  }
  const format = meta?.format;
  if (!meta || !format || !INPUT_FORMATS.includes(format) || !meta.width || !meta.height)
    throw new ProtocolMismatch(`the image is not a PNG, JPEG or WebP${format ? ` (found ${format})` : ''}`);
  const known = format as ImageFormat;
  return { image: bytes, contentType: MIME_TYPES[known], format: known, seed, width: meta.width, height: meta.height };
}

/** The body as a JSON object; a ProtocolMismatch otherwise. */
export function jsonObject(body: Uint8Array, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new ProtocolMismatch(`${what} is not JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ProtocolMismatch(`${what} is not a JSON object`);
  return parsed as Record<string, unknown>;
}
