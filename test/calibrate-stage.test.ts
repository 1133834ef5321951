/**
 * `latentgate calibrate --operation denoise`: real measurements of a tiny in-test UNet (NCHW
 * `sample` in, two convolutions, `out_sample` out) in a pipeline folder, the stored stage profile,
 * and `plan` (CLI and GraphQL) with DENOISE / TEXT_ENCODE afterwards; the fit on synthetic peaks.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { fitStage, type StageMeasurement } from '../src/calibration/calibrate-stage.ts';
import { readPipelineNetworks } from '../src/calibration/pipeline-networks.ts';
import { GraphBuilder } from '../src/gpu/onnx-builder.ts';
import type { ModelStageProfiles } from '../src/routing/memory-profile.ts';
import { parseModelStageProfiles } from '../src/routing/profile-schema.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { estimateStageBytes, stageBytes } from '../src/routing/stage-estimator.ts';
import type { StagePlan } from '../src/routing/stage-planner.ts';
import { derivedStageProfiles } from '../src/routing/stage-profiles.ts';
import { startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR, PROJECT_DIR } from './support/paths.ts';

const run = promisify(execFile);
let root: string;
let pipeline: string;
let dataDir: string;

/** 4 -> 64 -> 4 channels, 3x3 convolutions: ~64 float32 channels alive per latent pixel and batch item. */
function tinyUnet(): Uint8Array {
  const g = new GraphBuilder();
  const w1 = new Float32Array(64 * 4 * 9).map((_, i) => ((i % 7) - 3) / 30);
  const w2 = new Float32Array(4 * 64 * 9).map((_, i) => ((i % 5) - 2) / 60);
  const hidden = g.node('Conv', ['sample', g.constant('w1', [64, 4, 3, 3], w1)], {
    kernel_shape: [3, 3],
    pads: [1, 1, 1, 1],
  });
  const act = g.node('Relu', [hidden]);
  g.node(
    'Conv',
    [act, g.constant('w2', [4, 64, 3, 3], w2)],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    'out_sample',
  );
  return g.build({ name: 'sample', channels: 4 }, { name: 'out_sample', channels: 4 }, 'tiny-unet');
}

// No attention block: the derived profile has no attention term either.
const UNET_CONFIG = { block_out_channels: [64], down_block_types: ['DownBlock2D'], in_channels: 4 };

before(() => {
  root = mkdtempSync(join(tmpdir(), 'latentgate-stage-calibrate-'));
  pipeline = join(root, 'pipe');
  dataDir = join(root, 'data');
  mkdirSync(join(pipeline, 'unet'), { recursive: true });
  writeFileSync(join(pipeline, 'unet', 'model.onnx'), tinyUnet());
  writeFileSync(join(pipeline, 'unet', 'config.json'), JSON.stringify(UNET_CONFIG));
  // External weights count towards the weights on disk (the graph does not reference this file).
  writeFileSync(join(pipeline, 'unet', 'model.onnx_data'), new Uint8Array(1000));
  mkdirSync(join(pipeline, 'text_encoder'));
  writeFileSync(join(pipeline, 'text_encoder', 'model.onnx'), new Uint8Array(2000));
});
after(() => rmSync(root, { recursive: true, force: true }));

function latentgate(...args: string[]) {
  return run(process.execPath, [join(PROJECT_DIR, 'bin/latentgate.js'), ...args], {
    cwd: PROJECT_DIR,
    env: { ...process.env, MODELS_DIR, DATA_DIR: dataDir, EXECUTION_PROVIDER: 'cpu' },
    maxBuffer: 16 * 2 ** 20,
  });
}

async function planCli(op: 'denoise' | 'textEncode'): Promise<StagePlan> {
  const { stdout } = await latentgate(
    ...['plan', '--model', 'pipe', '--op', op, '--width', '1024', '--height', '1024', '--steps', '4'],
    ...['--dtype', 'float32', '--pipeline', pipeline, '--json'],
  );
  return JSON.parse(stdout) as StagePlan;
}

test('readPipelineNetworks: files on disk with their external weights, configs, the VAE factor', () => {
  const networks = readPipelineNetworks(pipeline, 'float32');
  assert.equal(networks.unet.path, join(pipeline, 'unet', 'model.onnx'));
  assert.equal(networks.unet.bytes, tinyUnet().byteLength + 1000);
  assert.deepEqual(networks.unet.config, UNET_CONFIG);
  assert.deepEqual(networks.textEncoders, [{ path: join(pipeline, 'text_encoder', 'model.onnx'), bytes: 2000 }]);
  assert.equal(networks.downscaleFactor, 8);
  assert.throws(() => readPipelineNetworks(root, 'float32'), /has no unet\/model.onnx or transformer\/model.onnx/);
});

