/**
 * Dynamic batching (src/routing/batcher.ts): concurrent encodes of the same model and size share
 * one run when the batch fits, each caller gets exactly its own latent, and failures and
 * cancellations stay with their caller.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { GatewayError } from '../src/errors.ts';
import { LocalExecutor } from '../src/gpu/local-executor.ts';
import { chooseProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import type { Nchw } from '../src/gpu/tensor.ts';
import type { ModelDefinition } from '../src/models/model.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { estimatePeakBytes } from '../src/routing/estimator.ts';
import { type BatcherOptions, LocalRunner, type Plan, Router } from '../src/routing/index.ts';
import { CapacityLedger } from '../src/routing/ledger.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { decodeTensor } from '../src/tensors/dtype.ts';
import { rgbToPlanar } from '../src/tensors/pixel-range.ts';
import { startInProcessGateway } from './support/in-process.ts';
import { maxAbsDiff } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';

const SIZE = 256;
const COUNT = 8;

/** Eight different 256x256 images: crops of astronaut-1024 from different places. */
async function crops(): Promise<Uint8Array[]> {
  const source = join(IMAGES_DIR, 'astronaut-1024.png');
  return Promise.all(
    Array.from({ length: COUNT }, async (_, i) => {
      const [left, top] = [(i % 4) * 256, Math.floor(i / 4) * 512 + 128];
      return new Uint8Array(
        await sharp(source).removeAlpha().extract({ left, top, width: SIZE, height: SIZE }).png().toBuffer(),
      );
    }),
  );
}

async function toInput(png: Uint8Array): Promise<Nchw> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    data: rgbToPlanar(data, info.width, info.height, 'zero-one'),
    dims: [1, 3, SIZE, SIZE],
  };
}

let runtime: OnnxRuntime;
let executor: LocalExecutor;
let model: ModelDefinition;
let pngs: Uint8Array[];
let inputs: Nchw[];
/** Each image encoded on its own, batch 1: what every caller must get back. */
let alone: Float32Array[];

before(async () => {
  model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
  runtime = new OnnxRuntime(await chooseProvider('auto'), 0);
  executor = new LocalExecutor(runtime);
  pngs = await crops();
  inputs = await Promise.all(pngs.map(toInput));
  alone = [];
  for (const input of inputs) alone.push((await executor.run(model, 'encode', input, undefined)).data);
});
after(async () => runtime?.close());

function routerWithBudget(budgetBytes: number, batching?: BatcherOptions): Router {
  const ledger = new CapacityLedger({ budgetBytes, maxQueueLength: 64, name: 'local:test' });
  return new Router(new ProfileSource(null), new LocalRunner(executor, ledger, new RunStats()), { batching });
}

/** The batcher beneath a router over the real executor with `budgetBytes` of device memory. */
function batcherWithBudget(budgetBytes: number, options: BatcherOptions) {
  return routerWithBudget(budgetBytes, options).batcher!;
}

function assertOwnLatents(results: { output: Nchw }[]): number {
  assert.equal(results.length, COUNT);
  let worst = 0;
  results.forEach((r, i) => {
    assert.deepEqual(r.output.dims, [1, 32, SIZE / 8, SIZE / 8]);
    // Its own latent: identical to encoding it alone, and far from every other image's.
    const own = maxAbsDiff(r.output.data, alone[i]);
    assert.ok(own <= 1e-5, `caller ${i}: max abs diff ${own} from its own latent`);
    worst = Math.max(worst, own);
    for (let j = 0; j < COUNT; j++)
      if (j !== i)
        assert.ok(maxAbsDiff(r.output.data, alone[j]) > 0.1, `caller ${i} got something like image ${j}'s latent`);
  });
  return worst;
}

