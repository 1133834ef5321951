/**
 * Calibration: measure a model's peak memory at several sizes on the local executor and fit its
 * memory profile (`latentgate calibrate`, src/cli/calibrate.ts runs one fresh process per size).
 *
 * What is measured per size (see peak-memory.ts for how):
 * - `whole`: one encode/decode of a size x size image in one piece, session creation included
 *   (the profile's fixed part then covers the session, weights and runtime buffers);
 * - `latent`: for networks split at latent resolution (TAE), the latent-resolution stage alone on
 *   the latent map of an image of the given side, as a tiled run with 512 px tiles runs it (in
 *   tiles with whole-map GroupNorm statistics where the network has GroupNorm branches, see
 *   LocalExecutor.runLatentStage). It only runs on its own in tiled runs, i.e. for
 *   large images, so it is measured at large sizes (default 1024, 2048 and 4096 px: up to the
 *   default MAX_IMAGE_PIXELS, so the fit is not extrapolated; see CPU_ARENA_MARGIN for why that
 *   matters).
 * Each measurement runs the network twice and keeps the peak over both, so growth that shows only
 * on a second run (allocator planning) is included.
 *
 * The input values are a deterministic pattern in [0, 1]: the memory of a convolutional network
 * does not depend on the pixel values.
 */
import { hostname } from 'node:os';
import type { LocalExecutor } from '../gpu/local-executor.js';
import { identityGraph } from '../gpu/onnx-builder.js';
import type { OnnxRuntime } from '../gpu/onnx-runtime.js';
import { type ModelDefinition, networkFor, type Operation } from '../models/model.js';
import {
  COMPUTE_BYTES_PER_ELEMENT,
  type ComputeDType,
  type MemoryProfile,
  type ModelMemoryProfiles,
} from '../routing/memory-profile.js';
import { fitProfile, fitStats, type MeasuredSample } from './fit.js';
import type { PeakMemoryProbe } from './peak-memory.js';

export type CalibrationStage = 'whole' | 'latent';

/** Image sides whose latent maps the latent stage is measured at, by default. */
export const DEFAULT_STAGE_SIZES = [1024, 2048, 4096];
export const DEFAULT_SIZES = [256, 512, 768];

/**
 * onnxruntime's CPU arena grows in doubling steps, so the measured peak is a step function of the
 * size and a straight line through a few sizes under-estimates others (by 17% at 1024 px for taef2
 * fitted to 256..768 px). The fitted bytes per pixel x1.25 covered every size measured, and the
 * stored line is raised further where a sample is still above it. The measurements:
 * docs/memory-model.md.
 */
export const CPU_ARENA_MARGIN = 1.25;

/** Image tile side the latent stage is measured with (the TAE profiles' default tile). */
export const CALIBRATION_TILE = 512;

export interface CalibrationMeasurement {
  model: string;
  operation: Operation;
  stage: CalibrationStage;
  /** Side of the (equivalent) image in pixels. */
  size: number;
  batch: number;
  /** Shape of the tensor the network was run on. */
  inputDims: [number, number, number, number];
  /** Peak bytes above the baseline over the runs. */
  peakBytes: number;
  baselineBytes: number;
  /** False when the probe could not reset its high-water mark (then peakBytes is an upper bound). */
  exact: boolean;
  probe: PeakMemoryProbe['kind'];
  provider: string;
  runs: number;
  seconds: number;
}

function patterned(length: number): Float32Array {
  const data = new Float32Array(length);
  for (let i = 0; i < length; i++) data[i] = ((i * 7919) % 255) / 255;
  return data;
}

/**
 * Runs a 1x1 identity convolution so the runtime is up (its worker thread started, onnxruntime
 * loaded) before a measurement starts: that memory belongs to the process, not to any run.
 */
export async function bootRuntime(runtime: OnnxRuntime): Promise<void> {
  await runtime.run('latentgate/boot', identityGraph('boot'), 'x', 'y', {
    data: new Float32Array([1]),
    dims: [1, 1, 1, 1],
  });
}

/** Measures one size of one stage in this process. The process should be fresh (see peak-memory.ts). */
export async function measureOnce(
  executor: LocalExecutor,
  model: ModelDefinition,
  operation: Operation,
  stage: CalibrationStage,
  size: number,
  probe: PeakMemoryProbe,
  runs = 2,
): Promise<CalibrationMeasurement> {
  const network = networkFor(model, operation);
  if (!network) throw new Error(`model "${model.id}" has no ${operation} network here`);
  const f = model.downscaleFactor;
  if (!Number.isInteger(size) || size <= 0 || size % f !== 0)
    throw new RangeError(`size ${size} must be a positive multiple of ${f}`);
  let inputDims: [number, number, number, number];
  let run: (input: Float32Array) => Promise<unknown>;
  if (stage === 'whole') {
    inputDims = operation === 'encode' ? [1, 3, size, size] : [1, model.latentChannels, size / f, size / f];
    run = (data) => executor.run(model, operation, { data, dims: inputDims }, undefined);
  } else {
    const stages = network.stages;
    if (!stages) throw new Error(`model "${model.id}" ${operation} has no latent-resolution stage`);
    const channels = operation === 'encode' ? stages.featureChannels : model.latentChannels;
    inputDims = [1, channels, size / f, size / f];
    // Exactly as a tiled run does it (same sessions), with the default tile.
    run = (data) =>
      executor.runLatentStage(model, operation, { data, dims: inputDims }, { tile: CALIBRATION_TILE, overlap: 0 });
  }
  await bootRuntime(executor.runtime);
  const baselineBytes = probe.start();
  const started = performance.now();
  const input = patterned(inputDims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < runs; i++) await run(input);
  const seconds = (performance.now() - started) / 1000;
  return {
    model: model.id,
    operation,
    stage,
    size,
    batch: 1,
    inputDims,
    peakBytes: probe.peakSinceStart(),
    baselineBytes,
    exact: probe.exact,
    probe: probe.kind,
    provider: executor.provider,
    runs,
    seconds,
  };
}