test('calibrate --operation denoise measures the tiny UNet, stores a calibrated stage profile, plan then uses it', async () => {
  const before = await planCli('denoise');
  assert.equal(before.route, 'LOCAL', before.reason);
  assert.equal(before.estimates.whole.calibrated, false, 'before: derived from the files');
  assert.ok(before.bytes < 256 * 2 ** 20, `derived ${before.bytes}`);
  assert.deepEqual(
    [before.stage.latentWidth, before.stage.networkBatch, before.stage.steps],
    [128, 2, 4],
    'guidance by default',
  );

  const { stdout } = await latentgate(
    ...['calibrate', '--model', 'pipe', '--operation', 'denoise', '--pipeline', pipeline],
    ...['--latent-sizes', '128,256', '--batches', '1,2', '--json'],
  );
  const report = JSON.parse(stdout) as { file: string; profiles: ModelStageProfiles; measurements: StageMeasurement[] };
  // Four fresh processes: each latent size at each batch, on the shapes the session declares.
  assert.deepEqual(
    report.measurements.map((m) => [m.latent, m.batch]),
    [
      [128, 1],
      [128, 2],
      [256, 1],
      [256, 2],
    ],
  );
  for (const m of report.measurements) {
    assert.deepEqual(m.inputs, { sample: [m.batch, 4, m.latent, m.latent] });
    assert.equal(m.dtype, 'float32');
    assert.equal(m.probe, 'process-rss');
    assert.ok(m.peakBytes > 2 ** 20 && m.peakBytes < 2 ** 30, `${m.latent}x${m.batch}: implausible ${m.peakBytes}`);
  }
  const peak = (latent: number, batch: number) =>
    report.measurements.find((m) => m.latent === latent && m.batch === batch)!.peakBytes;
  assert.ok(peak(256, 2) > peak(128, 1) + 16 * 2 ** 20, 'the peak grows with latent pixels x batch');

  const denoise = report.profiles.denoise;
  console.log(
    `  tiny UNet calibrated: ${(denoise.fixedBytes / 2 ** 20).toFixed(1)} MiB + ` +
      `${denoise.bytesPerLatentPixel.toFixed(0)} B per latent pixel (float32)`,
  );
  assert.equal(denoise.calibrated, true);
  assert.equal(denoise.dtype, 'float32');
  assert.equal(denoise.fit!.samples, 4);
  assert.equal(denoise.fit!.maxUnderestimate, 0, 'no measured size is under the stored profile');
  // 64 float32 channels: at least 256 B per latent pixel; an arena with headroom stays well under 64x that.
  assert.ok(
    denoise.bytesPerLatentPixel >= 256 && denoise.bytesPerLatentPixel < 16384,
    String(denoise.bytesPerLatentPixel),
  );
  for (const m of report.measurements) assert.ok(stageBytes(denoise, m.latent ** 2, m.batch, 'float32') >= m.peakBytes);
  assert.equal(report.profiles.textEncode.calibrated, false, 'the text encoders were not measured');
  // The derived profile the router used before must not be under what was measured.
  const derived = derivedStageProfiles('pipe', readPipelineNetworks(pipeline, 'float32')).denoise;
  for (const m of report.measurements)
    assert.ok(stageBytes(derived, m.latent ** 2, m.batch, 'float32') >= m.peakBytes, `derived under at ${m.latent}`);

  assert.equal(report.file, join(dataDir, 'profiles', 'pipe.stages.json'));
  const stored = parseModelStageProfiles(JSON.parse(readFileSync(report.file, 'utf8')));
  assert.deepEqual(new ProfileSource(join(dataDir, 'profiles')).stagesForModel('pipe'), stored);

  const afterPlan = await planCli('denoise');
  assert.equal(afterPlan.estimates.whole.calibrated, true);
  assert.equal(
    afterPlan.bytes,
    estimateStageBytes(stored.denoise, { latentWidth: 128, latentHeight: 128, batch: 2, dtype: 'float32' }).bytes,
  );
  assert.equal((await planCli('textEncode')).estimates.whole.calibrated, false);
});

test('calibrate --operation denoise refuses what it cannot measure, with usage errors', async () => {
  for (const [args, message] of [
    [['--model', 'pipe', '--operation', 'denoise'], /needs --pipeline DIR/],
    [['--model', 'pipe', '--operation', 'denoise', '--pipeline', root], /has no unet\/model.onnx/],
    [['--model', 'pipe', '--operation', 'denoise', '--pipeline', pipeline, '--latent-sizes', '64'], /two different/],
    [['--model', 'taef2', '--operation', 'encode', '--pipeline', pipeline], /--pipeline is for --operation denoise/],
  ] as const) {
    await assert.rejects(latentgate('calibrate', ...args), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2, String(error.stderr));
      assert.match(String(error.stderr), message);
      return true;
    });
  }
});

