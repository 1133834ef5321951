/**
 * Runs encode and decode on this machine, whole or in tiles. Tiled runs split the network at the
 * latent resolution where the model allows it (see tae-loader): the image-resolution part runs
 * per tile, the latent-resolution part (with the GroupNorm branches) runs once on the whole map.
 */
import { GatewayError } from '../errors.js';
import type { ModelDefinition, Operation, StagedNetwork } from '../models/model.js';
import type { OnnxRuntime } from './onnx-runtime.js';
import { leadingChannels, type Nchw } from './tensor.js';
import { countTiles, runTiled } from './tiling.js';

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

  /** Steps a run reports progress in: tiles (+1 for the whole-map stage) or 1 for a whole run. */
  progressSteps(model: ModelDefinition, op: Operation, height: number, width: number, tiles?: TilePlan): number {
    if (!tiles) return 1;
    const f = model.downscaleFactor;
    const [h, w] = op === 'encode' ? [height, width] : [height / f, width / f];
    const unit = op === 'encode' ? 1 : f;
    const network = this.network(model, op);
    return countTiles(h, w, { tile: tiles.tile / unit, overlap: tiles.overlap / unit, down: op === 'encode' ? f : 1 }) + (network.stages ? 1 : 0);
  }

  async run(model: ModelDefinition, op: Operation, input: Nchw, tiles: TilePlan | undefined, hooks: RunHooks = {}): Promise<Nchw> {
    const network = this.network(model, op);
    if (hooks.signal?.aborted) throw new GatewayError('CANCELLED', 'the run was cancelled before it started');
    const run = (stage: string, bytes: Uint8Array, x: Nchw) => this.runtime.run(`${model.id}/${op}/${stage}`, bytes, network.inputName, network.outputName, x);
    let output: Nchw;
    if (!tiles) {
      output = await run('whole', network.whole, input);
      hooks.onProgress?.(1, 1);
    } else {
      output = await this.runTiledNetwork(model, op, network, input, tiles, hooks, run);
    }
    return op === 'encode' ? leadingChannels(output, model.latentChannels) : output;
  }

  private network(model: ModelDefinition, op: Operation): StagedNetwork {
    const network = op === 'encode' ? model.encoder : model.decoder;
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
    run: (stage: string, bytes: Uint8Array, x: Nchw) => Promise<Nchw>,
  ): Promise<Nchw> {
    const f = model.downscaleFactor;
    const [, , h, w] = input.dims;
    const steps = this.progressSteps(model, op, op === 'encode' ? h : h * f, op === 'encode' ? w : w * f, tiles);
    let done = 0;
    const tick = () => hooks.onProgress?.(++done, steps);
    const checkCancelled = () => {
      if (hooks.signal?.aborted) throw new GatewayError('CANCELLED', 'the run was cancelled between tiles');
    };
    const stages = network.stages;
    if (op === 'encode') {
      const perTile = stages ? stages.highResolution : network.whole;
      const features = await runTiled(input, {
        tile: tiles.tile,
        overlap: tiles.overlap,
        up: 1,
        down: f,
        outChannels: stages ? stages.featureChannels : network.outputChannels,
        run: (x) => run(stages ? 'high' : 'whole', perTile, x),
        onTile: tick,
        signal: hooks.signal,
      });
      if (!stages) return features;
      checkCancelled();
      const latent = await run('low', stages.latentResolution, features);
      tick();
      return latent;
    }
    let features = input;
    if (stages) {
      features = await run('low', stages.latentResolution, input);
      tick();
      checkCancelled();
    }
    return runTiled(features, {
      tile: tiles.tile / f,
      overlap: tiles.overlap / f,
      up: f,
      down: 1,
      outChannels: network.outputChannels,
      run: (x) => run(stages ? 'high' : 'whole', stages ? stages.highResolution : network.whole, x),
      onTile: tick,
      signal: hooks.signal,
    });
  }
}
