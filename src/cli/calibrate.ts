/**
 * `latentgate calibrate --model ID --operation denoise --pipeline DIR [--latent-sizes 32,64,96]
 * [--batches 1,2] [--json]`: the same for a pipeline folder's UNet (src/calibration/calibrate-stage.ts),
 * stored under DATA_DIR/profiles/ID.stages.json, where the router's stage plans pick it up.
 *
 * `latentgate calibrate --model ID [--sizes 256,512,768] [--stage-sizes 1024,2048,4096]
 * [--operation encode|decode|both] [--json]`: measures the model's peak memory at each size (and,
 * for networks split at latent resolution, that stage at the stage sizes) on the local executor, one fresh process per
 * measurement (a process's peak-RSS mark never goes down, and arenas never shrink), fits the
 * profile (src/calibration/calibrate.ts) and stores it under DATA_DIR/profiles/ID.json, where the
 * gateway and `latentgate plan` pick it up: their estimates for the model then say calibrated.
 *
 * `--measure SIZE --stage whole|latent --operation encode|decode` (or `--measure LATENT --batch B
 * --operation denoise --pipeline DIR`) is the child's mode: it measures one size in this process and
 * prints one JSON line.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import {
  type CalibrationMeasurement,
  type CalibrationStage,
  CPU_ARENA_MARGIN,
  DEFAULT_SIZES,
  DEFAULT_STAGE_SIZES,
  deviceLabel,
  fitCalibration,
  measureOnce,
} from '../calibration/calibrate.js';
import {
  DEFAULT_BATCHES,
  DEFAULT_LATENT_SIZES,
  fitStageCalibration,
  measureDenoiseOnce,
  type StageMeasurement,
} from '../calibration/calibrate-stage.js';
import { probeFor } from '../calibration/peak-memory.js';
import { denoiserFolder, readPipelineNetworks } from '../calibration/pipeline-networks.js';
import { type Config, loadConfig } from '../config/config.js';
import { formatBytes } from '../config/units.js';
import { LocalExecutor } from '../gpu/local-executor.js';
import { chooseProvider, OnnxRuntime } from '../gpu/onnx-runtime.js';
import { loadModels } from '../models/load.js';
import { type ModelDefinition, networkFor } from '../models/model.js';
import { ProfileSource } from '../routing/profile-source.js';
import { type CommandLine, checkFlags, parseCommandLine, positiveInteger, switchFlag, UsageError } from './args.js';

const BIN = join(import.meta.dirname, '../../bin/latentgate.js');

async function loadModel(config: Config, id: string): Promise<ModelDefinition> {
  const { registry } = await loadModels(config);
  const model = registry.find(id);
  if (!model || !(model.encoder || model.decoder)) {
    const local = registry
      .list()
      .filter((m) => m.encoder || m.decoder)
      .map((m) => m.id);
    throw new UsageError(
      `calibrate needs local weights; "${id}" has none in ${config.modelsDir} ` +
        `(local models: ${local.join(', ') || 'none'})`,
    );
  }
  return model;
}

const FLAGS = {
  model: z.string(),
  operation: z.enum(['encode', 'decode', 'both', 'denoise']).default('both'),
  sizes: z.string().optional(),
  'stage-sizes': z.string().optional(),
  // denoise: the pipeline folder, latent sides and network batches to measure.
  pipeline: z.string().optional(),
  'latent-sizes': z.string().optional(),
  batches: z.string().optional(),
  json: switchFlag(),
  // The child's mode: one measurement.
  measure: positiveInteger().optional(),
  stage: z.enum(['whole', 'latent'] satisfies CalibrationStage[]).default('whole'),
  batch: positiveInteger().default(1),
};

type Flags = CommandLine<typeof FLAGS>['flags'];

/** `--sizes 256,512,768`: distinct multiples of the model's factor, at least two of them, smallest first. */
function sizeList(factor: number) {
  return z
    .string()
    .transform((text) => text.split(',').map((size) => size.trim()))
    .pipe(
      z.array(
        positiveInteger().multipleOf(factor, {
          error: `they must be positive multiples of the model's factor ${factor}`,
        }),
      ),
    )
    .transform((sizes) => [...new Set(sizes)].sort((a, b) => a - b))
    .refine((sizes) => sizes.length >= 2, { error: 'it needs at least two different sizes to fit a profile' });
}

