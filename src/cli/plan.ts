/** `latentgate plan`: the router's decision for one request, without running anything. */
import { join } from 'node:path';
import { loadConfig } from '../config/config.js';
import { formatBytes, parseBytes } from '../config/units.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { ModelRegistry } from '../models/registry.js';
import { ProfileSource } from '../routing/profile-source.js';
import { planRoute } from '../routing/router.js';
import { RunStats } from '../routing/run-stats.js';
import { FLOAT_DTYPES, isFloatDType } from '../tensors/dtype.js';
import { integerFlag, type ParsedArgs, requiredFlag, stringFlag, UsageError } from './args.js';

export async function planCommand(args: ParsedArgs): Promise<void> {
  const config = loadConfig();
  const modelId = requiredFlag(args, 'model');
  const operation = requiredFlag(args, 'op');
  if (operation !== 'encode' && operation !== 'decode')
    throw new UsageError(`--op must be encode or decode; got "${operation}"`);
  const width = integerFlag(args, 'width');
  const height = integerFlag(args, 'height');
  const batch = integerFlag(args, 'batch', 1);
  // Planning is usually for a GPU, where VAEs run in half precision.
  const dtype = stringFlag(args, 'dtype') ?? 'float16';
  if (!isFloatDType(dtype)) throw new UsageError(`--dtype must be one of ${FLOAT_DTYPES.join(', ')}; got "${dtype}"`);
  const memoryText = stringFlag(args, 'device-memory');
  const deviceMemory = memoryText === undefined ? config.deviceMemoryBytes : parseBytes(memoryText);
  if (deviceMemory === null) throw new UsageError(`--device-memory must be a size such as 10GiB; got "${memoryText}"`);
  if (deviceMemory <= config.headroomBytes)
    throw new UsageError(
      `--device-memory ${memoryText} is not above the ${formatBytes(config.headroomBytes)} headroom`,
    );

  const registry = await ModelRegistry.load(config.modelsDir);
  const local = registry.find(modelId);
  const family = local?.family ?? (isFamilyId(modelId) ? FAMILIES[modelId] : undefined);
  const profiles = family && new ProfileSource(join(config.dataDir, 'profiles')).forModel(modelId, family);
  if (!profiles) {
    throw new UsageError(
      `unknown model "${modelId}"; known: ${[...registry.list().map((m) => m.id), ...Object.keys(FAMILIES)].join(', ')}`,
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
  if (args.flags.has('json')) {
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
