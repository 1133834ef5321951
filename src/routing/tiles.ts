/** Tile sizes for tiled runs: the largest tile whose estimate fits a budget, and its overlap. Pure. */
import { type EstimateInput, estimatePeakBytes } from './estimator.js';
import type { ModelMemoryProfiles } from './memory-profile.js';

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
  if (!Number.isInteger(multiple) || multiple <= 0)
    throw new RangeError(`multiple must be a positive integer, got ${multiple}`);
  const minTile = Math.ceil((options.minTile ?? 256) / multiple) * multiple;
  const maxTile = Math.max(minTile, Math.ceil(Math.max(input.width, input.height) / multiple) * multiple);
  for (let tile = maxTile; tile >= minTile; tile -= multiple) {
    if (estimatePeakBytes(profiles, { ...input, tile }).bytes <= budgetBytes) return tile;
  }
  return null;
}

/** Tiles overlap by a quarter of their side: measured on taef2, 1/8 gave 0.9% latent error, 1/4 gave 0.5%. */
export function overlapFor(tile: number, factor: number): number {
  return Math.max(factor, Math.round(tile / 4 / factor) * factor);
}
