/**
 * The text-encode and denoise stages: their memory estimates, plans (fits, does not fit, guidance
 * doubling the batch, upstream when sooner) and LocalRunner.hold's one reservation across a loop.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import type { LocalExecutor } from '../src/gpu/local-executor.ts';
import { CapacityLedger } from '../src/routing/ledger.ts';
import { LocalRunner } from '../src/routing/local-runner.ts';
import type { PipelineNetworks, StageProfile } from '../src/routing/memory-profile.ts';
import type { DeviceView, UpstreamView } from '../src/routing/planner.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { Router } from '../src/routing/router.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { estimateStageBytes } from '../src/routing/stage-estimator.ts';
import { planStage, type StagePlanRequest } from '../src/routing/stage-planner.ts';
import { derivedStageProfiles, STAGE_RUNTIME_BYTES, shippedStageProfiles } from '../src/routing/stage-profiles.ts';

const GIB = 2 ** 30;
const MIB = 2 ** 20;

function device(budgetBytes: number, waitSeconds: (bytes: number) => number = () => 0): DeviceView {
  return { name: 'local:test', budgetBytes, freeBytes: budgetBytes, waitSeconds };
}

const PROFILE: StageProfile = {
  id: 't/denoise',
  fixedBytes: 1000,
  weightBytes: 600,
  bytesPerBatchItem: 7,
  bytesPerLatentPixel: 10,
  attentionBytesPerLatentPixelSquared: 0.5,
  dtype: 'float16',
  calibrated: false,
  source: 'test',
};

test('estimateStageBytes: fixed + batch x (item + pixels + attention pixels^2), scaled by dtype', () => {
  const at = (latentWidth: number, latentHeight: number, batch: number, dtype: 'float16' | 'float32') =>
    estimateStageBytes(PROFILE, { latentWidth, latentHeight, batch, dtype }).bytes;
  // 8x4 latents: P = 32; per item 7 + 320 + 0.5 x 1024 = 839.
  assert.equal(at(8, 4, 1, 'float16'), 1000 + 839);
  assert.equal(at(8, 4, 2, 'float16'), 1000 + 2 * 839);
  // float32: weights (600) and activations double, the other 400 fixed bytes do not.
  assert.equal(at(8, 4, 2, 'float32'), 400 + 1200 + 4 * 839);
  assert.equal(at(8, 4, 1, 'float16'), at(4, 8, 1, 'float16'));
  for (const bad of [
    { latentWidth: 0, latentHeight: 4, batch: 1 },
    { latentWidth: 4, latentHeight: 4, batch: 1.5 },
  ])
    assert.throws(() => estimateStageBytes(PROFILE, { ...bad, dtype: 'float16' }), RangeError);
});

const NETWORKS: PipelineNetworks = {
  textEncoders: [
    { path: '/p/text_encoder/model.onnx', bytes: 246 * MIB },
    { path: '/p/text_encoder_2/model.onnx', bytes: 1300 * MIB, config: { hidden_size: 1280, num_hidden_layers: 32 } },
  ],
  unet: { path: '/p/unet/model.onnx', bytes: 5 * GIB, config: { block_out_channels: [320, 640, 1280] } },
  dtype: 'float16',
  downscaleFactor: 8,
};

test('derived stage profiles: weights are the files on disk, activations from the configs, uncalibrated', () => {
  const p = derivedStageProfiles('pipe', NETWORKS);
  assert.equal(p.model, 'pipe');
  assert.equal(p.textEncode.weightBytes, 1546 * MIB);
  assert.equal(p.textEncode.fixedBytes, 1546 * MIB + STAGE_RUNTIME_BYTES);
  assert.equal(p.denoise.weightBytes, 5 * GIB);
  for (const s of [p.textEncode, p.denoise]) {
    assert.equal(s.calibrated, false);
    assert.equal(s.dtype, 'float16');
    assert.match(s.source, /^derived: .*uncalibrated until measured$/);
  }
  // The text encoders do not grow with the image; the UNet does, with attention scores over its tokens.
  assert.equal(p.textEncode.bytesPerLatentPixel, 0);
  assert.ok(p.textEncode.bytesPerBatchItem > 1 * MIB && p.textEncode.bytesPerBatchItem < 64 * MIB);
  assert.ok(p.denoise.bytesPerLatentPixel > 0 && p.denoise.attentionBytesPerLatentPixelSquared > 0);
  // A wider UNet costs more per latent pixel.
  const wide = derivedStageProfiles('pipe', {
    ...NETWORKS,
    unet: { ...NETWORKS.unet, config: { block_out_channels: [640, 1280, 1280] } },
  });
  assert.ok(wide.denoise.bytesPerLatentPixel > p.denoise.bytesPerLatentPixel);
  // Families without a folder: parameter counts at fp16 (SD 1.5's UNet is 859.5M parameters).
  const sd15 = shippedStageProfiles('sd15')!;
  assert.equal(sd15.denoise.weightBytes, 859_520_964 * 2);
  assert.equal(shippedStageProfiles('flux1'), undefined);
});

const times = (secondsPerCall: number) => ({
  expectedStageSeconds: (_model: string, _op: string, _work: number) => ({ seconds: secondsPerCall, measured: true }),
});

const SD15_512: StagePlanRequest = {
  operation: 'denoise',
  width: 512,
  height: 512,
  batch: 1,
  steps: 20,
  guidance: true,
};

test('planStage: LOCAL when it fits, expected seconds = wait + steps x seconds per step', () => {
  const profiles = shippedStageProfiles('sd15')!;
  const plan = planStage(
    'sd15',
    profiles,
    SD15_512,
    device(24 * GIB, () => 3),
    times(0.25),
  );
  assert.equal(plan.route, 'LOCAL', plan.reason);
  assert.equal(plan.target, 'local:test');
  assert.equal(plan.operation, 'denoise');
  assert.equal(plan.expectedSeconds, 3 + 20 * 0.25);
  assert.deepEqual(plan.stage, {
    steps: 20,
    guidance: true,
    latentWidth: 64,
    latentHeight: 64,
    networkBatch: 2,
    secondsPerStep: 0.25,
    measured: true,
  });
  const expected = estimateStageBytes(profiles.denoise, {
    latentWidth: 64,
    latentHeight: 64,
    batch: 2,
    dtype: 'float16',
  });
  assert.equal(plan.bytes, expected.bytes);
  assert.deepEqual(plan.estimates, { whole: { bytes: expected.bytes, calibrated: false }, tiled: null });
  assert.equal(plan.dtype, 'float16');
  // The text encoders: one call, independent of the image size.
  const text = planStage('sd15', profiles, { ...SD15_512, operation: 'textEncode' }, device(24 * GIB), times(0.5));
  assert.equal(text.route, 'LOCAL');
  assert.equal(text.expectedSeconds, 0.5);
  assert.equal(text.stage.steps, 1);
  const bigger = planStage(
    'sd15',
    profiles,
    { ...SD15_512, operation: 'textEncode', width: 1024, height: 1024 },
    device(24 * GIB),
    times(0.5),
  );
  assert.equal(bigger.bytes, text.bytes);
});

test('planStage: guidance doubles the network batch; a stage that does not fit is REJECTed naming the bytes', () => {
  const profiles = shippedStageProfiles('sd15')!;
  const at = (batch: number) =>
    estimateStageBytes(profiles.denoise, { latentWidth: 64, latentHeight: 64, batch, dtype: 'float16' }).bytes;
  const budget = Math.floor((at(1) + at(2)) / 2);
  const plain = planStage('sd15', profiles, { ...SD15_512, guidance: false }, device(budget), times(0.1));
  assert.equal(plain.route, 'LOCAL', plain.reason);
  assert.equal(plain.bytes, at(1));
  assert.equal(plain.stage.networkBatch, 1);
  const guided = planStage('sd15', profiles, SD15_512, device(budget), times(0.1));
  assert.equal(guided.route, 'REJECT');
  assert.equal(guided.bytes, 0);
  assert.equal(guided.estimates.whole.bytes, at(2));
  assert.ok(guided.reason.includes(`(${at(2)} bytes)`), guided.reason);
  assert.ok(guided.reason.includes(`(${budget} bytes) budget of local:test`), guided.reason);
  assert.match(guided.reason, /^nothing fits: denoise at 64x64 latents, network batch 2 \(guidance doubles it\) needs/);
});

function upstream(name: string, seconds: number, healthy = true): UpstreamView {
  return { name, healthy, maxPixels: null, expectedSeconds: () => seconds };
}

test('planStage: an upstream is preferred when the local device would wait longer, and takes what does not fit', () => {
  const profiles = shippedStageProfiles('sd15')!;
  const upstreams = [upstream('upstream:sick', 1, false), upstream('upstream:a', 10)];
  const busy = planStage(
    'sd15',
    profiles,
    SD15_512,
    device(24 * GIB, () => 30),
    times(0.25),
    { upstreams },
  );
  assert.equal(busy.route, 'UPSTREAM');
  assert.equal(busy.target, 'upstream:a');
  assert.equal(busy.bytes, 0);
  assert.match(busy.reason, /expected sooner than local on local:test \(35\.00 s\)/);
  const idle = planStage('sd15', profiles, SD15_512, device(24 * GIB), times(0.25), { upstreams });
  assert.equal(idle.route, 'LOCAL', 'no wait: 5 s locally beats 10 s upstream');
  const small = planStage('sd15', profiles, SD15_512, device(GIB), times(0.25), { upstreams });
  assert.equal(small.route, 'UPSTREAM');
  assert.match(small.reason, /nothing fits local:test: denoise .* needs/);
  const none = planStage('sd15', profiles, SD15_512, device(GIB), times(0.25), {
    upstreams: [upstream('upstream:sick', 1, false)],
  });
  assert.equal(none.route, 'REJECT');
  assert.match(none.reason, /none of its 1 upstream endpoint\(s\) is healthy/);
  const remote = planStage('sd15', profiles, SD15_512, device(24 * GIB), times(0.25), { local: false });
  assert.equal(remote.route, 'REJECT');
  assert.match(remote.reason, /runs denoise only upstream; no upstream endpoint is configured/);
});

// hold() never runs a network itself: the executor only names the device.
const EXECUTOR = { provider: 'cpu' } as LocalExecutor;

function router(budgetBytes: number, profilesDir: string | null = null) {
  const ledger = new CapacityLedger({ budgetBytes, maxQueueLength: 8, name: 'local:test' });
  const runner = new LocalRunner(EXECUTOR, ledger, new RunStats());
  return { ledger, runner, router: new Router(new ProfileSource(profilesDir), runner) };
}

test('Router.planStage: the pipeline networks, else a stored calibration wins over them, else the family', () => {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-stages-'));
  try {
    const { router: r } = router(64 * GIB, dir);
    const request = { width: 512, height: 512, batch: 1, steps: 4, guidance: true };
    const fromFiles = r.planStage({ id: 'pipe', networks: NETWORKS }, 'denoise', request);
    assert.equal(fromFiles.estimates.whole.calibrated, false);
    assert.ok(fromFiles.bytes > 5 * GIB);
    const family = r.planStage({ id: 'mine', family: { id: 'sdxl' } }, 'textEncode', request);
    assert.equal(family.route, 'LOCAL');
    assert.ok(family.bytes > 1.5 * GIB && family.bytes < 2 * GIB, String(family.bytes));
    const stored = derivedStageProfiles('pipe', NETWORKS);
    stored.denoise = { ...stored.denoise, fixedBytes: 6 * GIB, calibrated: true, source: 'measured' };
    new ProfileSource(dir).saveStages(stored);
    const calibrated = r.planStage({ id: 'pipe', networks: NETWORKS }, 'denoise', request);
    assert.equal(calibrated.estimates.whole.calibrated, true);
    assert.ok(calibrated.bytes > fromFiles.bytes);
    assert.throws(
      () => r.planStage({ id: 'unknown' }, 'denoise', request),
      (e: unknown) =>
        e instanceof GatewayError &&
        e.code === 'UNSUPPORTED_OPERATION' &&
        /no memory profile .* denoise stage of model "unknown"/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('LocalRunner.hold: one reservation across the loop, queued like a run, released on cancel', async () => {
  const { ledger, runner, router: r } = router(8 * GIB);
  const request = { width: 512, height: 512, batch: 1, steps: 3, guidance: true };
  const plan = r.planStage({ id: 'sd15', family: { id: 'sd15' } }, 'denoise', request);
  assert.equal(plan.route, 'LOCAL', plan.reason);
  assert.equal(plan.stage.measured, false);

  // Three steps under one reservation; each step's time feeds the stats.
  const events: string[] = [];
  const { result, seconds } = await runner.hold(plan, { onStarted: (n) => events.push(`started ${n}`) }, async (h) => {
    for (let step = 1; step <= 3; step++) {
      assert.equal(ledger.snapshot().reservedBytes, plan.bytes, 'held for every step');
      await new Promise((resolve) => setTimeout(resolve, 20));
      h.stepDone();
    }
    return 'latent';
  });
  assert.equal(result, 'latent');
  assert.ok(seconds >= 0.06);
  assert.deepEqual(events, ['started 3']);
  assert.equal(ledger.snapshot().reservedBytes, 0);
  const measured = r.planStage({ id: 'sd15', family: { id: 'sd15' } }, 'denoise', request);
  assert.equal(measured.stage.measured, true);
  assert.ok(
    measured.stage.secondsPerStep > 0.015 && measured.stage.secondsPerStep < 1,
    String(measured.stage.secondsPerStep),
  );

  // Queued behind another reservation, then cancelled while waiting: CANCELLED, nothing held.
  const blocker = await ledger.reserve({ bytes: ledger.budgetBytes - plan.bytes + 1 });
  const controller = new AbortController();
  const positions: number[] = [];
  let ran = false;
  const queued = runner.hold(plan, { signal: controller.signal, onQueued: (p) => positions.push(p) }, async () => {
    ran = true;
  });
  assert.deepEqual(positions, [1]);
  controller.abort();
  await assert.rejects(queued, (e: unknown) => e instanceof GatewayError && e.code === 'CANCELLED');
  assert.equal(ran, false);
  assert.equal(ledger.snapshot().queued, 0);
  blocker.release();
  assert.equal(ledger.snapshot().reservedBytes, 0);

  // Cancelled mid-loop: the work stops at its next step, the reservation is freed.
  const mid = new AbortController();
  let steps = 0;
  await assert.rejects(
    runner.hold(plan, { signal: mid.signal }, async (h) => {
      for (;;) {
        if (h.signal?.aborted) throw new GatewayError('CANCELLED', 'stopped at step');
        steps++;
        if (steps === 2) mid.abort();
        h.stepDone();
      }
    }),
    /stopped at step/,
  );
  assert.equal(steps, 2);
  assert.equal(ledger.snapshot().reservedBytes, 0);

  // An aborted signal at admission: the work never starts.
  const early = new AbortController();
  early.abort();
  await assert.rejects(
    runner.hold(plan, { signal: early.signal }, async () => assert.fail('must not run')),
    {
      code: 'CANCELLED',
    },
  );
  const upstreamPlan = { ...plan, route: 'UPSTREAM' as const };
  await assert.rejects(
    runner.hold(upstreamPlan, {}, async () => 0),
    /cannot hold a UPSTREAM plan/,
  );
  assert.equal(ledger.snapshot().reservedBytes, 0);
});
