/**
 * Peak device memory estimator for VAE encode/decode. Pure: no I/O, no device queries.
 *
 * Model
 * -----
 *   peak(dtype) = otherFixed + weightBytes * r + bytesPerPixel * r * (pixels * batch)
 *   r           = bytesPerElement(dtype) / bytesPerElement(profile.dtype)
 *
 * Why linear in pixels: every layer of these autoencoders is a convolution, a GroupNorm, a
 * pointwise op or (AutoencoderKL only) one attention block at 1/8 resolution. Convolution and
 * normalisation activations are C x H x W, so the tensors alive at the peak (which, for both
 * encode and decode, is in the full-resolution 128..256-channel layers) are proportional to the
 * pixel count times the batch. The attention block is O(tokens) too as long as the runtime uses a
 * memory-efficient kernel (PyTorch SDPA flash / mem-efficient); a math-fallback attention would be
 * O(tokens^2) and is NOT modelled. The measured CSV agrees: sd15 encode costs 2889, 2866 and
 * 2860 B per extra pixel over 256->512->1024->2048 px on a 24 GiB card (constant slope).
 *
 * The fixed part is what does not grow with the image: the weights (about 83.7M parameters for the
 * SD/SDXL/FLUX.1 AutoencoderKL, an assumed round figure, i.e. ~160 MiB at fp16) plus small runtime
 * buffers. The fitted intercepts match that: sd15 ~0.15 GiB (fp16 weights),
 * sdxl ~0.33 GiB (≈ fp32 weights, see below). The CUDA context itself (~0.3-0.5 GiB, allocated
 * outside the caching allocator) is NOT in the measured numbers; the router must keep it out of
 * the budget it passes in.
 *
 * dtype: the profiles are stated at the dtype they were measured/derived at (fp16 for everything
 * shipped: the CSV is "fp16 VAE encode on CUDA"). Activations scale with bytes per element
 * (float32 = 2x float16; bfloat16 = float16). Of the fixed part only `weightBytes` scales with
 * dtype; the rest (allocator/cuDNN workspace, runtime buffers) is taken as dtype-independent.
 * fitProfile cannot tell the two apart, so it treats the whole intercept as weights unless told
 * otherwise (conservative when going to a wider dtype).
 *
 * Tiled runs: tiles run one after another, so the peak is one tile's peak (the tile is the image
 * clipped to tile x tile px, same batch; the overlap changes the number of tiles, not the size of
 * one, so it does not enter the peak) plus what stays resident for the whole image during the
 * run (see accumulationBytes): the whole input tensor, a float32 output accumulator and a float32
 * blend-weight map. When the image fits in one tile the run IS a whole run (no accumulators),
 * which is what the CSV shows (tiled == whole at or below the tile size).
 * Networks split at latent resolution (the TAE family, see src/models/tae-loader.ts) also need
 * `latentStage` bytes. They are added, not maxed: on CPU every network stage is its own
 * onnxruntime session whose arena keeps its high-water mark, so the tile stage's memory is still
 * held while the latent stage runs (measured: taef2 2048x2048 tiled encode, tiles 366 MiB, then
 * +260 MiB for the latent stage). Without GroupNorm branches that part runs once on the whole map
 * and grows with the WHOLE image (`bytesPerPixel`). With them (taef2) it runs in tiles with
 * whole-map statistics (src/gpu/latent-stage.ts): what grows with the whole image is only a few
 * 64-channel feature maps (`bytesPerPixel`, small), plus one latent tile's activations per session
 * (`tileBytesPerPixel`, per TILE pixel). Before, taef2's whole-map stage widened the latent map to
 * 256 channels (~80 B per image pixel at float32 on CPU, ~1.3 GiB at 4096x4096) whatever the tile.
 *
 * Evidence and caveats from the CSV (/shared/fixtures/vram/vae-encode-measured.csv):
 * - Bytes, not percent, are card-independent for sd15: the same size costs the same bytes on
 *   RTX 4090 / 3090 / 3080 within 1%, EXCEPT sd15 2048x2048 on the 10 GiB 3080 (8.67 GiB vs
 *   11.3 GiB on the 24 GiB cards): on a tight card PyTorch/cuDNN pick leaner algorithms. The
 *   estimate is the unconstrained peak, so it over-estimates there (safe direction, +26%).
 * - sdxl on the RTX 4090 (Ada) uses ~15% fewer bytes than on the 3090/3080 (Ampere) at every size
 *   from 512 px up, so for sdxl bytes DO depend on the GPU generation; the shipped profile is a
 *   fit over all three cards and errs by -15%..+13% per row (see the test for the numbers).
 * - sdxl is ~1.44x sd15 per pixel and its intercept ≈ fp32 weights although the architecture is
 *   the same; this is consistent with the benchmark upcasting the SDXL VAE (diffusers' SDXL VAE
 *   config has force_upcast because it overflows in fp16). We still state the profile as fp16
 *   (as the CSV describes it); scaling it to float32 therefore over-estimates.
 * - sdxl grows super-linearly from 1024 to 2048 px (+2 GiB on both 4090 and 3090 over the line).
 *
 * Decode / flux1 derivations (uncalibrated until measured with `latentgate calibrate`):
 * - Decode: the AutoencoderKL decoder runs its last up blocks at full resolution with 128-256
 *   channels (the upsampler of the 256-channel block interpolates to full resolution before the
 *   128-channel block), with three resnets per block instead of the encoder's two, so its
 *   full-resolution working set is about twice the encoder's. InvokeAI's experimentally determined
 *   estimator (invoke-ai/InvokeAI, invokeai/backend/util/vae_working_memory.py,
 *   estimate_vae_working_memory_sd15_sdxl: working = pixels x element_size x 1100 for encode,
 *   x 2200 for decode, "Encoding uses ~45% the working memory as decoding", same constants for
 *   SD1, SDXL, SD3 and FLUX) supports the 2x. So decode = encode fit with bytesPerPixel x 2 and
 *   the same fixed part (the whole VAE is resident either way).
 * - flux1: same AutoencoderKL trunk (block channels 128/256/512/512, mid-block attention) with
 *   16 instead of 4 latent channels, which only touches the 1/8-resolution layers; InvokeAI also
 *   uses its SD constants for FLUX. So flux1 = the sd15 fp16 fit (bf16 has the same element size).
 * - Tiny autoencoders (TAESD family): see taeProfiles below.
 */
