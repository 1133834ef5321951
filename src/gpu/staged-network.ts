/** The networks the executor runs: whole, or split at latent resolution for tiled runs. */

/**
 * A network split where tiling is safe: `highResolution` runs at image resolution on overlapping,
 * blended tiles; `latentResolution` is the part at latent resolution, where the GroupNorm layers
 * (global statistics) sit. For an encoder the order is high → latent; for a decoder latent → high.
 */
export interface StagedNetwork {
  /** The graph's bytes, or its file path (an export's `model.onnx`, whose `model.onnx_data` loads beside it). */
  whole: Uint8Array | string;
  /** Absent when the network has no safe split; tiling then runs `whole` per tile. */
  stages?: {
    highResolution: Uint8Array;
    /** The latent-resolution part as one graph (run on the whole map when there are no `latentSteps`). */
    latentResolution: Uint8Array;
    featureChannels: number;
    /**
     * Receptive reach of `highResolution` in pixels of its input (see reachOf in tae/onnx-graph.ts):
     * tiles that overlap by enough for every kept pixel to be this far from a cut edge stitch
     * exactly (src/gpu/tiling.ts).
     */
    highResolutionReach?: number;
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
