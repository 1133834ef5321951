/**
 * A device budget for tests that need a long tiled run: the smallest DEVICE_MEMORY (headroom 0)
 * at which the router runs a `width`x`height` encode TILED with tiles of at least `minTile` px,
 * found with the gateway's own planner and shipped profiles (so it follows estimator changes).
 * Start the gateway with an empty DATA_DIR so no calibrated profile changes the plan.
 */
import { ModelRegistry } from '../../src/models/registry.ts';
import { type Plan, planRoute } from '../../src/routing/planner.ts';
import { ProfileSource } from '../../src/routing/profile-source.ts';
import { RunStats } from '../../src/routing/run-stats.ts';

export async function tiledBudget(
  modelsDir: string,
  model: string,
  width: number,
  height: number,
  minTile: number,
): Promise<{ deviceMemory: string; plan: Plan }> {
  const registry = await ModelRegistry.load(modelsDir);
  const found = registry.find(model);
  if (!found) throw new Error(`model ${model} is not in ${modelsDir}`);
  const profiles = new ProfileSource(null).forModel(model, found.family);
  if (!profiles) throw new Error(`no memory profile for ${model}`);
  for (let mib = 64; mib <= 16384; mib += 16) {
    const budget = mib * 2 ** 20;
    const device = { name: 'test', budgetBytes: budget, freeBytes: budget, waitSeconds: () => 0 };
    const plan = planRoute(
      model,
      profiles,
      { operation: 'encode', width, height, batch: 1, dtype: 'float32' },
      device,
      new RunStats(),
    );
    if (plan.route === 'TILED' && plan.tiles && plan.tiles.tile >= minTile) return { deviceMemory: `${mib}MiB`, plan };
  }
  throw new Error(`no budget up to 16 GiB runs a ${width}x${height} ${model} encode tiled with ${minTile} px tiles`);
}
