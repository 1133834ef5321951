/**
 * Pillow's `Image.resize(size, Image.LANCZOS)` for 8-bit RGB, bit for bit (Pillow's
 * src/libImaging/Resample.c, as in 9.x): a separable two-pass convolution, horizontal then
 * vertical, with a Lanczos-3 kernel whose support grows with the reduction factor, coefficients
 * normalised per output pixel then turned into fixed point with 22 fractional bits, sums started
 * at one half and clipped to 0..255 after an arithmetic shift. A pass whose side does not change
 * is skipped, as Pillow skips it (so a one-axis resize leaves the other axis untouched).
 *
 * diffusers' VaeImageProcessor resizes with exactly this, so matching it is what makes a gateway
 * latent equal a local one for sides that are not a multiple of the model's factor.
 */

import { simdPasses } from './pil-resize-simd.js';
import type { RgbImage } from './rgb-image.js';

/** Pillow's PRECISION_BITS: 8 bits for the result, 2 for overflow of negative lobes, in an int32. */
const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const LANCZOS_SUPPORT = 3;

/** One axis' filter: for output i, taps `coefficients[i*taps ... + count[i])` over inputs from `first[i]`. */
export interface AxisCoefficients {
  taps: number;
  first: Int32Array;
  count: Int32Array;
  /** Fixed point with PRECISION_BITS fractional bits; unused taps are 0. */
  coefficients: Int32Array;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

function lanczos(x: number): number {
  return -LANCZOS_SUPPORT <= x && x < LANCZOS_SUPPORT ? sinc(x) * sinc(x / LANCZOS_SUPPORT) : 0;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize) → outSize. The C code
 * truncates toward zero with `(int)`; every truncated value here is either non-negative or goes
 * through Math.trunc, so the same integers come out.
 */
export function lanczosCoefficients(inSize: number, outSize: number): AxisCoefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = LANCZOS_SUPPORT * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const coefficients = new Int32Array(outSize * taps);
  const weights = new Float64Array(taps);
  const inverseScale = 1 / filterScale;
  for (let out = 0; out < outSize; out++) {
    const center = (out + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const n = hi - lo;
    let total = 0;
    for (let x = 0; x < n; x++) {
      const w = lanczos((x + lo - center + 0.5) * inverseScale);
      weights[x] = w;
      total += w;
    }
    for (let x = 0; x < n; x++) {
      const w = total !== 0 ? weights[x] / total : weights[x];
      coefficients[out * taps + x] = Math.trunc(
        w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS),
      );
    }
    first[out] = lo;
    count[out] = n;
  }
  return { taps, first, count, coefficients };
}

/** Pillow's clip8: arithmetic shift, then clamp to a byte. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : Math.min(v, 255);
}

/** Multiply-adds per slice of work between yields to the event loop (a few milliseconds). */
const SLICE_WORK = 1 << 22;

/** Rows [rowFrom, rowTo) of `source` resampled along x, written from row `rowFrom - outRowBase` of `output`. */
function horizontalRows(
  source: RgbImage,
  outWidth: number,
  coefficients: AxisCoefficients,
  rowFrom: number,
  rowTo: number,
  output: Uint8Array,
  outRowBase: number,
): void {
  const { taps, first, count, coefficients: kk } = coefficients;
  const input = source.pixels;
  const inStride = source.width * 3;
  let o = (rowFrom - outRowBase) * outWidth * 3;
  for (let y = rowFrom; y < rowTo; y++) {
    const rowStart = y * inStride;
    for (let x = 0; x < outWidth; x++) {
      const k = x * taps;
      const n = count[x];
      let p = rowStart + first[x] * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let t = 0; t < n; t++, p += 3) {
        const c = kk[k + t];
        r = (r + Math.imul(input[p], c)) | 0;
        g = (g + Math.imul(input[p + 1], c)) | 0;
        b = (b + Math.imul(input[p + 2], c)) | 0;
      }
      output[o++] = clip8(r);
      output[o++] = clip8(g);
      output[o++] = clip8(b);
    }
  }
}

/**
 * Output rows [yFrom, yTo) resampled along y. `rowOffset` is the first source row `source` holds
 * (Pillow shifts the vertical bounds by it after a horizontal pass that only produced the rows the
 * vertical one reads).
 */