import type { Operation } from '../models/model.js';
import type { FloatDType } from '../tensors/dtype.js';

export type { Operation };
export type ComputeDType = FloatDType;

export const COMPUTE_BYTES_PER_ELEMENT: Record<ComputeDType, number> = { float32: 4, float16: 2, bfloat16: 2 };

/** Quality of a fit, as fractions (0.05 = 5%); JSON-serialisable. */
export interface FitStats {
  samples: number;
  /** Mean absolute percentage error over the samples, as a fraction. */
  mape: number;
  /** Largest (measured - estimate) / measured over the samples; 0 when never under. */
  maxUnderestimate: number;
  /** Largest (estimate - measured) / measured over the samples; 0 when never over. */
  maxOverestimate: number;
}

/** Peak-memory profile of one network (encoder or decoder). Plain data: safe to JSON.stringify. */
export interface MemoryProfile {
  id: string;
  /** Bytes that do not grow with the image, at `dtype` (includes `weightBytes`). */
  fixedBytes: number;
  /** The part of fixedBytes that is weights and scales with dtype; 0 <= weightBytes <= fixedBytes. */
  weightBytes: number;
  /** Peak bytes per image pixel (per batch item) at `dtype`. */
  bytesPerPixel: number;
  /** dtype of weights and activations the numbers hold for. */
  dtype: ComputeDType;
  /**
   * Tiled runs of a network split at latent resolution: the part run once on the whole map
   * (bytes per image pixel per batch item at `dtype`, plus its own fixed bytes), held on top of
   * one tile's peak. Absent when a tiled run tiles the whole network (AutoencoderKL).
   */
  latentStage?: {
    fixedBytes: number;
    /** Per image pixel (per batch item): what the stage holds for the whole map. */
    bytesPerPixel: number;
    /** Per tile pixel (per batch item), when the stage itself runs in tiles (its sessions' tile activations). */
    tileBytesPerPixel?: number;
  };
  /** True only when fitted to measurements of this network. */
  calibrated: boolean;
  /** Where the numbers come from (measurement file, derivation). */
  source: string;
  fit?: FitStats;
}

