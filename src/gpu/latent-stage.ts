/**
 * The latent-resolution stage of a tiled TAE run, itself in tiles, exactly.
 *
 * Approach (of the two the problem allows: whole-map statistics, or the low-resolution part run
 * whole): whole-map statistics. Running the part whole would be exact too, but taef2's GroupNorm
 * branches widen the latent map to 256 channels, so that one run needs ~1.3 GiB at float32 for a
 * 4096x4096 image whatever the tile size; this way the only whole-map buffers are 64-channel
 * feature maps (64 MiB each at 4096²) and the 256-channel activations exist one tile at a time.
 *
 * Step by step (see LatentStep): the whole feature map x stays in memory between steps.
 * - normalised step (a GroupNorm block and the layers up to the next one):
 *   1. statistics pass: the branch's h = W1 · x is 1x1, so tiles without overlap see exactly their
 *      pixels; each reports per-channel mean and M2, merged in float64 (group-norm.ts);
 *   2. the GroupNorm becomes per-channel center and scale inputs (exact for the whole map), and the
 *      step runs core by core with a halo of its receptive radius, cropped (tiling.ts
 *      runCropped): equal to the whole run up to float rounding.
 * - local step (layers before the first GroupNorm block): the cropped pass alone.
 */

import { throwIfCancelled } from '../errors.js';
import { emptyMoments, foldGroupNorm, mergeMoments } from './group-norm.js';
import type { LatentStep } from './staged-network.js';
import { CENTER_INPUT, GRAPH_INPUT, GRAPH_OUTPUT, M2_OUTPUT, MEAN_OUTPUT, SCALE_INPUT } from './tae/onnx-graph.js';
import type { Nchw } from './tensor.js';
import { countCores, crop, planCores, runCropped } from './tiling.js';

export interface LatentStageOptions {
  /** Core side in latent pixels. */
  tile: number;
  /** Runs one graph: `stage` names it for the session cache (unique per graph). */
  run: (stage: string, graph: Uint8Array, inputs: Record<string, Nchw>, outputs: readonly string[]) => Promise<Nchw[]>;
  /** Called after every tile of every pass. */
  onTile?: () => void;
  signal?: AbortSignal;
}

/** Tiles the stage runs over a `height` x `width` latent map (two passes per normalised step). */
export function countLatentTiles(steps: readonly LatentStep[], height: number, width: number, tile: number): number {
  const cores = countCores(height, width, tile);
  return steps.reduce((sum, step) => sum + cores * (step.kind === 'normalised' ? 2 : 1), 0);
}

export async function runLatentSteps(steps: readonly LatentStep[], input: Nchw, o: LatentStageOptions): Promise<Nchw> {
  let x = input;
  for (const [i, step] of steps.entries()) {
    let extra: Record<string, Nchw> = {};
    if (step.kind === 'normalised') {
      const { center, scale } = await wholeMapNorm(step, x, `low/${i}/statistics`, o);
      const dims: Nchw['dims'] = [x.dims[0], step.norm.gamma.length, 1, 1];
      extra = { [CENTER_INPUT]: { data: center, dims }, [SCALE_INPUT]: { data: scale, dims } };
    }
    x = await runCropped(x, {
      tile: o.tile,
      halo: step.halo,
      outChannels: step.outChannels,
      run: async (tile) => (await o.run(`low/${i}`, step.graph, { [GRAPH_INPUT]: tile, ...extra }, [GRAPH_OUTPUT]))[0],
      onTile: () => o.onTile?.(),
      signal: o.signal,
    });
  }
  return x;
}

/** Pass 1 of a normalised step: the GroupNorm's whole-map statistics, folded into center and scale. */
async function wholeMapNorm(
  step: Extract<LatentStep, { kind: 'normalised' }>,
  x: Nchw,
  stage: string,
  o: LatentStageOptions,
) {
  const [n, , h, w] = x.dims;
  const moments = emptyMoments(n * step.norm.gamma.length);
  for (const row of planCores(h, o.tile)) {
    for (const col of planCores(w, o.tile)) {
      throwIfCancelled(o.signal, 'the run was cancelled between tiles');
      const [mean, m2] = await o.run(stage, step.statistics, { [GRAPH_INPUT]: crop(x, row, col) }, [
        MEAN_OUTPUT,
        M2_OUTPUT,
      ]);
      mergeMoments(moments, { count: (row.end - row.start) * (col.end - col.start), mean: mean.data, m2: m2.data });
      o.onTile?.();
    }
  }
  return foldGroupNorm(moments, n, step.norm);
}
