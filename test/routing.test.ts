/**
 * Routing decisions: on a 10 GiB card an sdxl 2048x2048 encode must not run whole; it runs tiled.
 * Checked through the planner itself and through `latentgate plan --json` as a child process.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { estimatePeakBytes } from '../src/routing/estimator.ts';
import { type DeviceView, type Plan, planRoute } from '../src/routing/planner.ts';
import { shippedProfiles } from '../src/routing/profiles.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { PROJECT_DIR } from './support/paths.ts';

const GIB = 2 ** 30;
const HEADROOM = 256 * 2 ** 20;

function device(
  budgetBytes: number,
  freeBytes = budgetBytes,
  waitSeconds: (bytes: number) => number = () => 0,
): DeviceView {
  return { name: 'gpu', budgetBytes, freeBytes, waitSeconds };
}

const SDXL_2048 = { operation: 'encode' as const, width: 2048, height: 2048, batch: 1, dtype: 'float16' as const };

function assertTiledNotWhole(plan: Pick<Plan, 'route' | 'estimates' | 'budgetBytes' | 'bytes' | 'reason'>): void {
  assert.equal(plan.route, 'TILED', plan.reason);
  assert.ok(
    plan.estimates.whole.bytes > plan.budgetBytes,
    `whole ${plan.estimates.whole.bytes} must exceed the budget ${plan.budgetBytes}`,
  );
  assert.ok(plan.estimates.tiled, 'a tiled estimate');
  assert.ok(plan.estimates.tiled.bytes <= plan.budgetBytes);
  assert.equal(plan.bytes, plan.estimates.tiled.bytes);
  assert.ok(
    plan.estimates.tiled.tile < 2048 && plan.estimates.tiled.tile % 64 === 0,
    `tile ${plan.estimates.tiled.tile}`,
  );
  assert.match(plan.reason, /over the .* budget/);
}

test('planRoute: 10 GiB card, sdxl 2048x2048 encode runs tiled, not whole', () => {
  const profiles = shippedProfiles('sdxl')!;
  const plan = planRoute('sdxl', profiles, SDXL_2048, device(10 * GIB - HEADROOM), new RunStats());
  assertTiledNotWhole(plan);
  assert.equal(plan.estimates.whole.calibrated, true, 'sdxl encode is fitted to the measured table');
  // The whole run is refused even though it would be faster: it does not fit.
  const fast = {
    expectedSeconds: (_m: string, _o: string, kind: 'LOCAL' | 'TILED') => ({ seconds: kind === 'LOCAL' ? 0.1 : 100 }),
  };
  assert.equal(planRoute('sdxl', profiles, SDXL_2048, device(10 * GIB - HEADROOM), fast).route, 'TILED');
});

test('planRoute: the same request runs whole on a 24 GiB card, and tiles keep sd15 within a small card', () => {
  const sdxl = shippedProfiles('sdxl')!;
  const big = planRoute('sdxl', sdxl, SDXL_2048, device(24 * GIB - HEADROOM), new RunStats());
  assert.equal(big.route, 'LOCAL');
  assert.ok(big.bytes <= big.budgetBytes);
  // sd15 2048x2048 on a 6 GiB card: whole needs ~11 GiB; tiled fits.
  const sd15 = planRoute(
    'sd15',
    shippedProfiles('sd15')!,
    { ...SDXL_2048 },
    device(6 * GIB - HEADROOM),
    new RunStats(),
  );
  assertTiledNotWhole(sd15);
  // Nothing fits in 300 MiB: rejected with a reason, not run.
  const none = planRoute('sdxl', sdxl, SDXL_2048, device(300 * 2 ** 20), new RunStats());
  assert.equal(none.route, 'REJECT');
  assert.match(none.reason, /nothing fits/);
});

test('planRoute: by expected completion time, a busy card tiles now rather than wait for the whole run', () => {
  const sdxl = shippedProfiles('sdxl')!;
  const request = { ...SDXL_2048, width: 1536, height: 1536 };
  const budget = 24 * GIB - HEADROOM;
  const whole = estimatePeakBytes(sdxl, request).bytes;
  // Only 6 GiB free for the next minute: the whole run would wait 60 s, tiles fit now.
  const busy = device(budget, 6 * GIB, (bytes) => (bytes <= 6 * GIB ? 0 : 60));
  assert.ok(whole > 6 * GIB);
  const times = {
    expectedSeconds: (_m: string, _o: string, kind: 'LOCAL' | 'TILED') => ({ seconds: kind === 'LOCAL' ? 2 : 3 }),
  };
  const plan = planRoute('sdxl', sdxl, request, busy, times);
  assert.equal(plan.route, 'TILED');
  assert.ok(plan.bytes <= 6 * GIB);
  assert.equal(plan.expectedSeconds, 3);
  // Idle, the whole run is quicker and is chosen.
  assert.equal(planRoute('sdxl', sdxl, request, device(budget), times).route, 'LOCAL');
});

test('latentgate plan --json (child process): 10 GiB card, sdxl 2048x2048 encode runs tiled', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-plan-'));
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(PROJECT_DIR, 'bin/latentgate.js'),
        'plan',
        '--model',
        'sdxl',
        '--op',
        'encode',
        '--width',
        '2048',
        '--height',
        '2048',
        '--device-memory',
        '10GiB',
        '--json',
      ],
      { cwd: PROJECT_DIR, env: { ...process.env, DATA_DIR: dataDir, MODELS_DIR: join(dataDir, 'no-models') } },
    );
    const plan = JSON.parse(stdout) as Plan;
    assert.equal(plan.model, 'sdxl');
    assert.equal(plan.operation, 'encode');
    assert.equal(plan.width, 2048);
    assert.equal(plan.height, 2048);
    assert.equal(typeof plan.estimates.whole.bytes, 'number');
    assert.equal(plan.budgetBytes, 10 * GIB - HEADROOM);
    assertTiledNotWhole(plan);
    // The CLI and the planner agree to the byte.
    const direct = planRoute(
      'sdxl',
      shippedProfiles('sdxl')!,
      SDXL_2048,
      { name: 'device', budgetBytes: plan.budgetBytes, freeBytes: plan.budgetBytes, waitSeconds: () => 0 },
      new RunStats(),
    );
    assert.equal(plan.bytes, direct.bytes);
    assert.deepEqual(plan.estimates, direct.estimates);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test(
  'planRoute: taef2 4096x4096 encode and decode plan TILED at float32 (CPU) on 2 GiB, ' +
    'since its latent stage runs in tiles',
  () => {
    // Before, taef2's three GroupNorm blocks ran whole at latent resolution (~1.3 GiB measured at
    // float32 for a 4096x4096 image) and this was refused; now they run in tiles with whole-map
    // statistics (src/gpu/latent-stage.ts). Measured on CPU (bench/peak-memory.ts, tiled-peak-memory):
    // peak 734-763 MiB against the 1118 MiB planned here (budget 1792 MiB).
    const profiles = shippedProfiles('taef2')!;
    const budget = 2 * GIB - HEADROOM;
    for (const operation of ['encode', 'decode'] as const) {
      for (const dtype of ['float32', 'float16'] as const) {
        const plan = planRoute(
          'taef2',
          profiles,
          { operation, width: 4096, height: 4096, batch: 1, dtype },
          device(budget),
          new RunStats(),
        );
        assert.equal(plan.route, 'TILED', `${operation} ${dtype}: ${plan.reason}`);
        assert.ok(plan.estimates.whole.bytes > budget);
        assert.ok(plan.bytes <= budget);
        // The largest tile that fits (no longer capped at the profile's 512 px default).
        const tile = plan.tiles!.tile;
        assert.ok(tile >= profiles.defaultTile, `tile ${tile}`);
        const request = { operation, width: 4096, height: 4096, batch: 1, dtype };
        assert.ok(estimatePeakBytes(profiles, { ...request, tile: tile + 64 }).bytes > budget, 'not the largest');
      }
    }
  },
);
