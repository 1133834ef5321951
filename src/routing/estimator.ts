/**
 * Peak device memory of one encode/decode request, from the network's memory profile. Pure: no
 * I/O, no device queries.
 *
 *   peak(dtype) = otherFixed + weightBytes * r + bytesPerPixel * r * (pixels * batch)
 *   r           = bytesPerElement(dtype) / bytesPerElement(profile.dtype)
 *
 * Linear in pixels because every layer of these autoencoders is a convolution, a normalisation, a
 * pointwise op or (AutoencoderKL) one memory-efficient attention block, so the tensors alive at the
 * peak scale with the pixel count. A tiled run's peak is one tile's plus what stays resident for
 * the whole image (accumulationBytes) plus, for networks split at latent resolution, that stage
 * (latentStageBytes), added rather than maxed because each stage's session keeps its arena.
 * Why these terms, and the measurements behind them: docs/memory-model.md.
 */
import {
  COMPUTE_BYTES_PER_ELEMENT,
  type ComputeDType,
  type MemoryProfile,
  type ModelMemoryProfiles,
  type Operation,
} from './memory-profile.js';

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

/**
 * Largest batch (at most `most`) of same-size images whose whole run fits `budgetBytes`; 0 when not
 * even one does. The estimate is linear in the batch, so this is solved once, not searched.
 */
export function largestBatchThatFits(
  profiles: ModelMemoryProfiles,
  input: Omit<EstimateInput, 'tile' | 'batch'>,
  budgetBytes: number,
  most: number,
): number {
  assertPositiveInteger('most', most);
  const profile = profileFor(profiles, input.operation);
  const pixels = input.width * input.height;
  const fixed = runBytes(profile, pixels, 0, input.dtype);
  const perImage = runBytes(profile, pixels, 1, input.dtype) - fixed;
  let batch = Math.min(most, Math.floor((budgetBytes - fixed) / perImage));
  // The estimate rounds up to whole bytes: step back where that tips it over.
  while (batch > 0 && Math.ceil(runBytes(profile, pixels, batch, input.dtype)) > budgetBytes) batch--;
  return Math.max(0, batch);
}
