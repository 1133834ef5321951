/** `latentgate models pull|list|rm`: models from the Hugging Face Hub, in its cache (src/hub/). */
import { z } from 'zod';
import { loadConfig } from '../config/config.js';
import { formatBytes } from '../config/units.js';
import { GatewayError } from '../errors.js';
import { removeSnapshot } from '../hub/cache.js';
import { PRESETS } from '../hub/presets.js';
import { StderrProgress } from '../hub/progress.js';
import { pull } from '../hub/pull.js';
import { readRecords, writeRecords } from '../hub/records.js';
import { looksServable } from '../hub/sources.js';
import { loadModels } from '../models/load.js';
import { servedOperationsOf } from '../models/model.js';
import { parseCommandLine, switchFlag, UsageError } from './args.js';

export async function modelsCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'pull':
      return pullCommand(rest);
    case 'list':
      return listCommand(rest);
    case 'rm':
      return rmCommand(rest);
    default:
      throw new UsageError(sub ? `unknown models command "${sub}"` : 'models needs pull, list or rm');
  }
}

function onePositional(positional: string[], what: string): string {
  if (positional.length !== 1) throw new UsageError(`models ${what} takes one argument (${positional.length} given)`);
  return positional[0];
}

async function pullCommand(argv: string[]): Promise<void> {
  const { positional, flags } = parseCommandLine(argv, {
    name: z
      .string()
      .regex(/^[\w.-]+$/, { error: 'it must be letters, digits, ".", "_" or "-"' })
      .optional(),
    subfolder: z.string().min(1).optional(),
  });
  const spec = onePositional(positional, 'pull REPO[@REVISION]|PRESET');
  const config = loadConfig();
  const result = await pull(
    { spec, ...(flags.name ? { name: flags.name } : {}), ...(flags.subfolder ? { subfolder: flags.subfolder } : {}) },
    { hub: config.hub, dataDir: config.dataDir, progress: new StderrProgress() },
  );
  console.log(
    `${result.record.name}: ${result.record.repo}@${result.record.commit} ` +
      `${result.fetched ? 'pulled into' : 'already in'} ${result.dir}`,
  );
  if (!looksServable(result.dir))
    console.error(
      `latentgate: ${result.dir} is in no layout latentgate serves (diffusers' AutoencoderTiny, ` +
        "optimum's ONNX pipeline, an ONNX VAE folder); --subfolder may name the part that is",
    );
}

async function listCommand(argv: string[]): Promise<void> {
  const { flags } = parseCommandLine(argv, { json: switchFlag(), presets: switchFlag() });
  if (flags.presets) {
    if (flags.json) return console.log(JSON.stringify(PRESETS, null, 2));
    for (const p of PRESETS)
      console.log(`${p.name.padEnd(14)} ${p.repo}@${p.commit ?? 'main (commit not pinned yet)'}  ${p.description}`);
    return;
  }
  const config = loadConfig();
  const { registry, hub } = await loadModels(config);
  const models = registry.list().map((m) => ({
    id: m.id,
    format: m.format,
    operations: servedOperationsOf(m),
    origin: m.origin ?? 'MODELS_DIR',
    path: m.path,
  }));
  if (flags.json)
    return console.log(
      JSON.stringify({ models, problems: registry.problems, skipped: hub.skipped, warnings: hub.warnings }, null, 2),
    );
  if (models.length === 0)
    console.log(`no models in ${config.modelsDir} or ${hub.cacheDir}; get one: latentgate models pull taesd`);
  for (const m of models) console.log(`${m.id.padEnd(20)} ${m.operations.join(',').padEnd(22)} ${m.origin}  ${m.path}`);
  for (const p of registry.problems) console.log(`${p.id.padEnd(20)} NOT LOADED: ${p.error} (${p.path})`);
  for (const w of hub.warnings) console.log(`warning: ${w}`);
  if (hub.skipped.length > 0)
    console.log(`in the Hub cache, not a layout latentgate serves: ${hub.skipped.join(', ')}`);
}

async function rmCommand(argv: string[]): Promise<void> {
  const { positional } = parseCommandLine(argv, {});
  const id = onePositional(positional, 'rm NAME');
  const config = loadConfig();
  const { registry, hub } = await loadModels(config);
  const source = hub.sources.find((s) => s.id === id || s.repo === id);
  if (!source) {
    const local = registry.find(id);
    if (local?.origin === 'MODELS_DIR')
      throw new GatewayError('BAD_REQUEST', `${id} is a folder of MODELS_DIR (${local.path}); remove it yourself`);
    throw new GatewayError('NOT_FOUND', `no model "${id}" in the Hub cache ${hub.cacheDir}`, { model: id });
  }
  const freed = await removeSnapshot(hub.cacheDir, source.repo, source.commit);
  const records = readRecords(config.dataDir);
  await writeRecords(
    config.dataDir,
    records.filter((r) => !(r.repo === source.repo && r.commit === source.commit && r.cacheDir === hub.cacheDir)),
  );
  console.log(`removed ${source.id} (${source.repo}@${source.commit}); ${formatBytes(freed)} freed`);
}
