/**
 * The models of the Hub cache the gateway serves beside MODELS_DIR: what `models pull` recorded (under
 * its name and subfolder), and every other cached repository whose snapshot is in a layout latentgate
 * loads (diffusers' AutoencoderTiny, optimum's ONNX pipeline, an ONNX VAE folder), under the
 * repository's name, or its full ORG/NAME when two would share a name. A repository of another kind
 * (a PyTorch pipeline, a text model) is listed as skipped, not as a failure.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { looksLikeOnnxVae } from '../models/onnx-loader.js';
import { looksLikeTae } from '../models/tae-loader.js';
import { COMMIT_PATTERN, resolveCachedRevision, snapshotDir } from './cache.js';
import { readRecords } from './records.js';

export interface ModelSource {
  id: string;
  dir: string;
  /** Where it came from, for the start report and `models list`. */
  origin: string;
  repo: string;
  commit: string;
}

export interface HubScan {
  cacheDir: string;
  sources: ModelSource[];
  /** Cached repositories in no layout latentgate serves. */
  skipped: string[];
  /** Pulled models whose files are gone. */
  warnings: string[];
}

const ONNX_PIPELINE_PARTS = ['unet', 'transformer', 'vae_encoder', 'vae_decoder'];

/** Whether `dir` holds a model latentgate loads (a failed load is then a problem worth reporting). */
export function looksServable(dir: string): boolean {
  if (existsSync(join(dir, 'model_index.json')))
    return ONNX_PIPELINE_PARTS.some((part) => existsSync(join(dir, part, 'model.onnx')));
  if (looksLikeOnnxVae(dir)) return true;
  if (!looksLikeTae(dir)) return false;
  const config = join(dir, 'config.json');
  if (!existsSync(config)) return true;
  try {
    return (JSON.parse(readFileSync(config, 'utf8')) as { _class_name?: unknown })._class_name === 'AutoencoderTiny';
  } catch {
    return true; // an unreadable config is the loader's to report
  }
}

interface Candidate {
  repo: string;
  commit: string;
  dir: string;
  name: string | null;
}

export async function scanHubCache(
  hub: Config['hub'],
  dataDir: string,
  takenIds: ReadonlySet<string>,
): Promise<HubScan> {
  const scan: HubScan = { cacheDir: hub.cacheDir, sources: [], skipped: [], warnings: [] };
  const candidates: Candidate[] = [];
  const recorded = readRecords(dataDir).filter((r) => r.cacheDir === hub.cacheDir);
  for (const record of recorded) {
    const dir = join(snapshotDir(hub.cacheDir, record.repo, record.commit), record.subfolder ?? '');
    if (existsSync(dir)) candidates.push({ repo: record.repo, commit: record.commit, dir, name: record.name });
    else
      scan.warnings.push(
        `pulled model ${record.name} (${record.repo}@${record.commit}) is no longer in ${hub.cacheDir}`,
      );
  }
  for (const { repo, commit } of cachedModels(hub.cacheDir)) {
    if (recorded.some((r) => r.repo === repo)) continue;
    const dir = snapshotDir(hub.cacheDir, repo, commit);
    if (looksServable(dir)) candidates.push({ repo, commit, dir, name: null });
    else scan.skipped.push(repo);
  }
  // A pulled model keeps the name it was pulled under; another takes its repository's name unless that is taken.
  const short = (c: Candidate) => c.name ?? c.repo.split('/').at(-1)!;
  const counts = new Map<string, number>();
  for (const c of candidates) counts.set(short(c), (counts.get(short(c)) ?? 0) + 1);
  for (const c of candidates) {
    const clash = c.name === null && (takenIds.has(short(c)) || (counts.get(short(c)) ?? 0) > 1);
    scan.sources.push({
      id: clash ? c.repo : short(c),
      dir: c.dir,
      origin: `${c.repo}@${c.commit.slice(0, 12)} (Hub cache)`,
      repo: c.repo,
      commit: c.commit,
    });
  }
  return scan;
}

/**
 * The cache's model repositories, each at the commit served: refs/main's, else the newest snapshot.
 * Read here rather than with @huggingface/hub's scanCacheDir, which rejects a repository without a
 * refs/ folder (huggingface_hub writes none when a file is fetched by commit hash).
 */
function cachedModels(cacheDir: string): { repo: string; commit: string }[] {
  if (!existsSync(cacheDir) || !statSync(cacheDir).isDirectory()) return [];
  return readdirSync(cacheDir)
    .filter((folder) => folder.startsWith('models--'))
    .sort()
    .flatMap((folder) => {
      const repo = folder.slice('models--'.length).replaceAll('--', '/');
      const snapshots = join(cacheDir, folder, 'snapshots');
      if (!existsSync(snapshots)) return [];
      const newest = readdirSync(snapshots)
        .filter((c) => COMMIT_PATTERN.test(c))
        .map((c) => ({ c, at: statSync(join(snapshots, c)).mtimeMs }))
        .sort((a, b) => b.at - a.at)[0]?.c;
      const commit = resolveCachedRevision(cacheDir, repo, 'main') ?? newest;
      return commit && existsSync(join(snapshots, commit)) ? [{ repo, commit }] : [];
    });
}

/** Folder names of MODELS_DIR: the ids it serves, which cache models must not take. */
export function localModelIds(modelsDir: string): Set<string> {
  if (!existsSync(modelsDir)) return new Set();
  return new Set(readdirSync(modelsDir).filter((id) => statSync(join(modelsDir, id)).isDirectory()));
}
