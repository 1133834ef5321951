/**
 * Feeds cast to what a session declares. Exporters disagree on the pipeline networks' inputs (optimum
 * has exported the UNet `timestep` as int64 [batch], float32 [batch] and a float32 scalar; token ids as
 * int32 or int64; some exports run in float16), so values are given as plain numbers or float32 and
 * become the declared element type and rank here, as optimum's ORT pipelines do with numpy:
 * `np.array([t], dtype=timestep_dtype)` (a float to an integer type truncates toward zero).
 */
import { floatToHalfBits, halfBitsToFloat } from '../tensors/dtype.js';
import type { NetworkSource, OnnxRuntime, ValueSignature } from './onnx-runtime.js';
import type { Tensor } from './tensor.js';

type Float32Tensor = Extract<Tensor, { type: 'float32' }>;

/** A value before the cast: float32 data with its logical dims. */
export interface FeedValue {
  data: Float32Array | Int32Array;
  dims: number[];
  /**
   * 'constant': the same values on every run while `data` lives (a denoising loop's prompt embeddings):
   * cast once and kept in the runtime's worker. 'once': made for this run; its buffer may move to the
   * worker. Default: cast and copied on every run.
   */
  use?: 'constant' | 'once';
}

/** Casts of constant feeds, by their data and the declared input (describe's signatures are cached objects). */
const constantCasts = new WeakMap<object, WeakMap<ValueSignature, { of: string; tensor: Tensor }>>();

/**
 * `value` as the declared input: its element type, and for rank mismatches of a per-batch scalar
 * (timestep) the declared rank: rank 0 takes the single value, rank 1 a value per batch item.
 */
export function castToSignature(signature: ValueSignature, value: FeedValue, batch: number): Tensor {
  let { data, dims } = value;
  const rank = signature.shape.length;
  if (rank !== dims.length) {
    const perBatchScalar = dims.length <= 1 && elementsOf(dims) === 1;
    if (!perBatchScalar || rank > 1)
      throw new Error(
        `input ${signature.name} is declared with rank ${rank} [${signature.shape}]; the pipeline has [${dims}]`,
      );
    if (rank === 0) dims = [];
    else {
      data = data instanceof Int32Array ? new Int32Array(batch).fill(data[0]) : new Float32Array(batch).fill(data[0]);
      dims = [batch];
    }
  }
  switch (signature.type) {
    case 'float32':
      return { type: 'float32', data: data instanceof Float32Array ? data : Float32Array.from(data), dims };
    case 'float16':
      return { type: 'float16', data: Uint16Array.from(data, (v) => floatToHalfBits(v)), dims };
    case 'int64':
      return { type: 'int64', data: BigInt64Array.from(data, (v) => BigInt(Math.trunc(v))), dims };
    case 'int32':
      return { type: 'int32', data: data instanceof Int32Array ? data : Int32Array.from(data, Math.trunc), dims };
    default:
      throw new Error(`input ${signature.name} is ${signature.type}; latentgate feeds float32, float16, int64, int32`);
  }
}

/** An output as float32, whatever the network computed it in. */
export function toFloat32(tensor: Tensor): Float32Array {
  switch (tensor.type) {
    case 'float32':
      return tensor.data;
    case 'float16':
      return Float32Array.from(tensor.data, halfBitsToFloat);
    case 'int64':
      return Float32Array.from(tensor.data, Number);
    case 'int32':
      return Float32Array.from(tensor.data);
  }
}

function elementsOf(dims: number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** `castToSignature` with the feed's use: a constant's cast is made once and marked resident. */
function castFeed(signature: ValueSignature, value: FeedValue, batch: number): Tensor {
  if (value.use === 'once') return { ...castToSignature(signature, value, batch), transferable: true };
  if (value.use !== 'constant') return castToSignature(signature, value, batch);
  let casts = constantCasts.get(value.data);
  if (!casts) {
    casts = new WeakMap();
    constantCasts.set(value.data, casts);
  }
  // The same data under other dims or another batch casts to another tensor.
  const of = `${value.dims}/${batch}`;
  let cast = casts.get(signature);
  if (cast?.of !== of) {
    cast = { of, tensor: { ...castToSignature(signature, value, batch), resident: true } };
    casts.set(signature, cast);
  }
  return cast.tensor;
}

/**
 * Runs a pipeline network (text encoder, UNet) on the feeds its session declares, cast to the declared
 * types; feeds it does not declare are not sent (an SD UNet has no `text_embeds`). Outputs come back
 * as float32 with their dims.
 */
export async function runDeclared(
  runtime: Pick<OnnxRuntime, 'describe' | 'runTensors'>,
  key: string,
  source: NetworkSource,
  feeds: Record<string, FeedValue>,
  outputNames: readonly string[],
  batch: number,
): Promise<Record<string, Float32Tensor>> {
  const signature = await runtime.describe(key, source);
  const inputs: Record<string, Tensor> = {};
  for (const declared of signature.inputs) {
    const value = feeds[declared.name];
    if (!value)
      throw new Error(
        `network ${key} takes input "${declared.name}", which this pipeline does not provide ` +
          `(it provides ${Object.keys(feeds).join(', ')})`,
      );
    inputs[declared.name] = castFeed(declared, value, batch);
  }
  const outputs = await runtime.runTensors(key, source, inputs, outputNames);
  return Object.fromEntries(
    Object.entries(outputs).map(([name, tensor]) => [
      name,
      { type: 'float32', data: toFloat32(tensor), dims: tensor.dims },
    ]),
  );
}
