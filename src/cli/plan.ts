/** `latentgate plan`: the router's decision for one request, without running anything. */
import { join } from 'node:path';
import { z } from 'zod';
import { loadConfig } from '../config/config.js';
import { byteSize, formatBytes } from '../config/units.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { ModelRegistry } from '../models/registry.js';
import { planRoute } from '../routing/planner.js';
import { ProfileSource } from '../routing/profile-source.js';
import { RunStats } from '../routing/run-stats.js';
import { FLOAT_DTYPES } from '../tensors/dtype.js';
import { parseCommandLine, positiveInteger, switchFlag, UsageError } from './args.js';

export async function planCommand(argv: string[]): Promise<void> {
  const config = loadConfig();
  const { flags } = parseCommandLine(argv, {
    model: z.string(),
    op: z.enum(['encode', 'decode']),
    width: positiveInteger(),
    height: positiveInteger(),
    batch: positiveInteger().default(1),
    // Planning is usually for a GPU, where VAEs run in half precision.
    dtype: z.enum(FLOAT_DTYPES).default('float16'),
    'device-memory': byteSize(config.headroomBytes + 1).default(config.deviceMemoryBytes),
    json: switchFlag(),
  });
  const { model: modelId, op: operation, width, height, batch, dtype, 'device-memory': deviceMemory } = flags;

  const registry = await ModelRegistry.load(config.modelsDir);
  const local = registry.find(modelId);
  const family = local?.family ?? (isFamilyId(modelId) ? FAMILIES[modelId] : undefined);
  const profiles = family && new ProfileSource(join(config.dataDir, 'profiles')).forModel(modelId, family);
  if (!profiles) {
    throw new UsageError(
      `unknown model "${modelId}"; ` +
        `known: ${[...registry.list().map((m) => m.id), ...Object.keys(FAMILIES)].join(', ')}`,
    );
  }
  const budget = deviceMemory - config.headroomBytes;
  const plan = planRoute(
    modelId,
    profiles,
    { operation, width, height, batch, dtype },
    { name: 'device', budgetBytes: budget, freeBytes: budget, waitSeconds: () => 0 },
    new RunStats(),
  );
  if (flags.json) {
    console.log(JSON.stringify(plan));
    return;
  }
  console.log(`${plan.route}: ${plan.reason}`);
  console.log(
    `  whole: ${formatBytes(plan.estimates.whole.bytes)}${plan.estimates.whole.calibrated ? '' : ' (uncalibrated)'}`,
  );
  if (plan.estimates.tiled)
    console.log(`  tiled: ${formatBytes(plan.estimates.tiled.bytes)} with ${plan.estimates.tiled.tile} px tiles`);
}
