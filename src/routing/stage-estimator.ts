/**
 * Peak device memory of one text-encoder or UNet stage, from its StageProfile. Pure. Tiling does not
 * apply: the UNet sees the whole latent (its attention mixes every position), the text encoder a
 * fixed-length sequence.
 *
 *   peak(dtype) = otherFixed + weightBytes * r + batch * r * (perItem + perPixel * P + attention * P^2)
 *
 * P = latent pixels, r = bytesPerElement(dtype) / bytesPerElement(profile.dtype). Why these terms:
 * docs/memory-model.md.
 */
import { COMPUTE_BYTES_PER_ELEMENT, type ComputeDType, type StageProfile } from './memory-profile.js';

export interface StageEstimateInput {
  latentWidth: number;
  latentHeight: number;
  /** The batch the network sees (under classifier-free guidance: twice the images). */
  batch: number;
  dtype: ComputeDType;
}

export interface StageEstimate {
  bytes: number;
  calibrated: boolean;
  /** Id of the profile used. */
  profile: string;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

/** Unrounded peak bytes (the fit statistics use this). */
export function stageBytes(profile: StageProfile, latentPixels: number, batch: number, dtype: ComputeDType): number {
  const target = COMPUTE_BYTES_PER_ELEMENT[dtype];
  if (target === undefined) throw new RangeError(`unknown dtype "${String(dtype)}"`);
  const r = target / COMPUTE_BYTES_PER_ELEMENT[profile.dtype];
  const perItem =
    profile.bytesPerBatchItem +
    profile.bytesPerLatentPixel * latentPixels +
    profile.attentionBytesPerLatentPixelSquared * latentPixels * latentPixels;
  return profile.fixedBytes - profile.weightBytes + profile.weightBytes * r + batch * r * perItem;
}

/** Estimated peak device bytes of one stage run at `input`. Throws RangeError on invalid input. */
export function estimateStageBytes(profile: StageProfile, input: StageEstimateInput): StageEstimate {
  assertPositiveInteger('latentWidth', input.latentWidth);
  assertPositiveInteger('latentHeight', input.latentHeight);
  assertPositiveInteger('batch', input.batch);
  const bytes = stageBytes(profile, input.latentWidth * input.latentHeight, input.batch, input.dtype);
  return { bytes: Math.ceil(bytes), calibrated: profile.calibrated, profile: profile.id };
}