/** Child mode: one measurement in this (fresh) process, printed as one JSON line. */
async function measureChild(config: Config, flags: Flags, size: number): Promise<void> {
  const model = await loadModel(config, flags.model);
  const operation = flags.operation;
  if (operation === 'both' || operation === 'denoise')
    throw new UsageError(`--measure takes --operation encode or decode; got "${operation}"`);
  const runtime = new OnnxRuntime(await chooseProvider(config.executionProvider), config.intraOpThreads);
  try {
    const probe = probeFor(runtime.choice.provider);
    const measurement = await measureOnce(new LocalExecutor(runtime), model, operation, flags.stage, size, probe);
    console.log(JSON.stringify(measurement));
  } finally {
    await runtime.close();
  }
}

/** `--batches 1,2`: distinct positive integers, smallest first. */
const batchList = z
  .string()
  .transform((text) => text.split(',').map((batch) => batch.trim()))
  .pipe(z.array(positiveInteger()).min(1))
  .transform((batches) => [...new Set(batches)].sort((a, b) => a - b));

/** `--latent-sizes 32,64,96`: distinct positive latent sides, at least two, smallest first. */
const latentSizeList = z
  .string()
  .transform((text) => text.split(',').map((size) => size.trim()))
  .pipe(z.array(positiveInteger()))
  .transform((sizes) => [...new Set(sizes)].sort((a, b) => a - b))
  .refine((sizes) => sizes.length >= 2, { error: 'it needs at least two different latent sizes to fit a profile' });

/** The UNet of `--pipeline`; a usage error when absent. */
function unetOf(flags: Flags): { dir: string; path: string } {
  const dir = flags.pipeline;
  if (!dir) throw new UsageError('--operation denoise needs --pipeline DIR (a pipeline folder in optimum layout)');
  const folder = denoiserFolder(dir);
  if (!folder) throw new UsageError(`--pipeline ${dir} has no unet/model.onnx or transformer/model.onnx`);
  return { dir, path: join(folder, 'model.onnx') };
}

async function measureDenoiseChild(config: Config, flags: Flags, latent: number): Promise<void> {
  const { path } = unetOf(flags);
  const runtime = new OnnxRuntime(await chooseProvider(config.executionProvider), config.intraOpThreads);
  try {
    const probe = probeFor(runtime.choice.provider);
    console.log(JSON.stringify(await measureDenoiseOnce(runtime, flags.model, path, latent, flags.batch, probe)));
  } finally {
    await runtime.close();
  }
}

/** Measures the pipeline's UNet at every latent size x batch, one fresh process each, and stores the fit. */
async function calibrateDenoise(config: Config, flags: Flags): Promise<void> {
  const { dir } = unetOf(flags);
  const { 'latent-sizes': latents, batches } = checkFlags(
    { 'latent-sizes': latentSizeList.default(DEFAULT_LATENT_SIZES), batches: batchList.default(DEFAULT_BATCHES) },
    { 'latent-sizes': flags['latent-sizes'], batches: flags.batches },
  );
  const provider = await chooseProvider(config.executionProvider);
  probeFor(provider.provider);
  const log = (line: string) => (flags.json ? console.error(line) : console.log(line));
  log(
    `calibrating the denoise stage of ${flags.model} (${dir}) on ${provider.provider} at latents ` +
      `${latents.join(', ')} x batch ${batches.join(', ')}, one process per measurement`,
  );
  const env = { ...process.env, EXECUTION_PROVIDER: provider.provider };
  const measurements: StageMeasurement[] = [];
  for (const latent of latents) {
    for (const batch of batches) {
      const argv = ['--model', flags.model, '--operation', 'denoise', '--pipeline', dir];
      const m = await runChild<StageMeasurement>([...argv, '--measure', String(latent), '--batch', String(batch)], env);
      measurements.push(m);
      log(
        `  denoise ${String(latent).padStart(4)} latent x ${batch}: peak +${formatBytes(m.peakBytes)} ` +
          `(${m.seconds.toFixed(1)} s${m.exact ? '' : ', upper bound'})`,
      );
    }
  }
  const source = new ProfileSource(join(config.dataDir, 'profiles'));
  const base = source.stagesForModel(flags.model, undefined, readPipelineNetworks(dir, measurements[0].dtype))!;
  const profiles = fitStageCalibration(base, measurements, {
    margin: CPU_ARENA_MARGIN,
    device: deviceLabel(provider.provider),
  });
  const file = source.saveStages(profiles);
  if (flags.json) {
    console.log(JSON.stringify({ model: flags.model, file, profiles, measurements }));
    return;
  }
  const p = profiles.denoise;
  const squared = p.attentionBytesPerLatentPixelSquared;
  log(
    `denoise: ${formatBytes(p.fixedBytes)} + ${p.bytesPerLatentPixel.toFixed(1)} B per latent pixel` +
      `${squared > 0 ? ` + ${squared.toExponential(2)} B/px^2` : ''}` +
      ` at ${p.dtype} (fit: ${p.fit!.samples} samples, max over ${(p.fit!.maxOverestimate * 100).toFixed(1)}%)`,
  );
  log(`saved ${file}`);
}

