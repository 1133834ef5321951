/**
 * The sharp adapter: image bytes ↔ 8-bit RGB pixels. Reading follows what diffusers gets from
 * `load_image` (Pillow `open`, `ImageOps.exif_transpose`, `convert("RGB")`): the stored samples,
 * no colour management, Pillow's rules for every other layout (src/imaging/pil-modes.ts), EXIF
 * orientation applied. Colour management (through the embedded ICC profile to sRGB, by libvips)
 * is an explicit option. Float conversion is done here in our own code (sharp's raw float output
 * is unreliable); resizing to the model's factor is Pillow's LANCZOS (src/imaging/pil-resize.ts).
 */
import sharp, { type Metadata } from 'sharp';
import { GatewayError } from '../errors.js';
import { applyOrientation } from './orientation.js';
import { cmykToRgb, gray16ToRgb, samplesToRgb } from './pil-modes.js';
import { pilLanczosResizeYielding } from './pil-resize.js';
import type { RgbImage } from './rgb-image.js';

// libvips' operation cache keeps decoded images after the request that made them (up to 50 MiB and
// 100 operations by default): memory nobody counts. Every image here is decoded once, so it is off.
sharp.cache(false);

export type ImageFormat = 'png' | 'jpeg' | 'webp';
export const INPUT_FORMATS: readonly string[] = ['png', 'jpeg', 'webp'];

export type { RgbImage };

export interface ImageLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

/**
 * How stored samples become RGB. `NONE` (the default) is what Pillow, and so diffusers, does: the
 * samples as stored, whatever ICC profile is attached. `SRGB` converts through the embedded
 * profile (or libvips' default one for CMYK) to sRGB.
 */
export type ColourManagement = 'NONE' | 'SRGB';
export const COLOUR_MANAGEMENT: readonly ColourManagement[] = ['NONE', 'SRGB'];

export interface ReadOptions {
  colourManagement?: ColourManagement;
}

/** The image as read: upright RGB plus what the file said about itself. */
export interface ReadImage extends RgbImage {
  format: string;
  /** EXIF orientation applied (1 when none). */
  orientation: number;
}

/** PNG IHDR: colour type and bit depth (sharp's metadata does not say "16-bit gray without alpha" plainly). */
function pngHeader(bytes: Uint8Array): { bitDepth: number; colorType: number } | undefined {
  if (bytes.length < 33 || bytes[0] !== 0x89 || bytes[1] !== 0x50) return undefined;
  return { bitDepth: bytes[24], colorType: bytes[25] };
}

async function decodeAsPillow(bytes: Uint8Array, meta: Metadata, limitInputPixels: number): Promise<RgbImage> {
  const input = () => sharp(bytes, { limitInputPixels, ignoreIcc: true });
  const png = meta.format === 'png' ? pngHeader(bytes) : undefined;
  if (png && png.bitDepth === 16 && png.colorType === 0) {
    const { data, info } = await input()
      .toColourspace('grey16')
      .extractChannel(0)
      .raw({ depth: 'ushort' })
      .toBuffer({ resolveWithObject: true });
    const samples = new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
    return { pixels: gray16ToRgb(samples), width: info.width, height: info.height };
  }
  if (meta.space === 'cmyk') {
    // libvips hands CMYK JPEG samples over inverted (ink amounts), which is what Pillow's "CMYK;I" reads.
    const { data, info } = await input()
      .pipelineColourspace('cmyk')
      .toColourspace('cmyk')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`expected 4 CMYK channels, got ${info.channels}`);
    return { pixels: cmykToRgb(data, info.width * info.height), width: info.width, height: info.height };
  }
  // 8-bit gray is repeated into RGB, 16-bit RGB/RGBA/gray+alpha keep each sample's high byte, palettes
  // are looked up: libvips does all of these as Pillow does. Alpha is dropped, not composited.
  const { data, info } = await input()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return {
    pixels: samplesToRgb(data, info.channels, info.width * info.height),
    width: info.width,
    height: info.height,
  };
}

async function decodeColourManaged(bytes: Uint8Array, limitInputPixels: number): Promise<RgbImage> {
  const { data, info } = await sharp(bytes, { limitInputPixels })
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
  return {
    pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    width: info.width,
    height: info.height,
  };
}

/** What an image's header says, read before any pixel is decoded. */
export interface ImageHeader {
  format: string;
  width: number;
  height: number;
  /** Bytes per pixel libvips decodes to (channels x bytes per sample). */
  bytesPerPixel: number;
  meta: Metadata;
}

/**
 * The header of image bytes, checked against the limits (size, format, pixels) without decoding:
 * what a request will hold once decoded is known from it (src/pipeline/host-bytes.ts).
 */
export async function readImageHeader(bytes: Uint8Array, limits: ImageLimits): Promise<ImageHeader> {
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
  let meta: Metadata | undefined;
  try {
    // Header only, without sharp's own pixel limit, so an oversized header is IMAGE_TOO_LARGE below.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    meta = undefined;
  }
  const format = meta?.format;
  const width = meta?.width ?? 0;
  const height = meta?.height ?? 0;
  if (!meta || !format || !INPUT_FORMATS.includes(format) || width === 0 || height === 0) {
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
  const wide = meta.depth === 'ushort' || meta.depth === 'short' ? 2 : meta.depth === 'uchar' ? 1 : 4;
  return { format, width, height, bytesPerPixel: Math.max(3, meta.channels ?? 4) * wide, meta };
}

/** The one way image bytes become RGB pixels, for every path (GraphQL, Hybrid Inference, CLI). */
export async function readImage(bytes: Uint8Array, limits: ImageLimits, options: ReadOptions = {}): Promise<ReadImage> {
  const { meta, format } = await readImageHeader(bytes, limits);
  let decoded: RgbImage;
  try {
    decoded =
      options.colourManagement === 'SRGB'
        ? await decodeColourManaged(bytes, limits.maxImagePixels)
        : await decodeAsPillow(bytes, meta, limits.maxImagePixels);
  } catch (error) {
    throw new GatewayError('INVALID_IMAGE', `the ${format} image could not be decoded: ${(error as Error).message}`, {
      allowed: INPUT_FORMATS,
    });
  }
  const orientation = meta.orientation ?? 1;
  return { ...applyOrientation(decoded, orientation), format, orientation };
}

/** diffusers' VaeImageProcessor: each side rounded down to a multiple of `factor`. */
export function sizeForFactor(width: number, height: number, factor: number): { width: number; height: number } {
  return { width: width - (width % factor), height: height - (height % factor) };
}

/** The resize that ran, as results report it. */
export interface ResizeReport {
  method: 'PIL_LANCZOS';
  from: { width: number; height: number };
  to: { width: number; height: number };
}

/**
 * Pillow `resize(..., LANCZOS)`, bit for bit, as diffusers' VaeImageProcessor does; null report when the size stays.
 */
export async function resizeImage(
  image: RgbImage,
  width: number,
  height: number,
): Promise<{ image: RgbImage; resize: ResizeReport | null }> {
  if (image.width === width && image.height === height) return { image, resize: null };
  return {
    image: await pilLanczosResizeYielding(image, width, height),
    resize: {
      method: 'PIL_LANCZOS',
      from: { width: image.width, height: image.height },
      to: { width, height },
    },
  };
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
