/**
 * Calibration of a pipeline's denoise stage (its UNet): peak memory of the network at a few latent
 * sizes and batches, one fresh process each (src/cli/calibrate.ts), fitted to
 *
 *   peak = fixed + batch x (bytesPerLatentPixel x P + attentionBytesPerLatentPixelSquared x P^2)
 *
 * (P = latent pixels). The P^2 term is fitted only from three or more latent sizes and kept only when
 * positive (an export with unfused attention); otherwise the line is linear. As for the VAEs the
 * activation terms are then scaled by the arena margin and further until no sample is above them.
 *
 * The network is run on inputs of the types and shapes its session declares (`describe`): batch on
 * every input's first symbolic dim, the latent on `sample`'s spatial dims, CLIP's 77 tokens on
 * `encoder_hidden_states`' sequence; a symbolic dim it cannot place is an error that names it. The
 * values are a fixed pattern: the memory of these networks does not depend on them.
 */
import type { OnnxRuntime, ValueSignature } from '../gpu/onnx-runtime.js';
import type { Tensor } from '../gpu/tensor.js';
import type { ComputeDType, FitStats, ModelStageProfiles, StageProfile } from '../routing/memory-profile.js';
import { stageBytes } from '../routing/stage-estimator.js';
import { bootRuntime, type CalibrationOptions } from './calibrate.js';
import type { PeakMemoryProbe } from './peak-memory.js';

/** Latent sides and network batches measured by default (256 to 768 px images at a factor of 8). */
export const DEFAULT_LATENT_SIZES = [32, 64, 96];
export const DEFAULT_BATCHES = [1, 2];
/** Tokens of a CLIP text embedding, the cross-attention context the UNet is measured with. */
const TEXT_TOKENS = 77;

export interface StageMeasurement {
  model: string;
  operation: 'denoise';
  /** Side of the latent (square). */
  latent: number;
  batch: number;
  /** Element type of the network's `sample` input: the dtype the profile holds for. */
  dtype: ComputeDType;
  /** Shapes the network was run on, by input name. */
  inputs: Record<string, number[]>;
  peakBytes: number;
  baselineBytes: number;
  exact: boolean;
  probe: PeakMemoryProbe['kind'];
  provider: string;
  runs: number;
  seconds: number;
}

function dtypeOf(type: string): ComputeDType {
  if (type === 'float32' || type === 'float16') return type;
  throw new Error(`the UNet's sample input is ${type}; calibration measures float32 or float16 exports`);
}

function dimsOf(input: ValueSignature, latent: number, batch: number): number[] {
  return input.shape.map((dim, axis) => {
    if (typeof dim === 'number' && dim > 0) return dim;
    if (axis === 0) return batch;
    if (input.name === 'sample' && (axis === 2 || axis === 3)) return latent;
    if (input.name === 'encoder_hidden_states' && axis === 1) return TEXT_TOKENS;
    throw new Error(
      `cannot size input ${input.name} [${input.shape.join(', ')}]: its dim ${axis} (${dim}) is symbolic ` +
        'and is not the batch, the latent or the text sequence',
    );
  });
}

function filled(type: string, dims: number[]): Tensor {
  const length = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case 'float32': {
      const data = new Float32Array(length);
      for (let i = 0; i < length; i++) data[i] = ((i * 7919) % 255) / 255 - 0.5;
      return { type, data, dims };
    }
    case 'float16':
      return { type, data: new Uint16Array(length).fill(0x3800), dims }; // 0.5
    case 'int64':
      return { type, data: new BigInt64Array(length).fill(500n), dims };
    case 'int32':
      return { type, data: new Int32Array(length).fill(500), dims };
    default:
      throw new Error(`cannot make a ${type} input for calibration`);
  }
}

/** Measures the UNet at `latent` x `latent` and `batch` in this (fresh) process, session creation included. */
export async function measureDenoiseOnce(
  runtime: OnnxRuntime,
  model: string,
  unetPath: string,
  latent: number,
  batch: number,
  probe: PeakMemoryProbe,
  runs = 2,
): Promise<StageMeasurement> {
  if (!Number.isInteger(latent) || latent <= 0) throw new RangeError(`latent ${latent} must be a positive integer`);
  if (!Number.isInteger(batch) || batch <= 0) throw new RangeError(`batch ${batch} must be a positive integer`);
  await bootRuntime(runtime);
  const baselineBytes = probe.start();
  const started = performance.now();
  const key = `calibrate/${model}/unet`;
  const signature = await runtime.describe(key, unetPath);
  const sample = signature.inputs.find((i) => i.name === 'sample');
  if (sample?.shape.length !== 4)
    throw new Error(`${unetPath} has no 4-D input named sample (inputs: ${signature.inputs.map((i) => i.name)})`);
  const inputs = Object.fromEntries(
    signature.inputs.map((input) => [input.name, filled(input.type, dimsOf(input, latent, batch))]),
  );
  const outputs = signature.outputs.map((o) => o.name);
  for (let i = 0; i < runs; i++) await runtime.runTensors(key, unetPath, inputs, outputs);
  const seconds = (performance.now() - started) / 1000;
  return {
    model,
    operation: 'denoise',
    latent,
    batch,
    dtype: dtypeOf(sample.type),
    inputs: Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name, t.dims])),
    peakBytes: probe.peakSinceStart(),
    baselineBytes,
    exact: probe.exact,
    probe: probe.kind,
    provider: runtime.choice.provider,
    runs,
    seconds,
  };
}

interface Sample {
  pixels: number;
  batch: number;
  bytes: number;
}

