/**
 * The sharp adapter: image bytes ↔ 8-bit RGB pixels. Float conversion is done here in our own
 * code (sharp's raw float output is unreliable), and resizing follows diffusers' VaeImageProcessor:
 * sizes round down to a multiple of the model's factor, then Lanczos resampling.
 */
import sharp from 'sharp';
import { GatewayError } from '../errors.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const INPUT_FORMATS: readonly string[] = ['png', 'jpeg', 'webp'];

export interface RgbImage {
  /** Interleaved RGB, row-major, 8 bits per channel. */
  pixels: Uint8Array;
  width: number;
  height: number;
}

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

export async function readImage(bytes: Uint8Array, limits: ImageLimits): Promise<RgbImage & { format: string }> {
  if (bytes.length > limits.maxImageBytes) {
    throw new GatewayError(
      'IMAGE_TOO_LARGE',
      `image is ${bytes.length} bytes; the limit is ${limits.maxImageBytes} bytes`,
      {
        bytes: bytes.length,
        maxBytes: limits.maxImageBytes,
      },
    );
  }
  let format: string | undefined;
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes).metadata();
    format = meta.format;
    width = meta.width ?? 0;
    height = meta.height ?? 0;
  } catch {
    format = undefined;
  }
  if (!format || !INPUT_FORMATS.includes(format) || width === 0 || height === 0) {
    throw new GatewayError(
      'INVALID_IMAGE',
      `the bytes are not a PNG, JPEG or WebP image${format ? ` (found ${format})` : ''}`,
      {
        allowed: INPUT_FORMATS,
        ...(format ? { found: format } : {}),
      },
    );
  }
  if (width * height > limits.maxImagePixels) {
    throw new GatewayError(
      'IMAGE_TOO_LARGE',
      `image is ${width}x${height} = ${width * height} pixels; the limit is ${limits.maxImagePixels} pixels`,
      {
        width,
        height,
        maxPixels: limits.maxImagePixels,
      },
    );
  }
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: limits.maxImagePixels })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return {
      pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      width: info.width,
      height: info.height,
      format,
    };
  } catch (error) {
    throw new GatewayError('INVALID_IMAGE', `the ${format} image could not be decoded: ${(error as Error).message}`, {
      allowed: INPUT_FORMATS,
    });
  }
}

/** diffusers' VaeImageProcessor: round each side down to a multiple of `factor`, resize with Lanczos. */
export function sizeForFactor(width: number, height: number, factor: number): { width: number; height: number } {
  return { width: width - (width % factor), height: height - (height % factor) };
}

export async function resizeImage(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (image.width === width && image.height === height) return image;
  const data = await sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}

export type PixelRange = 'zero-one' | 'minus-one-one';

/** Interleaved 8-bit RGB → planar float CHW in the model's range. */
export function toPlanarFloat(image: RgbImage, range: PixelRange): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  const [scale, offset] = range === 'zero-one' ? [1 / 255, 0] : [2 / 255, -1];
  for (let i = 0; i < plane; i++) {
    out[i] = image.pixels[i * 3] * scale + offset;
    out[plane + i] = image.pixels[i * 3 + 1] * scale + offset;
    out[2 * plane + i] = image.pixels[i * 3 + 2] * scale + offset;
  }
  return out;
}

/** Planar float CHW in the model's range → interleaved 8-bit RGB, clamped and rounded. */
export function fromPlanarFloat(planar: Float32Array, width: number, height: number, range: PixelRange): RgbImage {
  const plane = width * height;
  const pixels = new Uint8Array(3 * plane);
  const toUnit = range === 'zero-one' ? (v: number) => v : (v: number) => (v + 1) / 2;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = toUnit(planar[c * plane + i]);
      pixels[i * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return { pixels, width, height };
}

export const MIME_TYPES: Record<ImageFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

export async function writeImage(image: RgbImage, format: ImageFormat): Promise<Buffer> {
  const pipeline = sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: 3 } });
  switch (format) {
    case 'png':
      return pipeline.png().toBuffer();
    case 'jpeg':
      return pipeline.jpeg({ quality: 95 }).toBuffer();
    case 'webp':
      return pipeline.webp({ quality: 95 }).toBuffer();
  }
}