test('fitStage: quadratic where attention makes it so, linear otherwise, never under a sample', () => {
  const m = (latent: number, batch: number, peakBytes: number): StageMeasurement => ({
    model: 't',
    operation: 'denoise',
    latent,
    batch,
    dtype: 'float16',
    inputs: {},
    peakBytes,
    baselineBytes: 0,
    exact: true,
    probe: 'process-rss',
    provider: 'cpu',
    runs: 2,
    seconds: 1,
  });
  // Exactly 1e8 + batch x (1000 P + 0.01 P^2).
  const exact = (latent: number, batch: number) => {
    const p = latent * latent;
    return m(latent, batch, 1e8 + batch * (1000 * p + 0.01 * p * p));
  };
  const quadratic = fitStage([exact(32, 1), exact(64, 1), exact(96, 2), exact(128, 2)], {
    id: 't/denoise',
    margin: 1,
    weightBytes: 5e7,
  });
  assert.ok(Math.abs(quadratic.fixedBytes - 1e8) < 1e3, String(quadratic.fixedBytes));
  assert.ok(Math.abs(quadratic.bytesPerLatentPixel - 1000) < 0.01, String(quadratic.bytesPerLatentPixel));
  assert.ok(Math.abs(quadratic.attentionBytesPerLatentPixelSquared - 0.01) < 1e-6);
  assert.equal(quadratic.weightBytes, 5e7);
  assert.equal(quadratic.dtype, 'float16');
  // Two sizes: a line, scaled by the margin and raised over every sample.
  const samples = [exact(32, 1), exact(32, 2), exact(64, 1), exact(64, 2)];
  const line = fitStage(samples, { id: 't/denoise', margin: 1.25, weightBytes: 5e7 });
  assert.equal(line.attentionBytesPerLatentPixelSquared, 0);
  for (const s of samples)
    assert.ok(stageBytes({ ...line, source: '' }, s.latent ** 2, s.batch, 'float16') >= s.peakBytes);
  assert.equal(line.fit!.maxUnderestimate, 0);
  assert.throws(() => fitStage([exact(32, 1), exact(32, 1)], { id: 't', margin: 1, weightBytes: 0 }), RangeError);
});

test('plan query: DENOISE and TEXT_ENCODE plans for a family, ENCODE as before', async () => {
  const gateway = await startInProcessGateway({ MODELS_DIR, DATA_DIR: dataDir, DEVICE_MEMORY: '24GiB' });
  try {
    const response = await gateway.graphql(`{
      denoise: plan(model: "sd15", operation: DENOISE, width: 512, height: 512, steps: 20) {
        operation route bytes expectedSeconds tile estimates { whole { bytes calibrated } tiled { tile } }
        stage { steps guidance latentWidth latentHeight networkBatch secondsPerStep measured }
      }
      plain: plan(model: "sd15", operation: DENOISE, width: 512, height: 512, steps: 20, guidance: false) { bytes }
      text: plan(model: "sdxl", operation: TEXT_ENCODE, width: 1024, height: 1024) { operation route stage { steps } }
      encode: plan(model: "sd15", operation: ENCODE, width: 512, height: 512) { operation route stage { steps } }
    }`);
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const { denoise, plain, text, encode } = response.data;
    assert.equal(denoise.operation, 'DENOISE');
    assert.equal(denoise.route, 'LOCAL');
    assert.equal(denoise.tile, null);
    assert.equal(denoise.estimates.tiled, null);
    assert.equal(denoise.estimates.whole.calibrated, false);
    assert.equal(denoise.bytes, denoise.estimates.whole.bytes);
    assert.deepEqual(
      { ...denoise.stage, secondsPerStep: undefined },
      {
        steps: 20,
        guidance: true,
        latentWidth: 64,
        latentHeight: 64,
        networkBatch: 2,
        secondsPerStep: undefined,
        measured: false,
      },
    );
    assert.equal(denoise.expectedSeconds, 20 * denoise.stage.secondsPerStep);
    assert.ok(plain.bytes < denoise.bytes, 'without guidance the UNet sees half the batch');
    assert.deepEqual(text, { operation: 'TEXT_ENCODE', route: 'LOCAL', stage: { steps: 1 } });
    assert.deepEqual(encode, { operation: 'ENCODE', route: 'LOCAL', stage: null });
  } finally {
    await gateway.stop();
  }
});
