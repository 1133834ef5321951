/**
 * What a finished run costs against its key's daily quota, in pixel-seconds (src/auth/limiter.ts):
 * the images' pixels times the `seconds` its answer reports.
 */
import { pixelSeconds } from '../auth/limiter.js';
import type { ServedOperation } from '../models/model.js';
import type { DecodeResult } from './decode.js';
import type { EncodeResult } from './encode.js';
import type { Img2ImgResult } from './img2img-types.js';

/** The input image's pixels x the run's seconds. */
export function encodeCost(result: EncodeResult): number {
  return pixelSeconds(result.width * result.height, result.seconds);
}

/** The output images' pixels x the run's seconds. */
export function decodeCost(result: DecodeResult): number {
  return pixelSeconds(
    result.images.reduce((n, image) => n + image.width * image.height, 0),
    result.seconds,
  );
}

/** The output image's pixels (per image of the batch) x the whole request's seconds. */
export function img2imgCost(result: Img2ImgResult): number {
  return pixelSeconds(result.width * result.height * Math.max(1, result.images.length), result.seconds);
}

/** A job's result's cost, by the operation that made it. */
export function resultCost(operation: ServedOperation, result: EncodeResult | DecodeResult | Img2ImgResult): number {
  if (operation === 'encode') return encodeCost(result as EncodeResult);
  if (operation === 'decode') return decodeCost(result as DecodeResult);
  return img2imgCost(result as Img2ImgResult);
}
