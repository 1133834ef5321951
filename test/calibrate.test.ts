/**
 * `latentgate calibrate`: real measurements of taef2 (small sizes, to stay fast), the stored
 * profile, and `plan` (CLI and GraphQL) reporting calibrated estimates afterwards.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import {
  CALIBRATION_TILE,
  type CalibrationMeasurement,
  CPU_ARENA_MARGIN,
  fitCalibration,
} from '../src/calibration/calibrate.ts';
import { estimatePeakBytes, latentStageBytes, runBytes } from '../src/routing/estimator.ts';
import type { ModelMemoryProfiles } from '../src/routing/memory-profile.ts';
import type { Plan } from '../src/routing/planner.ts';
import { parseModelMemoryProfiles } from '../src/routing/profile-schema.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { shippedProfiles } from '../src/routing/profiles.ts';
import { startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR, PROJECT_DIR } from './support/paths.ts';

const run = promisify(execFile);
let dataDir: string;

before(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'latentgate-calibrate-'));
});
after(() => rmSync(dataDir, { recursive: true, force: true }));

function latentgate(...args: string[]) {
  return run(process.execPath, [join(PROJECT_DIR, 'bin/latentgate.js'), ...args], {
    cwd: PROJECT_DIR,
    env: { ...process.env, MODELS_DIR, DATA_DIR: dataDir, EXECUTION_PROVIDER: 'cpu' },
    maxBuffer: 16 * 2 ** 20,
  });
}

async function planCli(op: 'encode' | 'decode'): Promise<Plan> {
  const { stdout } = await latentgate(
    'plan',
    '--model',
    'taef2',
    '--op',
    op,
    '--width',
    '512',
    '--height',
    '512',
    '--dtype',
    'float32',
    '--json',
  );
  return JSON.parse(stdout) as Plan;
}

test('calibrate measures taef2, stores a calibrated profile, and plan then says calibrated', async () => {
  assert.equal((await planCli('encode')).estimates.whole.calibrated, false, 'before: the derived profile');

  const { stdout } = await latentgate(
    'calibrate',
    '--model',
    'taef2',
    '--operation',
    'encode',
    '--sizes',
    '128,256',
    '--stage-sizes',
    '256,512',
    '--json',
  );
  const report = JSON.parse(stdout) as {
    file: string;
    profiles: ModelMemoryProfiles;
    measurements: CalibrationMeasurement[];
  };

  // Four fresh processes: the whole network at 128 and 256 px, the latent stage at 256 and 512.
  assert.deepEqual(
    report.measurements.map((m) => [m.stage, m.size]),
    [
      ['whole', 128],
      ['whole', 256],
      ['latent', 256],
      ['latent', 512],
    ],
  );
  for (const m of report.measurements) {
    assert.equal(m.probe, 'process-rss');
    assert.equal(m.provider, 'cpu');
    assert.ok(
      m.peakBytes > 4 * 2 ** 20 && m.peakBytes < 2 * 2 ** 30,
      `${m.stage} ${m.size}: implausible peak ${m.peakBytes}`,
    );
  }
  const [w128, w256] = report.measurements;
  assert.ok(w256.peakBytes > w128.peakBytes * 1.3, `peak must grow with size: ${w128.peakBytes} -> ${w256.peakBytes}`);
  // The shipped (derived, uncalibrated) profile the router uses before calibration must not be under
  // what was measured: whole runs, and the latent stage on its own.
  const shipped = shippedProfiles('taef2')!;
  for (const m of report.measurements) {
    // The latent stage is measured as a tiled run with CALIBRATION_TILE px tiles runs it.
    const tilePixels = Math.min(m.size, CALIBRATION_TILE) ** 2;
    const estimate =
      m.stage === 'whole'
        ? runBytes(shipped.encode, m.size * m.size, 1, 'float32')
        : latentStageBytes(shipped.encode, m.size * m.size, 1, 'float32', tilePixels);
    assert.ok(
      estimate >= m.peakBytes,
      `shipped ${m.stage} estimate at ${m.size} px ${estimate} < measured ${m.peakBytes}`,
    );
  }

  const encode = report.profiles.encode;
  console.log(
    `  taef2 encode calibrated: ${(encode.fixedBytes / 2 ** 20).toFixed(1)} MiB + ` +
      `${encode.bytesPerPixel.toFixed(0)} B/px (float32), ` +
      `latent stage ${(encode.latentStage!.fixedBytes / 2 ** 20).toFixed(1)} MiB + ` +
      `${encode.latentStage!.bytesPerPixel.toFixed(1)} B/px`,
  );
  assert.equal(encode.calibrated, true);
  assert.equal(encode.dtype, 'float32');
  assert.equal(encode.fit!.samples, 2);
  assert.equal(encode.fit!.maxUnderestimate, 0, 'no measured size is under the stored line');
  // Per-pixel cost of a 64-channel float32 network with a few live tensors: hundreds to a few thousand bytes.
  assert.ok(encode.bytesPerPixel > 200 && encode.bytesPerPixel < 5000, `bytesPerPixel ${encode.bytesPerPixel}`);
  assert.ok(encode.latentStage && encode.latentStage.bytesPerPixel > 0);
  for (const m of report.measurements.filter((x) => x.stage === 'whole'))
    assert.ok(runBytes(encode, m.size * m.size, 1, 'float32') >= m.peakBytes);
  assert.equal(report.profiles.decode.calibrated, false, 'decode was not measured, so it stays derived');

  // Stored where the gateway and the CLI read it.
  assert.equal(report.file, join(dataDir, 'profiles', 'taef2.json'));
  assert.ok(existsSync(report.file));
  const stored = parseModelMemoryProfiles(JSON.parse(readFileSync(report.file, 'utf8')));
  assert.deepEqual(new ProfileSource(join(dataDir, 'profiles')).forModel('taef2'), stored);

  const after = await planCli('encode');
  assert.equal(after.estimates.whole.calibrated, true);
  assert.equal(
    after.estimates.whole.bytes,
    estimatePeakBytes(stored, { operation: 'encode', width: 512, height: 512, batch: 1, dtype: 'float32' }).bytes,
  );
  assert.equal((await planCli('decode')).estimates.whole.calibrated, false);

  const gateway = await startInProcessGateway({ MODELS_DIR, DATA_DIR: dataDir });
  try {
    const response = await gateway.graphql(`{
      encode: plan(model: "taef2", operation: ENCODE, width: 512, height: 512) {
        estimates { whole { bytes calibrated } }
      }
      decode: plan(model: "taef2", operation: DECODE, width: 512, height: 512) { estimates { whole { calibrated } } }
    }`);
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.equal(response.data.encode.estimates.whole.calibrated, true);
    assert.equal(response.data.encode.estimates.whole.bytes, after.estimates.whole.bytes);
    assert.equal(response.data.decode.estimates.whole.calibrated, false);
  } finally {
    await gateway.stop();
  }
});

test('calibrate refuses what it cannot measure, with usage errors', async () => {
  for (const [args, message] of [
    [['--model', 'sdxl'], /needs local weights/],
    [['--model', 'taef2', '--sizes', '256'], /at least two different sizes/],
    [['--model', 'taef2', '--sizes', '250,500'], /multiples of the model's factor 8/],
    [['--model', 'taesana', '--operation', 'decode'], /no decode network/],
  ] as const) {
    await assert.rejects(latentgate('calibrate', ...args), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2, String(error.stderr));
      assert.match(String(error.stderr), message);
      return true;
    });
  }
});

test(
  'fitCalibration: fitted line x margin, raised over every sample; ' +
    'unmeasured parts restated at the measured dtype',
  () => {
    const base = shippedProfiles('taef2')!;
    const m = (stage: 'whole' | 'latent', size: number, peakBytes: number): CalibrationMeasurement => ({
      model: 'taef2',
      operation: 'encode',
      stage,
      size,
      batch: 1,
      inputDims: [1, 3, size, size],
      peakBytes,
      baselineBytes: 0,
      exact: true,
      probe: 'process-rss',
      provider: 'cpu',
      runs: 2,
      seconds: 1,
    });
    // A step like the CPU arena's: 512 px jumps above the line through the others.
    const measurements = [
      m('whole', 256, 100e6),
      m('whole', 384, 160e6),
      m('whole', 512, 330e6),
      m('whole', 768, 520e6),
    ];
    const fitted = fitCalibration(base, measurements, {
      dtype: 'float32',
      margin: CPU_ARENA_MARGIN,
      device: 'test',
      date: new Date(0),
    });
    const e = fitted.encode;
    assert.equal(e.calibrated, true);
    assert.match(e.source, /calibrated on test at 256, 384, 512, 768 px/);
    for (const s of measurements)
      assert.ok(runBytes(e, s.size * s.size, 1, 'float32') >= s.peakBytes - 1, `${s.size} px under the line`);
    assert.equal(e.fit!.maxUnderestimate, 0);
    // No latent measurements: the derived fp16 stage is kept, doubled for float32.
    assert.deepEqual(e.latentStage, {
      fixedBytes: base.encode.latentStage!.fixedBytes,
      bytesPerPixel: base.encode.latentStage!.bytesPerPixel * 2,
      tileBytesPerPixel: base.encode.latentStage!.tileBytesPerPixel! * 2,
    });
    assert.deepEqual(fitted.decode, base.decode);
    // With latent measurements the stage is fitted too.
    const withStage = fitCalibration(base, [...measurements, m('latent', 1024, 100e6), m('latent', 2048, 340e6)], {
      dtype: 'float32',
      margin: 1,
      device: 'test',
    });
    assert.ok(Math.abs(withStage.encode.latentStage!.bytesPerPixel - 240e6 / (2048 ** 2 - 1024 ** 2)) < 1);
    assert.throws(
      () => fitCalibration(base, measurements, { dtype: 'float32', margin: 0.5, device: 'test' }),
      RangeError,
    );
  },
);
