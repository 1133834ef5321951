/**
 * `models pull`: a repository (or preset) at a revision into the Hub cache, with @huggingface/hub as the
 * client (modelInfo for the commit, listFiles for the files and their sha256) and src/hub/download.ts for
 * each file. Blobs are fetched and verified first; only then are they linked into snapshots/COMMIT and the
 * ref written, so an interrupted or refused pull never leaves a file where a model is loaded from.
 */
import { existsSync } from 'node:fs';
import { listFiles, modelInfo } from '@huggingface/hub';
import type { Config } from '../config/config.js';
import { formatBytes } from '../config/units.js';
import { GatewayError } from '../errors.js';
import {
  blobPath,
  COMMIT_PATTERN,
  linkIntoSnapshot,
  resolveCachedRevision,
  snapshotDir,
  snapshotHas,
  writeRef,
} from './cache.js';
import { downloadBlob, etagOf, type HubAccess } from './download.js';
import { hubFailure } from './errors.js';
import { selectFiles } from './files.js';
import { blobLockPath, lockBlob } from './lock.js';
import { findPreset, type Preset } from './presets.js';
import type { PullProgress } from './progress.js';
import { type PullRecord, readRecords, saveRecord } from './records.js';

export interface PullRequest {
  /** A preset name (`taesd`) or `ORG/NAME[@REVISION]`. */
  spec: string;
  /** The name it is served under (default: the preset's, else the repository's name). */
  name?: string;
  /** Only this folder of the repository; the model is loaded from it. */
  subfolder?: string;
}

export interface PullOptions {
  hub: Config['hub'];
  dataDir: string;
  progress: PullProgress;
  /** Tests count requests through it; default: the global fetch. */
  fetch?: typeof fetch;
}

export interface PullResult {
  record: PullRecord;
  /** Where the model is loaded from: the snapshot (or its subfolder). */
  dir: string;
  /** Whether anything was fetched (false: already complete in the cache). */
  fetched: boolean;
}

export interface PullTarget {
  repo: string;
  revision: string;
  preset: Preset | null;
}

/** `taesd` → its preset; `org/name@rev` → that repository and revision (default `main`). */
export function parseSpec(spec: string): PullTarget {
  const preset = findPreset(spec);
  if (preset) return { repo: preset.repo, revision: preset.commit ?? 'main', preset };
  const match = /^([\w.-]+\/[\w.-]+)(?:@([\w./-]+))?$/.exec(spec);
  if (!match)
    throw new GatewayError(
      'BAD_REQUEST',
      `"${spec}" is neither a preset nor ORG/NAME[@REVISION]; presets: ` +
        'taesd, taesdxl, taesd3, taef1, taef2, sd-turbo-onnx (`latentgate models list --presets`)',
      { spec },
    );
  return { repo: match[1], revision: match[2] ?? 'main', preset: null };
}

function servedName(request: PullRequest, target: PullTarget): string {
  return request.name ?? target.preset?.name ?? target.repo.split('/')[1];
}

/** A pull already done: complete in the cache at the revision asked for (no request made). */
export function findCached(request: PullRequest, target: PullTarget, options: PullOptions): PullResult | null {
  const { cacheDir } = options.hub;
  const commit = resolveCachedRevision(cacheDir, target.repo, target.revision);
  if (!commit) return null;
  const record = readRecords(options.dataDir).find(
    (r) => r.name === servedName(request, target) && r.repo === target.repo && r.commit === commit,
  );
  const files = target.preset?.files ? Object.keys(target.preset.files) : [];
  const subfolder = request.subfolder ?? null;
  const dir = subfolder
    ? `${snapshotDir(cacheDir, target.repo, commit)}/${subfolder}`
    : snapshotDir(cacheDir, target.repo, commit);
  if (
    !existsSync(dir) ||
    !snapshotHas(
      cacheDir,
      target.repo,
      commit,
      files.map((f) => (subfolder ? `${subfolder}/${f}` : f)),
    )
  )
    return null;
  return {
    record: record ?? {
      name: servedName(request, target),
      repo: target.repo,
      revision: target.revision,
      commit,
      subfolder,
      cacheDir,
    },
    dir,
    fetched: false,
  };
}