function verticalRows(
  source: Uint8Array,
  width: number,
  coefficients: AxisCoefficients,
  rowOffset: number,
  yFrom: number,
  yTo: number,
  output: Uint8Array,
): void {
  const { taps, first, count, coefficients: kk } = coefficients;
  const stride = width * 3;
  // Channels need no telling apart along y: every byte of a row is one column of samples.
  for (let y = yFrom; y < yTo; y++) {
    const k = y * taps;
    const n = count[y];
    const top = (first[y] - rowOffset) * stride;
    const outStart = y * stride;
    for (let i = 0; i < stride; i++) {
      let sum = HALF;
      for (let t = 0, p = top + i; t < n; t++, p += stride) sum = (sum + Math.imul(source[p], kk[k + t])) | 0;
      output[outStart + i] = clip8(sum);
    }
  }
}

/** What a resize does: each pass's coefficients (null: the pass is skipped, as Pillow skips it). */
export interface ResizePlan {
  source: RgbImage;
  width: number;
  height: number;
  horizontal: AxisCoefficients | null;
  vertical: AxisCoefficients | null;
  /** Source rows the horizontal pass produces: only those the vertical pass reads. */
  rowFrom: number;
  rowTo: number;
}

/** The passes of one resize, run a band of rows at a time, then the result. */
export interface ResizePasses {
  /** Source rows [from, to) along x. */
  horizontal(from: number, to: number): void;
  /** Output rows [from, to) along y. */
  vertical(from: number, to: number): void;
  result(): Uint8Array;
}

function plan(image: RgbImage, width: number, height: number): ResizePlan {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize target must be positive integers; got ${width}x${height}`);
  }
  const horizontal = width !== image.width ? lanczosCoefficients(image.width, width) : null;
  const vertical = height !== image.height ? lanczosCoefficients(image.height, height) : null;
  const rowFrom = vertical ? vertical.first[0] : 0;
  const rowTo = vertical ? vertical.first[height - 1] + vertical.count[height - 1] : image.height;
  return { source: image, width, height, horizontal, vertical, rowFrom, rowTo };
}

function scalarPasses({ source, width, height, horizontal, vertical, rowFrom, rowTo }: ResizePlan): ResizePasses {
  const narrowed = horizontal ? new Uint8Array(width * 3 * (rowTo - rowFrom)) : source.pixels;
  const output = vertical ? new Uint8Array(width * 3 * height) : narrowed;
  return {
    horizontal: (from, to) => horizontal && horizontalRows(source, width, horizontal, from, to, narrowed, rowFrom),
    vertical: (from, to) =>
      vertical && verticalRows(narrowed, width, vertical, horizontal ? rowFrom : 0, from, to, output),
    result: () => (output === source.pixels ? output.slice() : output),
  };
}

export interface ResizeOptions {
  /** Use the WebAssembly SIMD kernels where the runtime has them (default true); false: scalar TypeScript. */
  simd?: boolean;
}

/** The resize as slices of work: yields between slices, returns the image. */
function* resizeSlices(
  image: RgbImage,
  width: number,
  height: number,
  options: ResizeOptions,
): Generator<void, RgbImage> {
  const work = plan(image, width, height);
  const passes = (options.simd !== false && simdPasses(work, PRECISION_BITS)) || scalarPasses(work);
  if (work.horizontal) {
    const rows = Math.max(1, Math.floor(SLICE_WORK / (width * 3 * work.horizontal.taps)));
    for (let y = work.rowFrom; y < work.rowTo; y += rows) {
      passes.horizontal(y, Math.min(work.rowTo, y + rows));
      yield;
    }
  }
  if (work.vertical) {
    const rows = Math.max(1, Math.floor(SLICE_WORK / (width * 3 * work.vertical.taps)));
    for (let y = 0; y < height; y += rows) {
      passes.vertical(y, Math.min(height, y + rows));
      yield;
    }
  }
  return { pixels: passes.result(), width, height };
}

/** Pillow `resize((width, height), LANCZOS)` of an 8-bit RGB image, in one go. */
export function pilLanczosResize(
  image: RgbImage,
  width: number,
  height: number,
  options: ResizeOptions = {},
): RgbImage {
  const slices = resizeSlices(image, width, height, options);
  for (;;) {
    const step = slices.next();
    if (step.done) return step.value;
  }
}

/**
 * The same resize, giving the event loop a turn every few milliseconds so that a large image does
 * not stall the gateway's other requests while it is resampled.
 */
export async function pilLanczosResizeYielding(
  image: RgbImage,
  width: number,
  height: number,
  options: ResizeOptions = {},
): Promise<RgbImage> {
  const slices = resizeSlices(image, width, height, options);
  for (;;) {
    const step = slices.next();
    if (step.done) return step.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
