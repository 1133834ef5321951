/**
 * Runs encode and decode on this machine, whole or in tiles. Tiled runs split the network at the
 * latent resolution where the model allows it (see tae-loader): the image-resolution part runs
 * on overlapping, blended tiles. The latent-resolution part (with the GroupNorm branches) runs in
 * tiles too when it has `latentSteps`: GroupNorm statistics over the whole map first, then cores
 * with an exact halo (src/gpu/latent-stage.ts), equal to the whole-map run; otherwise (no
 * GroupNorm branches: small, cheap) it runs once on the whole map. Whole runs are one graph.
 */
import { GatewayError, throwIfCancelled } from '../errors.js';
import { type ModelDefinition, networkFor, type Operation } from '../models/model.js';
import { countLatentTiles, runLatentSteps } from './latent-stage.js';
import type { NetworkSource, OnnxRuntime } from './onnx-runtime.js';
import type { StagedNetwork } from './staged-network.js';
import type { Nchw } from './tensor.js';
import { countTiles, exactOverlap, runTiled } from './tiling.js';

export interface TilePlan {
  /** Tile side in image pixels (a multiple of the model's downscale factor). */
  tile: number;
  /** Overlap between neighbouring tiles in image pixels. */
  overlap: number;
}

export interface RunHooks {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export class LocalExecutor {
  constructor(readonly runtime: OnnxRuntime) {}

  get provider() {
    return this.runtime.choice.provider;
  }

  /**
   * Steps a run reports progress in: 1 for a whole run; for a tiled run the image-resolution
   * tiles plus the latent stage's tiles (every pass of every step), or +1 for a whole-map stage.
   */
  progressSteps(model: ModelDefinition, op: Operation, height: number, width: number, tiles?: TilePlan): number {
    if (!tiles) return 1;
    const f = model.downscaleFactor;
    const [h, w] = op === 'encode' ? [height, width] : [height / f, width / f];
    const unit = op === 'encode' ? 1 : f;
    const stages = this.network(model, op).stages;
    const highResolution = countTiles(h, w, {
      tile: tiles.tile / unit,
      overlap: tiles.overlap / unit,
      down: op === 'encode' ? f : 1,
    });
    if (!stages) return highResolution;
    if (!stages.latentSteps) return highResolution + 1;
    return highResolution + countLatentTiles(stages.latentSteps, height / f, width / f, latentTile(tiles, f));
  }

  async run(
    model: ModelDefinition,
    op: Operation,
    input: Nchw,
    tiles: TilePlan | undefined,
    hooks: RunHooks = {},
  ): Promise<Nchw> {
    const network = this.network(model, op);
    throwIfCancelled(hooks.signal, 'the run was cancelled before it started');
    const run = (stage: string, bytes: NetworkSource, x: Nchw) =>
      this.runtime.run(`${model.id}/${op}/${stage}`, bytes, network.inputName, network.outputName, x);
    let output: Nchw;
    if (!tiles) {
      output = await run('whole', network.whole, input);
      hooks.onProgress?.(1, 1);
    } else {
      output = await this.runTiledNetwork(model, op, network, input, tiles, hooks, run);
    }
    // A KL encoder's whole output (mean and log-variance): encode keeps the mean, img2img samples from both.
    return output;
  }

  /**
   * The latent-resolution part of a tiled run on the whole latent-resolution map `x` (encoder: the
   * image stage's features; decoder: the latent): in tiles with whole-map GroupNorm statistics when
   * the network has `latentSteps`, else one whole-map run. `onTile` ticks once per tile (once for a
   * whole-map run). Also what calibration measures as the `latent` stage.
   */
  async runLatentStage(
    model: ModelDefinition,
    op: Operation,
    x: Nchw,
    tiles: TilePlan,
    hooks: { onTile?: () => void; signal?: AbortSignal } = {},
  ): Promise<Nchw> {
    const network = this.network(model, op);
    const stages = network.stages;
    if (!stages) throw new Error(`model "${model.id}" ${op} has no latent-resolution stage`);
    if (!stages.latentSteps) {
      const y = await this.runtime.run(
        `${model.id}/${op}/low`,
        stages.latentResolution,
        network.inputName,
        network.outputName,
        x,
      );
      hooks.onTile?.();
      return y;
    }
    return runLatentSteps(stages.latentSteps, x, {
      tile: latentTile(tiles, model.downscaleFactor),
      run: (stage, graph, inputs, outputs) =>
        this.runtime.runNamed(`${model.id}/${op}/${stage}`, graph, inputs, outputs),
      onTile: hooks.onTile,
      signal: hooks.signal,
    });
  }

  private network(model: ModelDefinition, op: Operation): StagedNetwork {
    const network = networkFor(model, op);
    if (!network) throw new GatewayError('UNSUPPORTED_OPERATION', `model "${model.id}" does not support ${op}`);
    return network;
  }

  private async runTiledNetwork(
    model: ModelDefinition,
    op: Operation,
    network: StagedNetwork,
    input: Nchw,
    tiles: TilePlan,
    hooks: RunHooks,
    run: (stage: string, bytes: NetworkSource, x: Nchw) => Promise<Nchw>,
  ): Promise<Nchw> {
    const f = model.downscaleFactor;
    const [, , h, w] = input.dims;
    const steps = this.progressSteps(model, op, op === 'encode' ? h : h * f, op === 'encode' ? w : w * f, tiles);
    let done = 0;
    const tick = () => hooks.onProgress?.(++done, steps);
    const checkCancelled = () => throwIfCancelled(hooks.signal, 'the run was cancelled between tiles');
    const stages = network.stages;
    const lowResolution = (x: Nchw) => {
      checkCancelled();
      return this.runLatentStage(model, op, x, tiles, { onTile: tick, signal: hooks.signal });
    };
    if (op === 'encode') {
      const perTile = stages ? stages.highResolution : network.whole;
      const features = await runTiled(input, {
        tile: tiles.tile,
        overlap: tiles.overlap,
        up: 1,
        down: f,
        outChannels: stages ? stages.featureChannels : network.outputChannels,
        reach: stages?.highResolutionReach,
        run: (x) => run(stages ? 'high' : 'whole', perTile, x),
        onTile: tick,
        signal: hooks.signal,
      });
      return stages ? lowResolution(features) : features;
    }
    const features = stages ? await lowResolution(input) : input;
    checkCancelled();
    return runTiled(features, {
      tile: tiles.tile / f,
      overlap: tiles.overlap / f,
      up: f,
      down: 1,
      outChannels: network.outputChannels,
      reach: stages?.highResolutionReach,
      run: (x) => run(stages ? 'high' : 'whole', stages ? stages.highResolution : network.whole, x),
      onTile: tick,
      signal: hooks.signal,
    });
  }
}

/** Core side of the latent stage's tiles: the image tile at latent resolution (at least 16 px). */
export function latentTile(tiles: TilePlan, downscaleFactor: number): number {
  return Math.max(16, Math.floor(tiles.tile / downscaleFactor));
}

/**
 * Overlap in image pixels with which `network`'s tiles join exactly (runTiled), or null when they
 * can only be blended (no known receptive reach: the whole network runs per tile).
 */
export function exactTileOverlap(network: StagedNetwork | undefined, op: Operation, downscaleFactor: number) {
  const reach = network?.stages?.highResolutionReach;
  if (reach === undefined || !Number.isFinite(reach)) return null;
  // Encoder tiles are laid out in image pixels aligned to the stride; decoder tiles in latent pixels.
  return op === 'encode' ? exactOverlap(reach, downscaleFactor) : exactOverlap(reach, 1) * downscaleFactor;
}