export interface ModelMemoryProfiles {
  /** Model or family id the profiles describe. */
  model: string;
  encode: MemoryProfile;
  decode: MemoryProfile;
  /** Default tile side in pixels (sd15 512, sdxl/flux1 1024). */
  defaultTile: number;
  latentChannels: number;
  downscaleFactor: number;
  /** Channels the encoder emits (2 x latent for a KL encoder: mean and log-variance). */
  encoderOutputChannels: number;
}

export interface EstimateInput {
  operation: Operation;
  /** Image size in pixels (for decode: the decoded image's size). */
  width: number;
  height: number;
  batch: number;
  dtype: ComputeDType;
  /** Tile side in pixels; absent = whole image in one run. */
  tile?: number;
}

export interface Estimate {
  bytes: number;
  calibrated: boolean;
  /** Id of the profile used. */
  profile: string;
  /** True when the run is really tiled (the image is larger than the tile). */
  tiled: boolean;
}

export interface MeasuredSample {
  /** Pixels per image (width x height of the run, i.e. of one tile for a tiled sample). */
  pixels: number;
  batch: number;
  /** Measured peak bytes (minus accumulation buffers for tiled samples, see accumulationBytes). */
  bytes: number;
}

export interface FitOptions {
  id?: string;
  dtype?: ComputeDType;
  source?: string;
  /**
   * 'relative' (default) minimises sum(((estimate - measured) / measured)^2), which matches the
   * percentage-error target and keeps small sizes from being drowned by large ones;
   * 'absolute' is ordinary least squares on bytes.
   */
  weighting?: 'relative' | 'absolute';
  /** Known weight bytes at `dtype` (clamped to the fitted fixed part); default: the whole intercept. */
  weightBytes?: number;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

function profileFor(profiles: ModelMemoryProfiles, operation: Operation): MemoryProfile {
  const profile = operation === 'encode' ? profiles.encode : profiles.decode;
  if (!profile) throw new RangeError(`unknown operation "${String(operation)}"`);
  return profile;
}

function dtypeRatio(profile: MemoryProfile, dtype: ComputeDType): number {
  const target = COMPUTE_BYTES_PER_ELEMENT[dtype];
  if (target === undefined) throw new RangeError(`unknown dtype "${String(dtype)}"`);
  return target / COMPUTE_BYTES_PER_ELEMENT[profile.dtype];
}

/** Peak bytes of one run over `pixels` per image (no tiling), at `dtype`. */
export function runBytes(profile: MemoryProfile, pixels: number, batch: number, dtype: ComputeDType): number {
  const r = dtypeRatio(profile, dtype);
  return (
    profile.fixedBytes - profile.weightBytes + profile.weightBytes * r + profile.bytesPerPixel * r * pixels * batch
  );
}

/**
 * Bytes held for the whole image during a tiled run, on top of one tile's peak:
 * - encode: the whole input image (3 channels at dtype), a float32 latent accumulator
 *   (encoderOutputChannels at 1/downscale^2 of the pixels) and a float32 blend-weight map
 *   (1 channel at latent resolution, shared by the batch);
 * - decode: the whole input latent at dtype, a float32 image accumulator (3 channels at full
 *   resolution) and a float32 blend-weight map at full resolution.
 * Tiny next to one tile for encode (~6 B/px at fp16); ~16 B/px for decode.
 */
export function accumulationBytes(
  profiles: ModelMemoryProfiles,
  operation: Operation,
  width: number,
  height: number,
  batch: number,
  dtype: ComputeDType,
): number {
  const e = COMPUTE_BYTES_PER_ELEMENT[dtype];
  const pixels = width * height;
  const latentPixels = pixels / (profiles.downscaleFactor * profiles.downscaleFactor);
  if (operation === 'encode') {
    return batch * (3 * e * pixels + profiles.encoderOutputChannels * 4 * latentPixels) + 4 * latentPixels;
  }
  return batch * (profiles.latentChannels * e * latentPixels + 3 * 4 * pixels) + 4 * pixels;
}

/**
 * Bytes of the latent-resolution stage of a tiled run over `pixels` per image with tiles of
 * `tilePixels` (0 without one).
 */
export function latentStageBytes(
  profile: MemoryProfile,
  pixels: number,
  batch: number,
  dtype: ComputeDType,
  tilePixels = 0,
): number {
  const stage = profile.latentStage;
  if (!stage) return 0;
  return (
    stage.fixedBytes +
    (stage.bytesPerPixel * pixels + (stage.tileBytesPerPixel ?? 0) * tilePixels) * dtypeRatio(profile, dtype) * batch
  );
}

/** Estimated peak device bytes of one encode/decode request. Throws RangeError on invalid input. */
export function estimatePeakBytes(profiles: ModelMemoryProfiles, input: EstimateInput): Estimate {
  assertPositiveInteger('width', input.width);
  assertPositiveInteger('height', input.height);
  assertPositiveInteger('batch', input.batch);
  if (input.tile !== undefined) assertPositiveInteger('tile', input.tile);
  const profile = profileFor(profiles, input.operation);
  const tiled = input.tile !== undefined && (input.width > input.tile || input.height > input.tile);
  let bytes: number;
  if (tiled) {
    const tile = input.tile!;
    const tilePixels = Math.min(input.width, tile) * Math.min(input.height, tile);
    bytes =
      runBytes(profile, tilePixels, input.batch, input.dtype) +
      accumulationBytes(profiles, input.operation, input.width, input.height, input.batch, input.dtype) +
      latentStageBytes(profile, input.width * input.height, input.batch, input.dtype, tilePixels);
  } else {
    bytes = runBytes(profile, input.width * input.height, input.batch, input.dtype);
  }
  return { bytes: Math.ceil(bytes), calibrated: profile.calibrated, profile: profile.id, tiled };
}

export interface TileSearchOptions {
  /** Tile sides are multiples of this (default max(64, downscaleFactor)). */
  multiple?: number;
  /** Smallest tile side to consider (default 256, rounded up to `multiple`). */
  minTile?: number;
}

/**
 * Largest tile side (a multiple of `multiple`, >= minTile) whose estimate fits in budgetBytes, or
 * null when even minTile does not fit. A result >= max(width, height) means the whole image fits
 * in one run (the search starts there, so the result never exceeds the image's larger side
 * rounded up to `multiple`).
 */
export function largestTileThatFits(
  profiles: ModelMemoryProfiles,
  input: Omit<EstimateInput, 'tile'>,
  budgetBytes: number,
  options: TileSearchOptions = {},
): number | null {
  const multiple = options.multiple ?? Math.max(64, profiles.downscaleFactor);
  assertPositiveInteger('multiple', multiple);
  const minTile = Math.ceil((options.minTile ?? 256) / multiple) * multiple;
  const maxTile = Math.max(minTile, Math.ceil(Math.max(input.width, input.height) / multiple) * multiple);
  for (let tile = maxTile; tile >= minTile; tile -= multiple) {
    if (estimatePeakBytes(profiles, { ...input, tile }).bytes <= budgetBytes) return tile;
  }
  return null;
}

/** Fit statistics of a profile against samples (at the profile's dtype). */
export function fitStats(profile: MemoryProfile, samples: readonly MeasuredSample[]): FitStats {
  let sum = 0;
  let under = 0;
  let over = 0;
  for (const s of samples) {
    const estimate = runBytes(profile, s.pixels, s.batch, profile.dtype);
    const rel = (estimate - s.bytes) / s.bytes;
    sum += Math.abs(rel);
    under = Math.max(under, -rel);
    over = Math.max(over, rel);
  }
  return {
    samples: samples.length,
    mape: samples.length ? sum / samples.length : 0,
    maxUnderestimate: under,
    maxOverestimate: over,
  };
}

/**
 * Least-squares fit of bytes = fixed + bytesPerPixel * pixels * batch (see FitOptions.weighting).
 * Needs at least two distinct pixels*batch values. A negative intercept is refitted through the
 * origin. Returns a profile marked calibrated, with its fit statistics.
 */
export function fitProfile(samples: readonly MeasuredSample[], options: FitOptions = {}): MemoryProfile {
  const relative = (options.weighting ?? 'relative') === 'relative';
  for (const s of samples) {
    if (!(s.pixels > 0 && s.batch > 0 && s.bytes > 0) || ![s.pixels, s.batch, s.bytes].every(Number.isFinite)) {
      throw new RangeError(`invalid sample ${JSON.stringify(s)}: pixels, batch and bytes must be finite and > 0`);
    }
  }
  if (new Set(samples.map((s) => s.pixels * s.batch)).size < 2)
    throw new RangeError('fitProfile needs samples at two or more distinct sizes');
  let sw = 0,
    sx = 0,
    sy = 0,
    sxx = 0,
    sxy = 0;
  for (const s of samples) {
    const x = s.pixels * s.batch;
    const w = relative ? 1 / (s.bytes * s.bytes) : 1;
    sw += w;
    sx += w * x;
    sy += w * s.bytes;
    sxx += w * x * x;
    sxy += w * x * s.bytes;
  }
  let slope = (sw * sxy - sx * sy) / (sw * sxx - sx * sx);
  let intercept = (sy - slope * sx) / sw;
  if (intercept < 0) {
    intercept = 0;
    slope = sxy / sxx;
  }
  if (!(slope > 0))
    throw new RangeError('fitted bytes per pixel is not positive: memory does not grow with size in these samples');
  const fixedBytes = Math.round(intercept);
  const profile: MemoryProfile = {
    id: options.id ?? 'fitted',
    fixedBytes,
    weightBytes: Math.min(fixedBytes, Math.max(0, Math.round(options.weightBytes ?? fixedBytes))),
    bytesPerPixel: slope,
    dtype: options.dtype ?? 'float16',
    calibrated: true,
    source:
      options.source ?? `least-squares (${relative ? 'relative' : 'absolute'}) fit to ${samples.length} measurements`,
  };
  profile.fit = fitStats(profile, samples);
  return profile;
}

// ---------------------------------------------------------------------------------------------
// Validation of stored profiles (e.g. a calibration file).

function checkProfile(value: unknown, where: string): MemoryProfile {
  const p = value as Partial<MemoryProfile> | null;
  const ok =
    p !== null &&
    typeof p === 'object' &&
    typeof p.id === 'string' &&
    typeof p.fixedBytes === 'number' &&
    Number.isFinite(p.fixedBytes) &&
    p.fixedBytes >= 0 &&
    typeof p.weightBytes === 'number' &&
    Number.isFinite(p.weightBytes) &&
    p.weightBytes >= 0 &&
    p.weightBytes <= p.fixedBytes &&
    typeof p.bytesPerPixel === 'number' &&
    Number.isFinite(p.bytesPerPixel) &&
    p.bytesPerPixel > 0 &&
    typeof p.dtype === 'string' &&
    p.dtype in COMPUTE_BYTES_PER_ELEMENT &&
    typeof p.calibrated === 'boolean' &&
    typeof p.source === 'string' &&
    (p.latentStage === undefined ||
      (typeof p.latentStage === 'object' &&
        p.latentStage !== null &&
        typeof p.latentStage.fixedBytes === 'number' &&
        Number.isFinite(p.latentStage.fixedBytes) &&
        p.latentStage.fixedBytes >= 0 &&
        typeof p.latentStage.bytesPerPixel === 'number' &&
        Number.isFinite(p.latentStage.bytesPerPixel) &&
        p.latentStage.bytesPerPixel >= 0 &&
        (p.latentStage.tileBytesPerPixel === undefined ||
          (typeof p.latentStage.tileBytesPerPixel === 'number' &&
            Number.isFinite(p.latentStage.tileBytesPerPixel) &&
            p.latentStage.tileBytesPerPixel >= 0))));
  if (!ok) throw new TypeError(`${where}: not a valid memory profile`);
  return p as MemoryProfile;
}

/** Validates parsed JSON as ModelMemoryProfiles; throws TypeError naming what is wrong. */
export function parseModelMemoryProfiles(value: unknown): ModelMemoryProfiles {
  const v = value as Partial<ModelMemoryProfiles> | null;
  if (v === null || typeof v !== 'object' || typeof v.model !== 'string')
    throw new TypeError('memory profiles: expected an object with a "model" string');
  for (const key of ['defaultTile', 'latentChannels', 'downscaleFactor', 'encoderOutputChannels'] as const) {
    const n = v[key];
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0)
      throw new TypeError(`memory profiles ${v.model}: "${key}" must be a positive integer`);
  }
  return {
    ...(v as ModelMemoryProfiles),
    encode: checkProfile(v.encode, `${v.model}.encode`),
    decode: checkProfile(v.decode, `${v.model}.decode`),
  };
}

export { shippedProfiles, TAE_MODELS, type TaeProfileOptions, taeProfiles } from './profiles.js';
