/**
 * Two ways to run a network in tiles.
 *
 * runTiled: overlapping tiles, laid out in input coordinates and aligned to the network's stride so
 * every tile maps onto whole output pixels. Two ways to join them:
 * - exact, for a network with a known receptive `reach` (the TAE image-resolution stages) and an
 *   overlap of at least `exactOverlap(reach, align)`: each overlap is cut in the middle and every
 *   output pixel comes from the one tile where it lies `reach` or more from a cut edge, so it saw
 *   exactly the inputs it sees in a whole run: equal to the whole run up to float rounding;
 * - blended, for networks whose receptive field is larger than any affordable overlap (AutoencoderKL,
 *   global attention and GroupNorm in every tile): each output pixel of an overlap is a weighted
 *   mean with weights that ramp down towards a tile's inner edges (never at the image border), so
 *   no seam remains; close to the whole run, not equal to it.
 *
 * runCropped: same-resolution networks with a small, known receptive field (the latent stage):
 * the output is cut into cores that do not overlap, each core runs widened by a halo of at least
 * the receptive radius, and only the core is kept. Every kept pixel saw exactly the inputs it sees
 * in a whole run (zero padding included, at the map's border), so the result equals the whole run
 * up to float rounding.
 *
 * Pure layout functions plus the runners over a tile function.
 */
import { throwIfCancelled } from '../errors.js';
import type { Nchw } from './tensor.js';

export interface Span {
  start: number;
  end: number;
}

/** Tile spans along one axis: `size` and `overlap` are in input units, starts are multiples of `align`. */
export function planSpans(length: number, size: number, overlap: number, align: number): Span[] {
  if (size >= length) return [{ start: 0, end: length }];
  if (overlap >= size) throw new Error(`tile overlap ${overlap} must be smaller than the tile ${size}`);
  const count = Math.ceil((length - overlap) / (size - overlap));
  const spans: Span[] = [];
  for (let i = 0; i < count; i++) {
    // Spread tiles evenly so the last one does not end in a sliver; align starts to the stride.
    const ideal = count === 1 ? 0 : (i * (length - size)) / (count - 1);
    const start = Math.min(Math.round(ideal / align) * align, length - size - ((length - size) % align));
    spans.push({ start, end: Math.min(start + size, length) });
  }
  spans[spans.length - 1].end = length;
  return spans;
}

/** Blend weights along one tile axis of `length` output pixels: ramps of `ramp` pixels at inner edges. */
export function blendRamp(length: number, ramp: number, rampAtStart: boolean, rampAtEnd: boolean): Float32Array {
  const weights = new Float32Array(length).fill(1);
  if (ramp <= 0) return weights;
  for (let i = 0; i < length; i++) {
    let w = 1;
    if (rampAtStart) w = Math.min(w, (i + 0.5) / ramp);
    if (rampAtEnd) w = Math.min(w, (length - i - 0.5) / ramp);
    weights[i] = Math.max(w, 1e-3);
  }
  return weights;
}

/**
 * The smallest tile side (a multiple of `align`, at most `size`) that covers `length` with `overlap`
 * in as few tiles as `size` does. Where tiles join exactly, a wider overlap than asked buys nothing
 * and is computed twice.
 */
export function evenTile(length: number, size: number, overlap: number, align: number): number {
  if (size >= length) return size;
  const count = Math.ceil((length - overlap) / (size - overlap));
  return Math.min(size, Math.ceil((length + (count - 1) * overlap) / count / align) * align);
}

/**
 * Smallest overlap (input pixels, a multiple of `align`) with which runTiled joins tiles exactly for
 * a network of receptive `reach`: each side of a mid-overlap cut keeps `reach`, plus the slack of
 * aligning tile starts and the cut to the stride.
 */
export function exactOverlap(reach: number, align: number): number {
  return Math.ceil((2 * reach + 3 * align) / align) * align;
}

/**
 * Where each span's kept part starts and ends: the middle of its overlaps with its neighbours
 * (aligned), the image's edges at the ends. Throws when a cut lies nearer than `reach` to the edge
 * of a tile it is kept from.
 */
