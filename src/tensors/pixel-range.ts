/**
 * Pixel values between 8 bits and the float ranges models take: [0, 1] (tiny autoencoders) or
 * [-1, 1] (AutoencoderKL, and diffusers' image tensors on the wire). The one home of these
 * conversions, so that every path gives the same float for the same pixel: 8-bit → float is
 * `u * (1/255)` or `u * (2/255) - 1` rounded to float32, which for every u equals `u / 255` and
 * `u / 127.5 - 1`; float → 8-bit clamps to the range and rounds, as diffusers' postprocess does.
 */
export type PixelRange = 'zero-one' | 'minus-one-one';

function byteTable(scale: number, offset: number): Float32Array {
  const table = new Float32Array(256);
  for (let u = 0; u < 256; u++) table[u] = u * scale + offset;
  return table;
}

/** The float of every 8-bit value, per range. */
const FROM_BYTE: Record<PixelRange, Float32Array> = {
  'zero-one': byteTable(1 / 255, 0),
  'minus-one-one': byteTable(2 / 255, -1),
};

/**
 * Interleaved 8-bit RGB (HWC) → planar float (CHW) in `range`, in one pass. `rgb` may hold the
 * bytes as floats (a decoded uint8 tensor). `out` receives the planes (e.g. one item of a batch).
 */
export function rgbToPlanar(
  rgb: Uint8Array | Float32Array,
  width: number,
  height: number,
  range: PixelRange,
  out: Float32Array = new Float32Array(3 * width * height),
): Float32Array {
  const plane = width * height;
  const table = FROM_BYTE[range];
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = table[rgb[p]];
    out[plane + i] = table[rgb[p + 1]];
    out[2 * plane + i] = table[rgb[p + 2]];
  }
  return out;
}

/** Planar float (CHW) in `range` → interleaved 8-bit RGB (HWC), clamped to the range and rounded. */
export function planarToRgb(
  planar: Float32Array,
  width: number,
  height: number,
  range: PixelRange,
  out: Uint8Array = new Uint8Array(3 * width * height),
): Uint8Array {
  const plane = width * height;
  const fromMinusOne = range === 'minus-one-one';
  for (let c = 0; c < 3; c++) {
    const base = c * plane;
    for (let i = 0, p = c; i < plane; i++, p += 3) {
      const v = planar[base + i];
      out[p] = Math.round(Math.min(1, Math.max(0, fromMinusOne ? (v + 1) / 2 : v)) * 255);
    }
  }
  return out;
}

/**
 * The interleaved 8-bit RGB that planar floats in `range` were made from, or null when a value is
 * not within 1e-3 of an 8-bit step (then the floats carry more than 8 bits).
 */
export function planarToRgbExact(
  planar: Float32Array,
  width: number,
  height: number,
  range: PixelRange,
): Uint8Array | null {
  const plane = width * height;
  const [scale, offset] = range === 'zero-one' ? [255, 0] : [127.5, 1];
  const out = new Uint8Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const base = c * plane;
    for (let i = 0, p = c; i < plane; i++, p += 3) {
      const v = (planar[base + i] + offset) * scale;
      const r = Math.round(v);
      if (Math.abs(v - r) > 1e-3 || r < 0 || r > 255) return null;
      out[p] = r;
    }
  }
  return out;
}

/** Float pixel values from one range to the other: a new array, or `values` itself when the ranges agree. */
export function convertRange(values: Float32Array, from: PixelRange, to: PixelRange): Float32Array {
  if (from === to) return values;
  const out = new Float32Array(values.length);
  if (to === 'zero-one') for (let i = 0; i < values.length; i++) out[i] = (values[i] + 1) / 2;
  else for (let i = 0; i < values.length; i++) out[i] = values[i] * 2 - 1;
  return out;
}

/** Float pixel values in `range` → [0, 1], clamped (diffusers' postprocess before 8 bits): a new array. */
export function toUnitClamped(values: Float32Array, range: PixelRange): Float32Array {
  const out = new Float32Array(values.length);
  const fromMinusOne = range === 'minus-one-one';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out[i] = Math.min(1, Math.max(0, fromMinusOne ? (v + 1) / 2 : v));
  }
  return out;
}
