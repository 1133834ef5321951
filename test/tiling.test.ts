/**
 * Tiled execution: quality against the whole run (taef2, astronaut-1024, 512 px tiles), the route a
 * small device takes through GraphQL, and the memory a 4096x4096 tiled encode really uses.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { LocalExecutor } from '../src/gpu/local-executor.ts';
import { chooseProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import type { Nchw } from '../src/gpu/tensor.ts';
import { toPlanarFloat } from '../src/imaging/images.ts';
import type { ModelDefinition } from '../src/models/model.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { shippedProfiles } from '../src/routing/estimator.ts';
import { overlapFor, planRoute, type Plan } from '../src/routing/router.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { decodeTensor } from '../src/tensors/dtype.ts';
import { readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { tiledBudget } from './support/budget.ts';
import { clampUnit, psnr, relativeL2 } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR, PROJECT_DIR, REFERENCE_DIR } from './support/paths.ts';
import { startGateway } from './support/server.ts';

const GIB = 2 ** 30;

async function planar(file: string): Promise<Nchw> {
  const { data, info } = await sharp(join(IMAGES_DIR, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { data: toPlanarFloat({ pixels, width: info.width, height: info.height }, 'zero-one'), dims: [1, 3, info.height, info.width] };
}

describe('taef2 tiled vs whole on astronaut-1024 (512 px tiles)', () => {
  let runtime: OnnxRuntime;
  let executor: LocalExecutor;
  let model: ModelDefinition;
  let image: Nchw;
  let wholeLatent: Nchw;
  const tiles = { tile: 512, overlap: overlapFor(512, 8) };

  before(async () => {
    model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
    assert.ok(model?.encoder?.stages && model.decoder?.stages, 'taef2 is split at latent resolution');
    runtime = new OnnxRuntime(await chooseProvider('auto'), 0);
    executor = new LocalExecutor(runtime);
    image = await planar('astronaut-1024.png');
    assert.deepEqual(image.dims, [1, 3, 1024, 1024]);
    wholeLatent = await executor.run(model, 'encode', image, undefined);
  });
  after(async () => runtime?.close());

  test('tiled encode is within 1% relative L2 of the whole encode', async () => {
    const progress: Array<[number, number]> = [];
    const tiled = await executor.run(model, 'encode', image, tiles, { onProgress: (done, total) => progress.push([done, total]) });
    assert.deepEqual(tiled.dims, [1, 32, 128, 128]);
    const error = relativeL2(tiled.data, wholeLatent.data);
    console.log(`  tiled encode (tile ${tiles.tile}, overlap ${tiles.overlap}): relative L2 ${(error * 100).toFixed(3)}%`);
    assert.ok(error < 0.01, `relative L2 ${(error * 100).toFixed(3)}% >= 1%`);
    // It really was tiled: 3x3 tiles of 512 px over 1024 px with 128 px overlap, then the whole-map stage.
    const steps = executor.progressSteps(model, 'encode', 1024, 1024, tiles);
    assert.equal(steps, 10);
    assert.deepEqual(progress.at(-1), [steps, steps]);
    assert.equal(progress.length, steps);
  });

  test('tiled decode is within 40 dB PSNR of the whole decode', async () => {
    const whole = clampUnit((await executor.run(model, 'decode', wholeLatent, undefined)).data);
    const tiled = await executor.run(model, 'decode', wholeLatent, tiles);
    assert.deepEqual(tiled.dims, [1, 3, 1024, 1024]);
    const db = psnr(clampUnit(tiled.data), whole);
    console.log(`  tiled decode (tile ${tiles.tile} px = ${tiles.tile / 8} latent): PSNR ${db.toFixed(2)} dB against the whole decode`);
    assert.ok(db >= 40, `PSNR ${db.toFixed(2)} dB < 40 dB`);
  });
});

test('GraphQL: a gateway whose device cannot hold the whole run encodes TILED, and the latent is still right', async () => {
  // The smallest budget (no headroom) at which the planner tiles a 512x512 taef2 encode.
  const { deviceMemory, plan } = await tiledBudget(MODELS_DIR, 'taef2', 512, 512, 384);
  const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-tiling-'));
  const gateway = await startGateway({ MODELS_DIR, DATA_DIR: dataDir, DEVICE_MEMORY: deviceMemory, DEVICE_HEADROOM: '0' });
  try {
    const response = await gateway.graphql(
      `mutation($input: EncodeInput!) { encode(input: $input) { latent { shape data } route { route tile bytes budgetBytes estimates { whole { bytes } tiled { bytes tile overlap } } } } }`,
      { input: { model: 'taef2', imageBase64: readFileSync(join(IMAGES_DIR, 'astronaut.png')).toString('base64') } },
    );
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const { route, latent } = response.data.encode;
    assert.equal(route.route, 'TILED');
    assert.equal(route.tile, plan.tiles!.tile);
    assert.ok(route.tile < 512);
    assert.ok(route.estimates.whole.bytes > route.budgetBytes, 'the whole run would not fit');
    assert.ok(route.bytes <= route.budgetBytes);
    const reference = (await readSafetensors(join(REFERENCE_DIR, 'taef2', 'astronaut.safetensors'))).tensors.get('latent')!;
    assert.deepEqual(latent.shape, reference.shape);
    const error = relativeL2(decodeTensor(Buffer.from(latent.data, 'base64'), 'float32'), tensorToFloat32(reference));
    console.log(`  DEVICE_MEMORY ${deviceMemory}: ${route.route} with ${route.tile} px tiles; latent vs PyTorch reference: relative L2 ${(error * 100).toFixed(3)}%`);
    assert.ok(error < 0.01, `tiled latent vs PyTorch reference: relative L2 ${(error * 100).toFixed(3)}%`);
  } finally {
    await gateway.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('4096x4096 encode on a 2 GiB budget', () => {
  // Measured run: taesana (32x), because a 4096x4096 taef2 encode on 2 CPU cores takes minutes
  // (121 tiles of 512 px at ~1.5 s each) and the whole suite has to stay within ~10 minutes;
  // taesana tiles the same 4096x4096 image in 121 tiles in ~7 s. It runs in a child process so
  // its peak resident memory is its own, not this test runner's.
  test('taesana completes through tiles and its measured peak stays within the plan and the budget', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join('test', 'support', 'tiled-memory-child.ts'), 'taesana', '4096', '2GiB'], {
      cwd: PROJECT_DIR,
      maxBuffer: 16 * 2 ** 20,
    });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { plan: Plan; peakBytes: number; exact: boolean; seconds: number; steps: number; dims: number[]; min: number; max: number; finite: boolean };
    const { plan, peakBytes } = result;
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
    console.log(`  ${plan.route} ${plan.tiles?.tile} px tiles, ${result.steps} steps, ${result.seconds.toFixed(1)} s: measured peak ${mib(peakBytes)}${result.exact ? '' : ' (upper bound)'}, planned ${mib(plan.bytes)}, budget ${mib(plan.budgetBytes)}, whole estimate ${mib(plan.estimates.whole.bytes)}`);
    assert.equal(plan.budgetBytes, 2 * GIB - 256 * 2 ** 20, '2 GiB minus the default headroom');
    assert.ok(plan.estimates.whole.bytes > plan.budgetBytes, 'the whole run must not fit, or this is not a tiling test');
    assert.equal(plan.route, 'TILED');
    assert.equal(result.steps, 11 * 11 + 1, '121 tiles and the whole-map stage');
    assert.deepEqual(result.dims, [1, 32, 128, 128]);
    assert.ok(result.finite && result.max - result.min > 1, `latent range ${result.min}..${result.max}`);
    assert.ok(peakBytes > 50 * 2 ** 20, `a peak of ${mib(peakBytes)} means the measurement did not see the run`);
    assert.ok(peakBytes <= plan.bytes, `measured peak ${mib(peakBytes)} > planned ${mib(plan.bytes)}`);
    assert.ok(peakBytes <= plan.budgetBytes, `measured peak ${mib(peakBytes)} > budget ${mib(plan.budgetBytes)}`);
  });

  // taef2 (planning only): its three GroupNorm blocks run whole at latent resolution (see
  // src/models/tae-loader.ts), widening a 512x512 latent map to 256 channels. At float16 (a GPU)
  // that fits next to a tile; at float32 (this CPU) that stage alone is estimated at ~1.8 GiB (measured 1.2-1.3 GiB), so the
  // planner refuses rather than run out of memory. Tiling the GroupNorm blocks with global
  // statistics would lift this; it is not implemented.
  test('taef2 plans TILED at float16 and is refused at float32, with the reason', () => {
    const profiles = shippedProfiles('taef2')!;
    const budget = 2 * GIB - 256 * 2 ** 20;
    const device = { name: 'device', budgetBytes: budget, freeBytes: budget, waitSeconds: () => 0 };
    const request = { operation: 'encode' as const, width: 4096, height: 4096, batch: 1 };
    const half = planRoute('taef2', profiles, { ...request, dtype: 'float16' }, device, new RunStats());
    assert.equal(half.route, 'TILED');
    assert.ok(half.bytes <= budget);
    const full = planRoute('taef2', profiles, { ...request, dtype: 'float32' }, device, new RunStats());
    assert.equal(full.route, 'REJECT');
    assert.match(full.reason, /nothing fits/);
  });
});