function runChild<M = CalibrationMeasurement>(argv: string[], env: NodeJS.ProcessEnv): Promise<M> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'calibrate', ...argv], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = stdout
        .trim()
        .split('\n')
        .reverse()
        .find((l) => l.startsWith('{'));
      if (code !== 0 || !line)
        return reject(new Error(`measurement ${argv.join(' ')} failed (exit ${code}):\n${stderr || stdout}`));
      resolve(JSON.parse(line) as M);
    });
  });
}

export async function calibrateCommand(argv: string[]): Promise<void> {
  const config = loadConfig();
  const { flags } = parseCommandLine(argv, FLAGS);
  if (flags.operation === 'denoise') {
    return flags.measure !== undefined
      ? measureDenoiseChild(config, flags, flags.measure)
      : calibrateDenoise(config, flags);
  }
  for (const flag of ['pipeline', 'latent-sizes', 'batches'] as const)
    if (flags[flag] !== undefined) throw new UsageError(`--${flag} is for --operation denoise only`);
  if (flags.measure !== undefined) return measureChild(config, flags, flags.measure);
  const model = await loadModel(config, flags.model);
  const which = flags.operation;
  const operations = (which === 'both' ? (['encode', 'decode'] as const) : [which]).filter((op) =>
    networkFor(model, op),
  );
  if (operations.length === 0) throw new UsageError(`model "${model.id}" has no ${which} network here`);
  const { sizes, 'stage-sizes': stageSizes } = checkFlags(
    {
      sizes: sizeList(model.downscaleFactor).default(DEFAULT_SIZES),
      'stage-sizes': sizeList(model.downscaleFactor).default(DEFAULT_STAGE_SIZES),
    },
    { sizes: flags.sizes, 'stage-sizes': flags['stage-sizes'] },
  );
  const provider = await chooseProvider(config.executionProvider);
  probeFor(provider.provider); // fails early, with the reason, where peak memory cannot be measured
  const json = flags.json;
  const log = (line: string) => (json ? console.error(line) : console.log(line));
  log(
    `calibrating ${model.id} (${operations.join(', ')}) on ${provider.provider} ` +
      `at ${sizes.join(', ')} px, one process per measurement`,
  );

  // The children must use the provider measured here, whatever "auto" would pick.
  const env = { ...process.env, EXECUTION_PROVIDER: provider.provider };
  const measurements: CalibrationMeasurement[] = [];
  for (const operation of operations) {
    const stages: CalibrationStage[] = networkFor(model, operation)!.stages ? ['whole', 'latent'] : ['whole'];
    for (const stage of stages) {
      for (const size of stage === 'whole' ? sizes : stageSizes) {
        const m = await runChild(
          ['--model', model.id, '--operation', operation, '--stage', stage, '--measure', String(size)],
          env,
        );
        measurements.push(m);
        log(
          `  ${operation} ${stage.padEnd(6)} ${String(size).padStart(5)} px: ` +
            `peak +${formatBytes(m.peakBytes)} (${m.seconds.toFixed(1)} s${m.exact ? '' : ', upper bound'})`,
        );
      }
    }
  }
  const source = new ProfileSource(join(config.dataDir, 'profiles'));
  const base = source.forModel(model.id, model.family);
  if (!base) throw new Error(`no base memory profile for "${model.id}"`);
  const profiles = fitCalibration(base, measurements, {
    dtype: 'float32',
    margin: CPU_ARENA_MARGIN,
    device: deviceLabel(provider.provider),
  });
  const file = source.save(profiles);
  if (json) {
    console.log(JSON.stringify({ model: model.id, file, profiles, measurements }));
    return;
  }
  for (const operation of operations) {
    const p = profiles[operation];
    const stage = p.latentStage
      ? `; latent stage ${formatBytes(p.latentStage.fixedBytes)} + ${p.latentStage.bytesPerPixel.toFixed(1)} B/px`
      : '';
    log(
      `${operation}: ${formatBytes(p.fixedBytes)} + ${p.bytesPerPixel.toFixed(1)} B/px at ${p.dtype}${stage} ` +
        `(fit: ${p.fit!.samples} sizes, max over ${(p.fit!.maxOverestimate * 100).toFixed(1)}%, ` +
        `max under ${(p.fit!.maxUnderestimate * 100).toFixed(1)}%)`,
    );
  }
  log(`saved ${file}`);
}
