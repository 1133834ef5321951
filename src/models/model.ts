/** What the gateway knows about one servable model, independent of how its networks are stored. */
import type { FamilyConventions } from './families.js';

export type Operation = 'encode' | 'decode';

/**
 * A network split where tiling is safe: `tiled` runs at image resolution on overlapping tiles;
 * `whole` runs at latent resolution on the full map, so layers with global statistics (GroupNorm)
 * see the whole feature map. For an encoder the order is tiled → whole; for a decoder whole → tiled.
 */
export interface StagedNetwork {
  whole: Uint8Array;
  /** Absent when the network has no safe split; tiling then runs `whole` per tile. */
  stages?: { highResolution: Uint8Array; latentResolution: Uint8Array; featureChannels: number };
  inputName: string;
  outputName: string;
  /** Output channels; for a KL encoder this can be 2×latent (mean and log-variance). */
  outputChannels: number;
}

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

/** Operations the local weights can run. */
export function operationsOf(model: Pick<ModelDefinition, 'encoder' | 'decoder'>): Operation[] {
  const ops: Operation[] = [];
  if (model.encoder) ops.push('encode');
  if (model.decoder) ops.push('decode');
  return ops;
}

/** Operations the gateway serves for the model: local ones and those of its upstream endpoints. */
export function servedOperationsOf(model: Pick<ModelDefinition, 'encoder' | 'decoder' | 'upstreamOperations'>): Operation[] {
  const ops = new Set([...operationsOf(model), ...(model.upstreamOperations ?? [])]);
  return (['encode', 'decode'] as const).filter((op) => ops.has(op));
}
