/**
 * Two ways to run a network in tiles.
 *
 * runTiled: overlapping tiles with linear blending. Tiles are laid out in input coordinates, aligned to the
 * network's stride so every tile maps onto whole output pixels; where tiles overlap, each output
 * pixel is a weighted mean with weights that ramp down towards a tile's inner edges (never at the
 * image border), so no seam remains. For networks whose receptive field is larger than any
 * affordable overlap (the image-resolution stages): close to the whole run, not equal to it.
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

export interface TiledRunOptions {
  /** Tile side and overlap in input units. */
  tile: number;
  overlap: number;
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
          `a ${wideCol.end - wideCol.start}x${wideRow.end - wideRow.start} tile gave [${result.dims}], expected ${o.outChannels} channels at the same size`,
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
