/** What the gateway knows about one servable model, independent of how its networks are stored. */
import type { FamilyConventions } from './families.js';

export type Operation = 'encode' | 'decode';

/**
 * A network split where tiling is safe: `highResolution` runs at image resolution on overlapping,
 * blended tiles; `latentResolution` is the part at latent resolution, where the GroupNorm layers
 * (global statistics) sit. For an encoder the order is high → latent; for a decoder latent → high.
 */
export interface StagedNetwork {
  whole: Uint8Array;
  /** Absent when the network has no safe split; tiling then runs `whole` per tile. */
  stages?: {
    highResolution: Uint8Array;
    /** The latent-resolution part as one graph (run on the whole map when there are no `latentSteps`). */
    latentResolution: Uint8Array;
    featureChannels: number;
    /**
     * The latent-resolution part as steps that run in tiles (see src/gpu/latent-stage.ts), present
     * when it holds GroupNorm branches: their statistics are gathered over the whole map first, so
     * the tiled result equals the whole one, and no 256-channel whole-map activation is ever made.
     */
    latentSteps?: LatentStep[];
  };
  inputName: string;
  outputName: string;
  /** Output channels; for a KL encoder this can be 2×latent (mean and log-variance). */
  outputChannels: number;
}

/**
 * One step of a tiled latent stage: layers at one resolution whose output pixel depends on inputs
 * at most `halo` pixels away. A `normalised` step starts with a GroupNorm block: `statistics`
 * (x → per-channel tile mean and M2 of the branch's hidden map) runs first over every tile, then
 * `graph` (x, center, scale → y) with the norm's statistics and affine weight folded into those
 * per-channel inputs (see src/gpu/group-norm.ts).
 */
export type LatentStep =
  | { kind: 'local'; graph: Uint8Array; halo: number; outChannels: number }
  | {
      kind: 'normalised';
      statistics: Uint8Array;
      graph: Uint8Array;
      halo: number;
      outChannels: number;
      norm: { groups: number; epsilon: number; gamma: Float32Array };
    };

export interface ModelDefinition {
  id: string;
  family: FamilyConventions;
  /** `upstream`: no local weights; it runs only on configured upstream endpoints. */
  format: 'tae-safetensors' | 'onnx' | 'upstream';
  latentChannels: number;
  downscaleFactor: number;
  encoder?: StagedNetwork;
  decoder?: StagedNetwork;
  /** Where the files came from, for the `models` query. */
  path: string;
  /** Operations configured upstream endpoints serve (besides the local networks). */
  upstreamOperations?: Operation[];
}

/** The local network that runs `operation`, if the model has one. */
export function networkFor(
  model: Partial<Pick<ModelDefinition, 'encoder' | 'decoder'>>,
  operation: Operation,
): StagedNetwork | undefined {
  return operation === 'encode' ? model.encoder : model.decoder;
}

/** Operations the local weights can run. */
export function operationsOf(model: Pick<ModelDefinition, 'encoder' | 'decoder'>): Operation[] {
  return (['encode', 'decode'] as const).filter((op) => networkFor(model, op));
}

/** Operations the gateway serves for the model: local ones and those of its upstream endpoints. */
export function servedOperationsOf(
  model: Pick<ModelDefinition, 'encoder' | 'decoder' | 'upstreamOperations'>,
): Operation[] {
  const ops = new Set([...operationsOf(model), ...(model.upstreamOperations ?? [])]);
  return (['encode', 'decode'] as const).filter((op) => ops.has(op));
}
