/** Least-squares fits of memory profiles to measured peaks, and how well a profile fits them. */
import { runBytes } from '../routing/estimator.js';
import type { ComputeDType, FitStats, MemoryProfile } from '../routing/memory-profile.js';

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
