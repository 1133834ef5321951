/** A float32 NCHW tensor as the executors pass it around. */
export interface Nchw {
  data: Float32Array;
  dims: [number, number, number, number];
  /**
   * Set on a tensor made for one run (pixels just converted, say): the runtime may move `data`'s
   * buffer to its worker instead of copying it, which leaves `data` empty here once the run starts.
   */
  transferable?: boolean;
}

/** The first `channels` channels of every batch item (a KL encoder's mean, out of mean and log-variance). */
export function leadingChannels(t: Nchw, channels: number): Nchw {
  const [n, c, h, w] = t.dims;
  if (c === channels) return t;
  const out = new Float32Array(n * channels * h * w);
  for (let b = 0; b < n; b++) out.set(t.data.subarray(b * c * h * w, (b * c + channels) * h * w), b * channels * h * w);
  return { data: out, dims: [n, channels, h, w] };
}

/** Splits a batch into single items, and joins them back. */
export function splitBatch(t: Nchw): Nchw[] {
  const [n, c, h, w] = t.dims;
  const size = c * h * w;
  return Array.from({ length: n }, (_, b) => ({ data: t.data.slice(b * size, (b + 1) * size), dims: [1, c, h, w] }));
}

export function joinBatch(items: Nchw[]): Nchw {
  const [, c, h, w] = items[0].dims;
  const size = c * h * w;
  const out = new Float32Array(items.length * size);
  for (const [b, item] of items.entries()) out.set(item.data, b * size);
  return { data: out, dims: [items.length, c, h, w] };
}

/** Element types the pipeline's networks take or give (token ids, timesteps, half-precision exports). */
export type TensorType = 'float32' | 'float16' | 'int64' | 'int32';

export interface TensorDataOf {
  float32: Float32Array;
  /** IEEE half bits. */
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
}

/** How the runtime may treat an input's data when it crosses to its worker thread (default: copied). */
export interface TensorUse {
  /** Made for one run: its buffer may move to the worker instead of being copied (left empty here). */
  transferable?: boolean;
  /**
   * The same values on every run while `data` lives (a denoising loop's prompt embeddings): sent once and
   * kept in the worker, later runs name it. Its values must not change.
   */
  resident?: boolean;
}

/** A tensor of any rank and element type, as the text encoders and the UNet take and give them. */
export type Tensor = { [T in TensorType]: { type: T; data: TensorDataOf[T]; dims: number[] } & TensorUse }[TensorType];

/** A float32 tensor of any rank. */
export function float32Tensor(data: Float32Array, dims: number[]): Tensor {
  return { type: 'float32', data, dims };
}