describe('batcher over the real executor (taef2, 256x256)', () => {
  test(
    '8 concurrent distinct images: one run, ' + 'each caller gets exactly its own latent and the batch plan',
    async () => {
      const batcher = batcherWithBudget(4 * 2 ** 30, { windowMs: 20, maxBatch: 16 });
      const routed: Plan[][] = inputs.map(() => []);
      const results = await Promise.all(
        inputs.map((input, i) => batcher.encode(model, input, { onRouted: (p) => routed[i].push(p) })),
      );
      console.log(`  batch of ${COUNT} vs each image alone: max abs diff ${assertOwnLatents(results)}`);
      assert.deepEqual(batcher.stats, {
        requests: COUNT,
        runs: 1,
        batchedRuns: 1,
        batchedRequests: COUNT,
        largestBatch: COUNT,
      });
      for (const [i, r] of results.entries()) {
        assert.equal(r.plan.route, 'LOCAL');
        assert.equal(r.plan.batch, COUNT, 'the result reports the batch it ran in');
        assert.equal(r.plan.bytes, r.plan.estimates.whole.bytes);
        assert.deepEqual(
          routed[i].map((p) => p.batch),
          [COUNT],
        );
      }
      // The plan is the batch's: eight images' worth of activations.
      const one = routerWithBudget(4 * 2 ** 30).plan(model, 'encode', SIZE, SIZE, 1).bytes;
      assert.ok(results[0].plan.bytes > 4 * one, `batch plan ${results[0].plan.bytes} vs single ${one}`);
    },
  );

  test('a batch whose estimate does not fit is split into the largest batches that do', async () => {
    const profiles = new ProfileSource(null).forModel('taef2', model.family)!;
    const four = estimatePeakBytes(profiles, {
      operation: 'encode',
      width: SIZE,
      height: SIZE,
      batch: 4,
      dtype: 'float32',
    }).bytes;
    const five = estimatePeakBytes(profiles, {
      operation: 'encode',
      width: SIZE,
      height: SIZE,
      batch: 5,
      dtype: 'float32',
    }).bytes;
    assert.ok(five > four + 1);
    const batcher = batcherWithBudget(four + 1, { windowMs: 20, maxBatch: 16 });
    const results = await Promise.all(inputs.map((input) => batcher.encode(model, input)));
    assertOwnLatents(results);
    assert.equal(batcher.stats.runs, 2);
    assert.equal(batcher.stats.largestBatch, 4);
    for (const r of results) {
      assert.equal(r.plan.batch, 4);
      assert.ok(r.plan.bytes <= four + 1);
    }
  });

  test('MAX_BATCH caps a batch; a lone request runs with its own hooks as without batching', async () => {
    const batcher = batcherWithBudget(4 * 2 ** 30, { windowMs: 20, maxBatch: 3 });
    const results = await Promise.all(inputs.map((input) => batcher.encode(model, input)));
    assertOwnLatents(results);
    assert.deepEqual(
      results.map((r) => r.plan.batch),
      [3, 3, 3, 3, 3, 3, 2, 2],
    );
    assert.equal(batcher.stats.runs, 3);

    const progress: Array<[number, number]> = [];
    const started: number[] = [];
    const lone = await batcher.encode(model, inputs[0], {
      onProgress: (d, t) => progress.push([d, t]),
      onStarted: (t) => started.push(t),
    });
    assert.equal(lone.plan.batch, 1);
    assert.deepEqual(progress, [[1, 1]]);
    assert.deepEqual(started, [1]);
    assert.ok(maxAbsDiff(lone.output.data, alone[0]) <= 1e-5);
  });

  test('a caller that cancels gets CANCELLED; the others still get their latents', async () => {
    const batcher = batcherWithBudget(4 * 2 ** 30, { windowMs: 30, maxBatch: 16 });
    const controller = new AbortController();
    const pending = inputs.map((input, i) =>
      batcher.encode(model, input, i === 2 ? { signal: controller.signal } : {}),
    );
    controller.abort();
    const settled = await Promise.allSettled(pending);
    const rejected = settled[2];
    assert.equal(rejected.status, 'rejected');
    assert.equal(((rejected as PromiseRejectedResult).reason as GatewayError).code, 'CANCELLED');
    settled.forEach((s, i) => {
      if (i === 2) return;
      assert.equal(s.status, 'fulfilled', `caller ${i}`);
      const r = (s as PromiseFulfilledResult<{ output: Nchw; plan: Plan }>).value;
      assert.ok(maxAbsDiff(r.output.data, alone[i]) <= 1e-5);
      assert.equal(r.plan.batch, COUNT - 1);
    });
    // An already-aborted signal is refused before it joins a batch.
    await assert.rejects(
      batcher.encode(model, inputs[0], { signal: AbortSignal.abort() }),
      (e: unknown) => e instanceof GatewayError && e.code === 'CANCELLED',
    );
  });

  test('BATCH_WINDOW_MS=0 turns batching off: one run per request', async () => {
    const batcher = batcherWithBudget(4 * 2 ** 30, { windowMs: 0, maxBatch: 16 });
    const results = await Promise.all(inputs.slice(0, 3).map((input) => batcher.encode(model, input)));
    assert.deepEqual(
      results.map((r) => r.plan.batch),
      [1, 1, 1],
    );
    assert.equal(batcher.stats.runs, 3);
  });
});

