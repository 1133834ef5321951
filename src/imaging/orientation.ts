/**
 * EXIF orientation applied the way diffusers' `load_image` does (Pillow `ImageOps.exif_transpose`):
 * tag values 2..8 flip and/or rotate the stored pixels so the image stands upright; 1 or no tag
 * leaves them as stored.
 */

import type { RgbImage } from './rgb-image.js';

/**
 * Where each upright pixel comes from, per the EXIF 2.3 meaning of each value: upright (x, y) reads
 * stored pixel `base + x * dx + y * dy` (in pixels, of a stored image w wide and h tall).
 */
function walk(orientation: number, w: number, h: number): { base: number; dx: number; dy: number } | undefined {
  const last = (h - 1) * w;
  switch (orientation) {
    case 2: // mirrored left-right
      return { base: w - 1, dx: -1, dy: w };
    case 3: // rotated 180
      return { base: last + w - 1, dx: -1, dy: -w };
    case 4: // mirrored top-bottom
      return { base: last, dx: 1, dy: -w };
    case 5: // transposed
      return { base: 0, dx: w, dy: 1 };
    case 6: // stored turned 90 counter-clockwise: turn it clockwise
      return { base: last, dx: -w, dy: 1 };
    case 7: // transversed
      return { base: last + w - 1, dx: -w, dy: -1 };
    case 8: // stored turned 90 clockwise: turn it counter-clockwise
      return { base: w - 1, dx: w, dy: -1 };
    default: // 1, absent or not a valid value: as stored (Pillow ignores other values too)
      return undefined;
  }
}

export function applyOrientation(image: RgbImage, orientation: number | undefined): RgbImage {
  const { width: w, height: h, pixels } = image;
  const steps = orientation === undefined ? undefined : walk(orientation, w, h);
  if (!steps) return image;
  const swaps = orientation! >= 5;
  const outW = swaps ? h : w;
  const outH = swaps ? w : h;
  const out = new Uint8Array(pixels.length);
  for (let y = 0, o = 0; y < outH; y++) {
    for (let x = 0, s = (steps.base + y * steps.dy) * 3; x < outW; x++, o += 3, s += steps.dx * 3) {
      out[o] = pixels[s];
      out[o + 1] = pixels[s + 1];
      out[o + 2] = pixels[s + 2];
    }
  }
  return { pixels: out, width: outW, height: outH };
}