export interface CalibrationOptions {
  /** dtype the measurements ran at (float32 on CPU). */
  dtype: ComputeDType;
  /** Multiplier on the fitted bytes per pixel (CPU_ARENA_MARGIN on CPU). */
  margin: number;
  /** Written into each profile's `source`. */
  device: string;
  date?: Date;
}

function samplesOf(
  measurements: readonly CalibrationMeasurement[],
  operation: Operation,
  stage: CalibrationStage,
): MeasuredSample[] {
  return measurements
    .filter((m) => m.operation === operation && m.stage === stage)
    .map((m) => ({ pixels: m.size * m.size, batch: m.batch, bytes: m.peakBytes }));
}

/** The fitted slope x margin, raised until no sample is above the line. */
function safeSlope(
  fitted: Pick<MemoryProfile, 'fixedBytes' | 'bytesPerPixel'>,
  samples: readonly MeasuredSample[],
  margin: number,
): number {
  let slope = fitted.bytesPerPixel * margin;
  for (const s of samples) slope = Math.max(slope, (s.bytes - fitted.fixedBytes) / (s.pixels * s.batch));
  return slope;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * New profiles for a model: `base` (its current profiles) with every operation that has `whole`
 * measurements replaced by a calibrated fit, its latent stage fitted from the `latent`
 * measurements. Operations without measurements stay as they were.
 */
export function fitCalibration(
  base: ModelMemoryProfiles,
  measurements: readonly CalibrationMeasurement[],
  options: CalibrationOptions,
): ModelMemoryProfiles {
  if (!(options.margin >= 1)) throw new RangeError(`margin must be >= 1, got ${options.margin}`);
  const out: ModelMemoryProfiles = structuredClone(base);
  const date = (options.date ?? new Date()).toISOString();
  for (const operation of ['encode', 'decode'] as const) {
    const whole = samplesOf(measurements, operation, 'whole');
    if (whole.length === 0) continue;
    const sizes = [
      ...new Set(measurements.filter((m) => m.operation === operation && m.stage === 'whole').map((m) => m.size)),
    ].sort((a, b) => a - b);
    const fitted = fitProfile(whole, { id: `${base.model}/${operation}`, dtype: options.dtype });
    const profile: MemoryProfile = {
      ...fitted,
      bytesPerPixel: safeSlope(fitted, whole, options.margin),
      source:
        `calibrated on ${options.device} at ${sizes.join(', ')} px (${date}): ` +
        `peak ${mib(fitted.fixedBytes)} + ${fitted.bytesPerPixel.toFixed(1)} B/px fitted, ` +
        `bytes per pixel x${options.margin} for the allocator's step growth`,
    };
    const latent = samplesOf(measurements, operation, 'latent');
    const ratio = COMPUTE_BYTES_PER_ELEMENT[options.dtype] / COMPUTE_BYTES_PER_ELEMENT[base[operation].dtype];
    const previous = base[operation].latentStage;
    // The per-tile part of a tiled latent stage is kept from the base profile (restated at the
    // measured dtype): the measurements run one tile size, so their intercept already holds it
    // once at 512 px tiles, and keeping it on top errs high, never low.
    const tilePart =
      previous?.tileBytesPerPixel !== undefined ? { tileBytesPerPixel: previous.tileBytesPerPixel * ratio } : {};
    if (latent.length > 0) {
      const stage = fitProfile(latent, { dtype: options.dtype });
      profile.latentStage = {
        fixedBytes: stage.fixedBytes,
        bytesPerPixel: safeSlope(stage, latent, options.margin),
        ...tilePart,
      };
    } else if (previous) {
      // Not measured: keep the previous stage estimate, restated at the measured dtype.
      profile.latentStage = {
        fixedBytes: previous.fixedBytes,
        bytesPerPixel: previous.bytesPerPixel * ratio,
        ...tilePart,
      };
    }
    profile.fit = fitStats(profile, whole);
    out[operation] = profile;
  }
  return out;
}

/** Host name and device, for the profile's `source`. */
export function deviceLabel(provider: string): string {
  return `${hostname()} (${provider})`;
}
