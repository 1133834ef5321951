/**
 * The data a memory estimate is made from: per-network peak-memory profiles, as shipped
 * (profiles.ts), calibrated (src/calibration) or stored as JSON (profile-schema.ts). Plain data.
 * The model behind the numbers and its evidence: docs/memory-model.md.
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
  /** Tile side of the profile's tiled measurements (sd15 512, sdxl/flux1 1024); not the planner's choice. */
  defaultTile: number;
  latentChannels: number;
  downscaleFactor: number;
  /** Channels the encoder emits (2 x latent for a KL encoder: mean and log-variance). */
  encoderOutputChannels: number;
}