export async function pull(request: PullRequest, options: PullOptions): Promise<PullResult> {
  const target = parseSpec(request.spec);
  const { hub } = options;
  const subfolder = request.subfolder?.replace(/^\/+|\/+$/g, '') || null;
  if (subfolder?.split('/').includes('..'))
    throw new GatewayError('BAD_REQUEST', `--subfolder "${request.subfolder}" must stay inside the repository`);
  if (hub.offline) {
    const found = findCached({ ...request, subfolder: subfolder ?? undefined }, target, options);
    if (found) return found;
    throw new GatewayError(
      'NOT_FOUND',
      `HF_HUB_OFFLINE is set and ${target.repo}@${target.revision} is not in the cache (${hub.cacheDir}); ` +
        'unset HF_HUB_OFFLINE to pull it',
      { repo: target.repo },
    );
  }
  const access: HubAccess = {
    hubUrl: hub.endpoint,
    ...(hub.token ? { accessToken: hub.token.reveal() } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  };
  const failure = (error: unknown) =>
    hubFailure(error, { endpoint: hub.endpoint, repo: target.repo, hasToken: hub.token !== null });
  try {
    const info = await modelInfo({
      name: target.repo,
      revision: target.revision,
      additionalFields: ['sha'],
      ...access,
    });
    const commit = info.sha;
    if (!COMMIT_PATTERN.test(commit ?? ''))
      throw new GatewayError('UPSTREAM_FAILED', `the Hub gave no commit for ${target.repo}@${target.revision}`);
    const entries = [];
    for await (const entry of listFiles({
      repo: target.repo,
      revision: commit,
      recursive: true,
      ...(subfolder ? { path: subfolder } : {}),
      ...access,
    }))
      entries.push(entry);
    const wanted = target.preset?.files ? Object.keys(target.preset.files) : null;
    const { files, missing } = selectFiles(entries, wanted, subfolder);
    if (missing.length > 0)
      throw new GatewayError('NOT_FOUND', `${target.repo}@${commit} lacks ${missing.join(', ')}`, {
        repo: target.repo,
      });
    if (files.length === 0)
      throw new GatewayError(
        'NOT_FOUND',
        `${target.repo}@${commit} has no files to pull${subfolder ? ` in ${subfolder}/` : ''}`,
      );
    // A pinned preset refuses bytes other than the ones it was checked against.
    for (const file of files) {
      const pinned = target.preset?.files?.[file.path];
      if (pinned && pinned !== file.sha256)
        throw new GatewayError(
          'UPSTREAM_FAILED',
          `${target.repo}/${file.path} at ${commit} has sha256 ${file.sha256}; preset ${target.preset?.name} pins ${pinned}`,
        );
    }
    const pending = files.filter((f) => !existsSync(blobPath(hub.cacheDir, target.repo, etagOf(f))));
    const name = servedName(request, target);
    options.progress.start(
      name,
      pending.reduce((sum, f) => sum + f.size, 0),
    );
    for (const file of pending) {
      const blob = blobPath(hub.cacheDir, target.repo, etagOf(file));
      const release = await lockBlob(blobLockPath(hub.cacheDir, target.repo, etagOf(file)), () =>
        options.progress.fileDone(file.path, 'another pull is fetching it; waiting'),
      );
      try {
        // The pull that held the lock may have finished it meanwhile.
        const how = existsSync(blob)
          ? 'fetched by another pull'
          : await downloadBlob(access, target.repo, commit, file, blob, options.progress);
        options.progress.fileDone(
          file.path,
          `${how}, ${formatBytes(file.size)}, ${file.sha256 ? 'sha256' : 'git sha1'} verified`,
        );
      } finally {
        await release();
      }
    }
    for (const file of files) await linkIntoSnapshot(hub.cacheDir, target.repo, commit, file.path, etagOf(file));
    if (target.revision !== commit) await writeRef(hub.cacheDir, target.repo, target.revision, commit);
    const record: PullRecord = {
      name,
      repo: target.repo,
      revision: target.revision,
      commit,
      subfolder,
      cacheDir: hub.cacheDir,
    };
    await saveRecord(options.dataDir, record);
    const dir = subfolder
      ? `${snapshotDir(hub.cacheDir, target.repo, commit)}/${subfolder}`
      : snapshotDir(hub.cacheDir, target.repo, commit);
    options.progress.finish(
      `${target.repo}@${commit.slice(0, 12)}: ${pending.length} of ${files.length} file(s) fetched into ${dir}`,
    );
    return { record, dir, fetched: pending.length > 0 };
  } catch (error) {
    throw failure(error);
  }
}