export function cutSpans(spans: readonly Span[], reach: number, align: number): Span[] {
  const cuts = spans.slice(1).map((next, i) => {
    const previous = spans[i];
    const cut = next.start + Math.floor((previous.end - next.start) / 2 / align) * align;
    if (cut - next.start < reach || previous.end - cut < reach)
      throw new Error(
        `tiles [${previous.start}, ${previous.end}) and [${next.start}, ${next.end}) overlap too little ` +
          `for a receptive reach of ${reach}`,
      );
    return cut;
  });
  return spans.map((span, i) => ({ start: i === 0 ? span.start : cuts[i - 1], end: cuts[i] ?? span.end }));
}

export interface TiledRunOptions {
  /** Tile side and overlap in input units. */
  tile: number;
  overlap: number;
  /** Receptive reach of the network in input units: tiles join exactly (see the header) when the overlap allows. */
  reach?: number;
  /** Output size = input size × up / down (encoder 1/8, decoder 8/1). */
  up: number;
  down: number;
  outChannels: number;
  run: (tile: Nchw) => Promise<Nchw>;
  onTile?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export function countTiles(
  height: number,
  width: number,
  o: Pick<TiledRunOptions, 'tile' | 'overlap' | 'down'>,
): number {
  return planSpans(height, o.tile, o.overlap, o.down).length * planSpans(width, o.tile, o.overlap, o.down).length;
}

export async function runTiled(input: Nchw, o: TiledRunOptions): Promise<Nchw> {
  const [n, , h, w] = input.dims;
  const scale = (v: number) => (v * o.up) / o.down;
  const [oh, ow] = [scale(h), scale(w)];
  if (!Number.isInteger(oh) || !Number.isInteger(ow))
    throw new Error(`input ${w}x${h} is not a multiple of the stride ${o.down}`);
  if (o.reach !== undefined && o.overlap >= exactOverlap(o.reach, o.down)) {
    const even = (length: number) => planSpans(length, evenTile(length, o.tile, o.overlap, o.down), o.overlap, o.down);
    return runStitched(input, even(h), even(w), o.reach, o, scale);
  }
  const rows = planSpans(h, o.tile, o.overlap, o.down);
  const cols = planSpans(w, o.tile, o.overlap, o.down);
  const sum = new Float32Array(n * o.outChannels * oh * ow);
  const weightSum = new Float32Array(oh * ow);
  const ramp = scale(o.overlap);
  const total = rows.length * cols.length;
  let done = 0;
  for (const [ri, row] of rows.entries()) {
    for (const [ci, col] of cols.entries()) {
      throwIfCancelled(o.signal, 'the run was cancelled between tiles');
      const out = await o.run(crop(input, row, col));
      const [, oc, th, tw] = out.dims;
      const wy = blendRamp(th, ramp, ri > 0, ri < rows.length - 1);
      const wx = blendRamp(tw, ramp, ci > 0, ci < cols.length - 1);
      const [y0, x0] = [scale(row.start), scale(col.start)];
      for (let y = 0; y < th; y++) {
        for (let x = 0; x < tw; x++) {
          const weight = wy[y] * wx[x];
          const pixel = (y0 + y) * ow + x0 + x;
          weightSum[pixel] += weight;
          for (let b = 0; b < n; b++) {
            for (let ch = 0; ch < oc; ch++)
              sum[(b * oc + ch) * oh * ow + pixel] += weight * out.data[((b * oc + ch) * th + y) * tw + x];
          }
        }
      }
      o.onTile?.(++done, total);
    }
  }
  const plane = oh * ow;
  for (let i = 0; i < sum.length; i++) sum[i] /= weightSum[i % plane];
  return { data: sum, dims: [n, o.outChannels, oh, ow] };
}

/** runTiled's exact join: each tile's output is cut to its kept part and copied into place. */
async function runStitched(
  input: Nchw,
  rows: Span[],
  cols: Span[],
  reach: number,
  o: TiledRunOptions,
  scale: (v: number) => number,
): Promise<Nchw> {
  const [n, , h, w] = input.dims;
  const [oh, ow] = [scale(h), scale(w)];
  const [keptRows, keptCols] = [cutSpans(rows, reach, o.down), cutSpans(cols, reach, o.down)];
  const out = new Float32Array(n * o.outChannels * oh * ow);
  const total = rows.length * cols.length;
  let done = 0;
  for (const [ri, row] of rows.entries()) {
    for (const [ci, col] of cols.entries()) {
      throwIfCancelled(o.signal, 'the run was cancelled between tiles');
      const result = await o.run(crop(input, row, col));
      const [keptRow, keptCol] = [keptRows[ri], keptCols[ci]];
      // The kept part in the tile's output coordinates.
      const [y0, y1] = [scale(keptRow.start - row.start), scale(keptRow.end - row.start)];
      const [x0, x1] = [scale(keptCol.start - col.start), scale(keptCol.end - col.start)];
      const [, oc, th, tw] = result.dims;
      if (oc !== o.outChannels || th !== scale(row.end - row.start) || tw !== scale(col.end - col.start))
        throw new Error(`a tile gave [${result.dims}], expected ${o.outChannels} channels at the tile's output size`);
      for (let plane = 0; plane < n * oc; plane++) {
        for (let y = y0; y < y1; y++) {
          const from = (plane * th + y) * tw;
          out.set(
            result.data.subarray(from + x0, from + x1),
            (plane * oh + scale(row.start) + y) * ow + scale(col.start) + x0,
          );
        }
      }
      o.onTile?.(++done, total);
    }
  }
  return { data: out, dims: [n, o.outChannels, oh, ow] };
}

/** The rows × cols window of every batch item and channel. */
export function crop(t: Nchw, row: Span, col: Span): Nchw {
  const [n, c, h, w] = t.dims;
  const [th, tw] = [row.end - row.start, col.end - col.start];
  const out = new Float32Array(n * c * th * tw);
  for (let b = 0; b < n * c; b++) {
    for (let y = 0; y < th; y++) {
      const from = (b * h + row.start + y) * w + col.start;
      out.set(t.data.subarray(from, from + tw), (b * th + y) * tw);
    }
  }
  return { data: out, dims: [n, c, th, tw] };
}

/** Spans of at most `size` that cover [0, length) without overlapping, as even as possible. */
export function planCores(length: number, size: number): Span[] {
  if (!(size >= 1)) throw new Error(`core size ${size} must be at least 1`);
  const count = Math.ceil(length / size);
  return Array.from({ length: count }, (_, i) => ({
    start: Math.round((i * length) / count),
    end: Math.round(((i + 1) * length) / count),
  }));
}

/** `span` widened by `halo` on each side, clipped to [0, length). */
export function widen(span: Span, halo: number, length: number): Span {
  return { start: Math.max(0, span.start - halo), end: Math.min(length, span.end + halo) };
}

export function countCores(height: number, width: number, size: number): number {
  return planCores(height, size).length * planCores(width, size).length;
}

export interface CroppedRunOptions {
  /** Core side and halo (pixels each side), in the network's (single) resolution. */
  tile: number;
  halo: number;
  outChannels: number;
  run: (tile: Nchw) => Promise<Nchw>;
  onTile?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Runs a same-resolution network core by core with an exact halo (see the header). */
export async function runCropped(input: Nchw, o: CroppedRunOptions): Promise<Nchw> {
  const [n, , h, w] = input.dims;
  const rows = planCores(h, o.tile);
  const cols = planCores(w, o.tile);
  const out = new Float32Array(n * o.outChannels * h * w);
  const total = rows.length * cols.length;
  let done = 0;
  for (const row of rows) {
    for (const col of cols) {
      throwIfCancelled(o.signal, 'the run was cancelled between tiles');
      const [wideRow, wideCol] = [widen(row, o.halo, h), widen(col, o.halo, w)];
      const result = await o.run(crop(input, wideRow, wideCol));
      const [, oc, th, tw] = result.dims;
      if (oc !== o.outChannels || th !== wideRow.end - wideRow.start || tw !== wideCol.end - wideCol.start) {
        throw new Error(
          `a ${wideCol.end - wideCol.start}x${wideRow.end - wideRow.start} tile gave [${result.dims}], ` +
            `expected ${o.outChannels} channels at the same size`,
        );
      }
      const core = crop(
        result,
        { start: row.start - wideRow.start, end: row.end - wideRow.start },
        { start: col.start - wideCol.start, end: col.end - wideCol.start },
      );
      const cw = col.end - col.start;
      for (let b = 0; b < n * oc; b++) {
        for (let y = 0; y < row.end - row.start; y++) {
          out.set(
            core.data.subarray((b * (row.end - row.start) + y) * cw, (b * (row.end - row.start) + y + 1) * cw),
            (b * h + row.start + y) * w + col.start,
          );
        }
      }
      o.onTile?.(++done, total);
    }
  }
  return { data: out, dims: [n, o.outChannels, h, w] };
}
