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

/** Stages of an img2img pipeline that are not VAE runs: the text encoder(s) and the UNet / transformer. */
export type StageOperation = 'textEncode' | 'denoise';
export const STAGE_OPERATIONS: readonly StageOperation[] = ['textEncode', 'denoise'];

/** Every operation a plan can be for. */
export type PlanOperation = Operation | StageOperation;

export function isStageOperation(operation: string): operation is StageOperation {
  return (STAGE_OPERATIONS as readonly string[]).includes(operation);
}

/**
 * Peak-memory profile of one non-VAE stage (all of its networks resident together: both SDXL text
 * encoders, or the UNet). Per batch item, where the batch is what the network sees (2 per image
 * under classifier-free guidance). Plain data: safe to JSON.stringify.
 *
 *   peak = fixed + batch * (bytesPerBatchItem + bytesPerLatentPixel * P + attentionBytesPerLatentPixelSquared * P^2)
 *
 * with P the latent pixels (latentWidth x latentHeight); docs/memory-model.md has the derivation.
 */
export interface StageProfile {
  id: string;
  /** Bytes that do not grow with the batch or resolution, at `dtype` (includes `weightBytes`). */
  fixedBytes: number;
  /** The part of fixedBytes that is weights and scales with dtype; 0 <= weightBytes <= fixedBytes. */
  weightBytes: number;
  /** Per batch item, independent of the resolution (a text encoder's activations for one sequence). */
  bytesPerBatchItem: number;
  /** Per latent pixel per batch item. */
  bytesPerLatentPixel: number;
  /**
   * Per latent pixel squared per batch item: self-attention scores of an export whose attention is
   * not fused (MatMul + Softmax hold heads x tokens^2). 0 where attention is memory-efficient or absent.
   */
  attentionBytesPerLatentPixelSquared: number;
  dtype: ComputeDType;
  /** True only when fitted to measurements of this network. */
  calibrated: boolean;
  /** Where the numbers come from (measurement, derivation). */
  source: string;
  fit?: FitStats;
}

export interface ModelStageProfiles {
  /** Model or family id the profiles describe. */
  model: string;
  textEncode: StageProfile;
  denoise: StageProfile;
  /** Image pixels per latent pixel, per side. */
  downscaleFactor: number;
}

/** One network of a pipeline folder: its graph file, and its size on disk with external weights. */
export interface NetworkFile {
  /** `.../model.onnx`. */
  path: string;
  /** model.onnx plus model.onnx_data (when present), in bytes: the weights at the export's dtype. */
  bytes: number;
  /** The network's parsed `config.json` (optional: defaults of SD 1.5 / CLIP are assumed where absent). */
  config?: Record<string, unknown>;
}

/** What the pipeline folder loader tells the router about a pipeline's stage networks. */
export interface PipelineNetworks {
  /** `text_encoder/` (and `text_encoder_2/` for SDXL), all resident during the stage. */
  textEncoders: NetworkFile[];
  /** `unet/` (or `transformer/`). */
  unet: NetworkFile;
  /** Element type of the export's weights and activations (the UNet's `sample` input type). */
  dtype: ComputeDType;
  /** From the VAE config: 2 ** (len(block_out_channels) - 1), 8 for SD/SDXL. */
  downscaleFactor: number;
}