/** Relative least squares of bytes = c0 + c1 x f1 + c2 x f2 (features per sample); null when singular. */
function leastSquares(samples: readonly Sample[], features: ((s: Sample) => number)[]): number[] | null {
  const n = features.length + 1;
  const a = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  for (const s of samples) {
    const x = [1, ...features.map((f) => f(s))];
    const w = 1 / (s.bytes * s.bytes);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) a[i][j] += w * x[i] * x[j];
      a[i][n] += w * x[i] * s.bytes;
    }
  }
  // Gaussian elimination with partial pivoting.
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r][col]) > Math.abs(a[pivot][col])) pivot = r;
    if (Math.abs(a[pivot][col]) < 1e-300) return null;
    [a[col], a[pivot]] = [a[pivot], a[col]];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r][col] / a[col][col];
      for (let c = col; c <= n; c++) a[r][c] -= f * a[col][c];
    }
  }
  return a.map((row, i) => row[n] / row[i]);
}

function stageFitStats(profile: StageProfile, samples: readonly Sample[]): FitStats {
  let sum = 0;
  let under = 0;
  let over = 0;
  for (const s of samples) {
    const rel = (stageBytes(profile, s.pixels, s.batch, profile.dtype) - s.bytes) / s.bytes;
    sum += Math.abs(rel);
    under = Math.max(under, -rel);
    over = Math.max(over, rel);
  }
  return { samples: samples.length, mape: sum / samples.length, maxUnderestimate: under, maxOverestimate: over };
}

/**
 * Fits fixed + per latent pixel (+ per latent pixel squared) to the samples; throws RangeError when
 * they cannot give a line (fewer than two distinct latent sizes x batches, or no growth).
 */
export function fitStage(
  measurements: readonly StageMeasurement[],
  options: { id: string; margin: number; weightBytes: number },
): Omit<StageProfile, 'source'> {
  const samples = measurements.map((m) => ({ pixels: m.latent * m.latent, batch: m.batch, bytes: m.peakBytes }));
  for (const s of samples)
    if (!(s.bytes > 0)) throw new RangeError(`a measured peak of ${s.bytes} bytes cannot be fitted`);
  if (new Set(samples.map((s) => s.pixels * s.batch)).size < 2)
    throw new RangeError('fitting the denoise stage needs samples at two or more latent sizes x batches');
  const dtypes = new Set(measurements.map((m) => m.dtype));
  if (dtypes.size !== 1) throw new RangeError(`measurements at different dtypes: ${[...dtypes].join(', ')}`);
  const linear = (s: Sample) => s.pixels * s.batch;
  const squared = (s: Sample) => s.pixels * s.pixels * s.batch;
  let [fixed, perPixel, perSquared] = [0, 0, 0];
  const quadratic = new Set(samples.map((s) => s.pixels)).size >= 3 ? leastSquares(samples, [linear, squared]) : null;
  if (quadratic && quadratic[0] >= 0 && quadratic[1] > 0 && quadratic[2] > 0) [fixed, perPixel, perSquared] = quadratic;
  else {
    const line = leastSquares(samples, [linear]);
    if (!line || !(line[1] > 0))
      throw new RangeError('fitted bytes per latent pixel is not positive: memory does not grow in these samples');
    // A negative intercept: through the origin, at the steepest sample (the scaling below then keeps it).
    [fixed, perPixel] = line[0] >= 0 ? line : [0, samples.reduce((m, s) => Math.max(m, s.bytes / linear(s)), 0)];
  }
  // The arena margin on the activation terms, raised until no sample is above the curve.
  let scale = options.margin;
  for (const s of samples)
    scale = Math.max(scale, (s.bytes - fixed) / (perPixel * linear(s) + perSquared * squared(s)));
  const fixedBytes = Math.round(fixed);
  const profile: Omit<StageProfile, 'source'> = {
    id: options.id,
    fixedBytes,
    weightBytes: Math.min(fixedBytes, options.weightBytes),
    bytesPerBatchItem: 0,
    bytesPerLatentPixel: perPixel * scale,
    attentionBytesPerLatentPixelSquared: perSquared * scale,
    dtype: measurements[0].dtype,
    calibrated: true,
  };
  profile.fit = stageFitStats({ ...profile, source: '' }, samples);
  return profile;
}

/**
 * `base` with its denoise profile replaced by the fit to `measurements` (at the export's dtype, which
 * the measurements carry); the text encoders stay as they were.
 */
export function fitStageCalibration(
  base: ModelStageProfiles,
  measurements: readonly StageMeasurement[],
  options: Omit<CalibrationOptions, 'dtype'>,
): ModelStageProfiles {
  if (!(options.margin >= 1)) throw new RangeError(`margin must be >= 1, got ${options.margin}`);
  const fitted = fitStage(measurements, {
    id: `${base.model}/denoise`,
    margin: options.margin,
    weightBytes: base.denoise.weightBytes,
  });
  const date = (options.date ?? new Date()).toISOString();
  const sizes = [...new Set(measurements.map((m) => m.latent))].sort((a, b) => a - b);
  const batches = [...new Set(measurements.map((m) => m.batch))].sort((a, b) => a - b);
  const denoise: StageProfile = {
    ...fitted,
    source:
      `calibrated on ${options.device} at latents ${sizes.join(', ')} x batch ${batches.join(', ')} (${date}): ` +
      `${fitted.attentionBytesPerLatentPixelSquared > 0 ? 'quadratic' : 'linear'} fit, activation terms ` +
      `x${options.margin} or more for the allocator's step growth`,
  };
  return { ...structuredClone(base), denoise };
}
