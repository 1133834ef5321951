/**
 * peakMemory: estimated versus measured peak memory of taef2 encode and decode at three sizes on this machine.
 * Each measurement is a fresh `latentgate calibrate --measure` process (peak resident memory growth
 * over two runs, session creation included; see src/calibration/peak-memory.ts). The estimate is the
 * shipped (derived) profile at the compute dtype of the CPU device, float32, i.e. what the router
 * reserves before any calibration.
 *
 * tiledPeakMemory: a taef2 4096x4096 encode on a 2 GiB CPU budget (default 256 MiB headroom),
 * planned and run through the router in a fresh process (test/support/tiled-memory-child.ts): the
 * route (TILED), the measured peak RSS growth against the plan and the budget, and the run time.
 * Minutes on 2 cores, so not part of the test suite.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CalibrationMeasurement } from '../src/calibration/calibrate.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { estimatePeakBytes } from '../src/routing/estimator.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { measureTiledEncode } from '../test/support/tiled-memory.ts';
import { MODELS_DIR } from './support.ts';

const BIN = join(import.meta.dirname, '../bin/latentgate.js');

export async function peakMemory(sizes = [256, 512, 768]) {
  const model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
  const profiles = new ProfileSource(null).forModel('taef2', model.family)!;
  const rows = [];
  for (const operation of ['encode', 'decode'] as const) {
    for (const size of sizes) {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [BIN, 'calibrate', '--model', 'taef2', '--operation', operation, '--stage', 'whole', '--measure', String(size)],
        {
          env: { ...process.env, MODELS_DIR, EXECUTION_PROVIDER: 'cpu' },
        },
      );
      const measured = JSON.parse(stdout.trim().split('\n').at(-1)!) as CalibrationMeasurement;
      const estimated = estimatePeakBytes(profiles, {
        operation,
        width: size,
        height: size,
        batch: 1,
        dtype: 'float32',
      });
      rows.push({
        operation,
        size: `${size}x${size}`,
        estimatedMiB: +(estimated.bytes / 2 ** 20).toFixed(1),
        measuredMiB: +(measured.peakBytes / 2 ** 20).toFixed(1),
        estimateOverMeasured: +(estimated.bytes / measured.peakBytes).toFixed(3),
        calibrated: estimated.calibrated,
        exact: measured.exact,
      });
    }
  }
  return {
    benchmark: 'peak-memory',
    model: 'taef2',
    device: 'cpu',
    dtype: 'float32',
    measure: 'peak RSS growth of a fresh process, 2 runs',
    rows,
  };
}

export async function tiledPeakMemory(model = 'taef2', size = 4096, budget = '2GiB') {
  const r = await measureTiledEncode(model, size, budget, { ...process.env, MODELS_DIR });
  const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
  return {
    benchmark: 'tiled-peak-memory',
    model,
    operation: 'encode',
    size: `${size}x${size}`,
    device: 'cpu',
    dtype: r.plan.dtype,
    route: r.plan.route,
    tile: r.plan.tiles?.tile,
    steps: r.steps,
    seconds: +r.seconds.toFixed(1),
    measuredPeakMiB: mib(r.peakBytes),
    plannedMiB: mib(r.plan.bytes),
    budgetMiB: mib(r.plan.budgetBytes),
    withinPlan: r.peakBytes <= r.plan.bytes,
    withinBudget: r.peakBytes <= r.plan.budgetBytes,
    exact: r.exact,
    measure: 'peak RSS growth of a fresh process over one run',
  };
}
