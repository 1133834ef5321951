/**
 * `latentgate plan`: the router's decision for one request, without running anything. `--op
 * textEncode|denoise` plans an img2img stage (`--steps`, `--no-guidance`; `--pipeline DIR` derives
 * its profile from a pipeline folder's network files when there is no calibration for the model).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { readPipelineNetworks } from '../calibration/pipeline-networks.js';
import { loadConfig } from '../config/config.js';
import { byteSize, formatBytes } from '../config/units.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { loadModels } from '../models/load.js';
import { isStageOperation, STAGE_OPERATIONS } from '../routing/memory-profile.js';
import { type DeviceView, planRoute } from '../routing/planner.js';
import { ProfileSource } from '../routing/profile-source.js';
import { RunStats } from '../routing/run-stats.js';
import { planStage } from '../routing/stage-planner.js';
import { FLOAT_DTYPES } from '../tensors/dtype.js';
import { parseCommandLine, positiveInteger, switchFlag, UsageError } from './args.js';

export async function planCommand(argv: string[]): Promise<void> {
  const config = loadConfig();
  const { flags } = parseCommandLine(argv, {
    model: z.string(),
    op: z.enum(['encode', 'decode', ...STAGE_OPERATIONS]),
    width: positiveInteger(),
    height: positiveInteger(),
    batch: positiveInteger().default(1),
    // Planning is usually for a GPU, where VAEs run in half precision.
    dtype: z.enum(FLOAT_DTYPES).default('float16'),
    'device-memory': byteSize(config.headroomBytes + 1).default(config.deviceMemoryBytes),
    // Stages only.
    steps: positiveInteger().default(1),
    'no-guidance': switchFlag(),
    pipeline: z.string().optional(),
    json: switchFlag(),
  });
  const { model: modelId, op: operation, width, height, batch, dtype, 'device-memory': deviceMemory } = flags;
  const budget = deviceMemory - config.headroomBytes;
  const device: DeviceView = { name: 'device', budgetBytes: budget, freeBytes: budget, waitSeconds: () => 0 };

  const { registry } = await loadModels(config);
  const local = registry.find(modelId);
  const family = local?.family ?? (isFamilyId(modelId) ? FAMILIES[modelId] : undefined);
  const source = new ProfileSource(join(config.dataDir, 'profiles'));
  if (isStageOperation(operation)) {
    // The export's dtype is what --dtype says (a folder's networks run at the dtype they were exported in).
    const networks = flags.pipeline ? readPipelineNetworks(flags.pipeline, dtype) : undefined;
    const stages = source.stagesForModel(modelId, family, networks);
    if (!stages)
      throw new UsageError(
        `no ${operation} profile for "${modelId}": give --pipeline DIR (a pipeline folder), ` +
          'calibrate it, or plan a family with derived stage profiles (sd15, sdxl)',
      );
    const request = { operation, width, height, batch, steps: flags.steps, guidance: !flags['no-guidance'] };
    const plan = planStage(modelId, stages, request, device, new RunStats());
    if (flags.json) {
      console.log(JSON.stringify(plan));
      return;
    }
    const { latentWidth, latentHeight, networkBatch } = plan.stage;
    console.log(`${plan.route}: ${plan.reason}`);
    console.log(
      `  ${operation} at ${latentWidth}x${latentHeight} latents, network batch ${networkBatch}: ` +
        `${formatBytes(plan.estimates.whole.bytes)}${plan.estimates.whole.calibrated ? '' : ' (uncalibrated)'}`,
    );
    return;
  }
  const profiles = family && source.forModel(modelId, family);
  if (!profiles) {
    throw new UsageError(
      `unknown model "${modelId}"; ` +
        `known: ${[...registry.list().map((m) => m.id), ...Object.keys(FAMILIES)].join(', ')}`,
    );
  }
  const plan = planRoute(modelId, profiles, { operation, width, height, batch, dtype }, device, new RunStats());
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