test('a failing batched run is retried per caller, so one bad input fails only its own request', async () => {
  // A stand-in executor beneath a real router: batches always fail; a single run fails only for the input marked bad.
  const bad = 3;
  let singles = 0;
  const failing = {
    provider: 'cpu',
    progressSteps: () => 1,
    run: async (_m: unknown, _op: unknown, input: Nchw) => {
      if (input.dims[0] > 1) throw new Error('the batched run failed');
      singles++;
      if (input.data[0] === bad) throw new GatewayError('INTERNAL', 'bad input');
      return input;
    },
  } as unknown as LocalExecutor;
  const ledger = new CapacityLedger({ budgetBytes: 4 * 2 ** 30, maxQueueLength: 64, name: 'local:test' });
  const router = new Router(new ProfileSource(null), new LocalRunner(failing, ledger, new RunStats()), {
    batching: { windowMs: 10, maxBatch: 16 },
  });
  const batcher = router.batcher!;
  // Planned with taef2's shipped profile; nothing of the model itself is run.
  const fake = { id: 'taef2', family: model.family, format: 'tae-safetensors', encoder: {} } as ModelDefinition;
  const settled = await Promise.allSettled(
    Array.from({ length: 5 }, (_, i) => batcher.encode(fake, { data: new Float32Array([i]), dims: [1, 1, 1, 1] })),
  );
  assert.equal(singles, 5);
  settled.forEach((s, i) => {
    if (i === bad) {
      assert.equal(s.status, 'rejected');
      assert.match(String((s as PromiseRejectedResult).reason.message), /bad input/);
    } else {
      assert.equal(s.status, 'fulfilled');
      assert.equal((s as PromiseFulfilledResult<{ output: Nchw }>).value.output.data[0], i);
    }
  });
});

test(
  'GraphQL: 8 concurrent encodes on a gateway with a batching window ' + 'share runs and get their own latents',
  async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-batching-'));
    const gateway = await startInProcessGateway({
      MODELS_DIR,
      DATA_DIR: dataDir,
      DEVICE_MEMORY: '4GiB',
      BATCH_WINDOW_MS: '200',
    });
    try {
      const query =
        'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape data } ' +
        'route { route batch bytes } } }';
      const responses = await Promise.all(
        pngs.map((png) =>
          gateway.graphql(query, { input: { model: 'taef2', image: { base64: Buffer.from(png).toString('base64') } } }),
        ),
      );
      const batches: number[] = [];
      responses.forEach((response, i) => {
        assert.equal(response.errors, undefined, JSON.stringify(response.errors));
        const { latent, route } = response.data.encode;
        assert.equal(route.route, 'LOCAL');
        batches.push(route.batch);
        const own = maxAbsDiff(decodeTensor(Buffer.from(latent.data, 'base64'), 'float32'), alone[i]);
        assert.ok(own <= 1e-5, `request ${i}: max abs diff ${own} from its own latent`);
      });
      console.log(`  batch sizes reported by the 8 results: ${batches.join(', ')}`);
      // Fewer runs than requests: every result reports the size of the batch it ran in.
      const runs = batches.reduce((sum, b) => sum + 1 / b, 0);
      assert.ok(runs < COUNT - 0.5, `${runs.toFixed(2)} runs for ${COUNT} requests`);
    } finally {
      await gateway.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
