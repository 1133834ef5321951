/**
 * Estimated versus measured peak memory of taef2 encode and decode at three sizes on this machine.
 * Each measurement is a fresh `latentgate calibrate --measure` process (peak resident memory growth
 * over two runs, session creation included; see src/routing/peak-memory.ts). The estimate is the
 * shipped (derived) profile at the compute dtype of the CPU device, float32, i.e. what the router
 * reserves before any calibration.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ModelRegistry } from '../src/models/registry.ts';
import type { CalibrationMeasurement } from '../src/routing/calibrate.ts';
import { estimatePeakBytes } from '../src/routing/estimator.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { MODELS_DIR } from './support.ts';

const BIN = join(import.meta.dirname, '../bin/latentgate.js');

export async function peakMemory(sizes = [256, 512, 768]) {
  const model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
  const profiles = new ProfileSource(null).forModel('taef2', model.family)!;
  const rows = [];
  for (const operation of ['encode', 'decode'] as const) {
    for (const size of sizes) {
      const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'calibrate', '--model', 'taef2', '--operation', operation, '--stage', 'whole', '--measure', String(size)], {
        env: { ...process.env, MODELS_DIR, EXECUTION_PROVIDER: 'cpu' },
      });
      const measured = JSON.parse(stdout.trim().split('\n').at(-1)!) as CalibrationMeasurement;
      const estimated = estimatePeakBytes(profiles, { operation, width: size, height: size, batch: 1, dtype: 'float32' });
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
  return { benchmark: 'peak-memory', model: 'taef2', device: 'cpu', dtype: 'float32', measure: 'peak RSS growth of a fresh process, 2 runs', rows };
}
