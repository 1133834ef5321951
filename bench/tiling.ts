/**
 * Tiled against whole encode time, per pixel (taef2, real weights, CPU), at 2048x2048 and
 * 4096x4096, with the tile the planner picks on the default CPU budget (DEVICE_MEMORY 4GiB minus
 * the 256 MiB headroom), where the whole run does not fit. Reports the plan (tile, overlap, tiles),
 * seconds, microseconds per pixel, the tiled/whole ratio, and how far the tiled latent is from
 * the whole one. The whole run is timed at 2048x2048 only: at 4096x4096 it needs ~17 GiB on CPU,
 * so the 4096 ratio is against the 2048 whole run's time per pixel (a convolutional network's
 * whole-run cost per pixel does not depend on the size). Minutes on 2 cores.
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { LocalExecutor } from '../src/gpu/local-executor.ts';
import { chooseProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import type { Nchw } from '../src/gpu/tensor.ts';
import { countTiles } from '../src/gpu/tiling.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { LocalRunner, Router } from '../src/routing/index.ts';
import { CapacityLedger } from '../src/routing/ledger.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { rgbToPlanar } from '../src/tensors/pixel-range.ts';
import { IMAGES_DIR, MODELS_DIR } from './support.ts';

async function image(size: number): Promise<Nchw> {
  const { data, info } = await sharp(join(IMAGES_DIR, 'astronaut-1024.png'))
    .removeAlpha()
    .resize(size, size)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return {
    data: rgbToPlanar(pixels, info.width, info.height, 'zero-one'),
    dims: [1, 3, size, size],
  };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

export async function tiling(sizes = [2048, 4096], wholeSizes = [2048], budgetBytes = 4 * 2 ** 30) {
  const model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
  const runtime = new OnnxRuntime(await chooseProvider('cpu'), 0);
  try {
    const executor = new LocalExecutor(runtime);
    const ledger = new CapacityLedger({ budgetBytes, headroomBytes: 256 * 2 ** 20, maxQueueLength: 1 });
    const router = new Router(new ProfileSource(null), new LocalRunner(executor, ledger, new RunStats()));
    // Sessions exist before anything is timed (creating one is not what a tile costs).
    const warm = await image(512);
    await executor.run(model, 'encode', warm, undefined);
    await executor.run(model, 'encode', warm, { tile: 256, overlap: 64 });
    const rows = [];
    let wholeMicrosPerPixel: number | null = null;
    for (const size of sizes) {
      const input = await image(size);
      const pixels = size * size;
      const plan = router.plan(model, 'encode', size, size, 1);
      if (plan.route !== 'TILED' || !plan.tiles) throw new Error(`expected a TILED plan at ${size} px: ${plan.reason}`);
      const time = async (tiles: typeof plan.tiles | undefined) => {
        const started = performance.now();
        const output = await executor.run(model, 'encode', input, tiles);
        return { output, seconds: (performance.now() - started) / 1000 };
      };
      const tiled = await time(plan.tiles);
      const whole = wholeSizes.includes(size) ? await time(undefined) : null;
      if (whole) wholeMicrosPerPixel = (whole.seconds / pixels) * 1e6;
      const tiledMicrosPerPixel = (tiled.seconds / pixels) * 1e6;
      rows.push({
        size: `${size}x${size}`,
        tile: plan.tiles.tile,
        overlap: plan.tiles.overlap,
        tiles: countTiles(size, size, { ...plan.tiles, down: model.downscaleFactor }),
        plannedMiB: +(plan.bytes / 2 ** 20).toFixed(0),
        tiledSeconds: +tiled.seconds.toFixed(2),
        tiledMicrosPerPixel: +tiledMicrosPerPixel.toFixed(3),
        wholeSeconds: whole ? +whole.seconds.toFixed(2) : null,
        wholeMicrosPerPixel: wholeMicrosPerPixel === null ? null : +wholeMicrosPerPixel.toFixed(3),
        wholeMeasuredAt: whole ? size : wholeMicrosPerPixel === null ? null : wholeSizes.at(-1),
        ratio: wholeMicrosPerPixel === null ? null : +(tiledMicrosPerPixel / wholeMicrosPerPixel).toFixed(3),
        maxAbsDiffFromWhole: whole ? +maxAbsDiff(tiled.output.data, whole.output.data).toExponential(2) : null,
      });
      console.error(JSON.stringify(rows.at(-1)));
    }
    return {
      benchmark: 'tiling',
      model: 'taef2',
      operation: 'encode',
      device: 'cpu',
      budgetMiB: (budgetBytes - 256 * 2 ** 20) / 2 ** 20,
      rows,
    };
  } finally {
    await runtime.close();
  }
}
