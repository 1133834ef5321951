/**
 * EXIF orientation applied the way diffusers' `load_image` does (Pillow `ImageOps.exif_transpose`):
 * tag values 2..8 flip and/or rotate the stored pixels so the image stands upright; 1 or no tag
 * leaves them as stored.
 */

export interface Pixels3 {
  /** Interleaved RGB, row-major. */
  pixels: Uint8Array;
  width: number;
  height: number;
}

/**
 * For output (x, y) of an image that is `outW` wide, the stored pixel it comes from, per the
 * EXIF 2.3 definition of each orientation value (where the stored 0th row and column belong).
 */
const SOURCES: Record<number, (x: number, y: number, w: number, h: number) => [number, number]> = {
  2: (x, y, w) => [w - 1 - x, y], // mirrored left-right
  3: (x, y, w, h) => [w - 1 - x, h - 1 - y], // rotated 180
  4: (x, y, _w, h) => [x, h - 1 - y], // mirrored top-bottom
  5: (x, y) => [y, x], // transposed
  6: (x, y, _w, h) => [y, h - 1 - x], // stored rotated 90 counter-clockwise: turn clockwise
  7: (x, y, w, h) => [w - 1 - y, h - 1 - x], // transversed
  8: (x, y, w) => [w - 1 - y, x], // stored rotated 90 clockwise: turn counter-clockwise
};

export function applyOrientation(image: Pixels3, orientation: number | undefined): Pixels3 {
  const source = orientation === undefined ? undefined : SOURCES[orientation];
  if (!source) return image;
  const { width: w, height: h, pixels } = image;
  const swaps = orientation! >= 5;
  const outW = swaps ? h : w;
  const outH = swaps ? w : h;
  const out = new Uint8Array(pixels.length);
  for (let y = 0, o = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++, o += 3) {
      const [sx, sy] = source(x, y, w, h);
      const s = (sy * w + sx) * 3;
      out[o] = pixels[s];
      out[o + 1] = pixels[s + 1];
      out[o + 2] = pixels[s + 2];
    }
  }
  return { pixels: out, width: outW, height: outH };
}
