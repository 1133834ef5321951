/**
 * The Hub's cache layout, as huggingface_hub writes it, so Python tools and latentgate share one copy:
 *
 *   models--ORG--NAME/blobs/ETAG          the bytes (ETAG: the sha256 of an LFS file, else its git oid)
 *   models--ORG--NAME/snapshots/COMMIT/P  a relative symlink to ../../blobs/ETAG (a copy where symlinks fail)
 *   models--ORG--NAME/refs/REVISION       the commit REVISION pointed to when it was pulled
 *
 * A file appears under snapshots/ only once its blob is complete and verified (src/hub/download.ts).
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { getRepoFolderName } from '@huggingface/hub';

export const COMMIT_PATTERN = /^[0-9a-f]{40}$/;

export function repoDir(cacheDir: string, repo: string): string {
  return join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
}

export function snapshotDir(cacheDir: string, repo: string, commit: string): string {
  return join(repoDir(cacheDir, repo), 'snapshots', commit);
}

export function blobPath(cacheDir: string, repo: string, etag: string): string {
  return join(repoDir(cacheDir, repo), 'blobs', etag);
}

/** The commit `revision` names in the cache: itself when a commit hash, else its ref file's content. */
export function resolveCachedRevision(cacheDir: string, repo: string, revision: string): string | null {
  if (COMMIT_PATTERN.test(revision)) return revision;
  const ref = join(repoDir(cacheDir, repo), 'refs', revision);
  if (!existsSync(ref)) return null;
  const commit = readFileSync(ref, 'utf8').trim();
  return COMMIT_PATTERN.test(commit) ? commit : null;
}

/** Whether every path of `files` is in the snapshot (a symlink is followed: a dangling one is missing). */
export function snapshotHas(cacheDir: string, repo: string, commit: string, files: readonly string[]): boolean {
  const dir = snapshotDir(cacheDir, repo, commit);
  return files.every((f) => existsSync(join(dir, f)));
}

export async function writeRef(cacheDir: string, repo: string, revision: string, commit: string): Promise<void> {
  const ref = join(repoDir(cacheDir, repo), 'refs', revision);
  await mkdir(dirname(ref), { recursive: true });
  await writeFile(`${ref}.tmp`, commit);
  await rename(`${ref}.tmp`, ref);
}

/** Puts a verified blob at its snapshot path, replacing what was there. */
export async function linkIntoSnapshot(cacheDir: string, repo: string, commit: string, path: string, etag: string) {
  const target = join(snapshotDir(cacheDir, repo, commit), path);
  const blob = blobPath(cacheDir, repo, etag);
  await mkdir(dirname(target), { recursive: true });
  await rm(target, { force: true });
  try {
    await symlink(relative(dirname(target), blob), target);
  } catch {
    // Where symlinks are not allowed (huggingface_hub copies there too); copied beside, then renamed in.
    await copyFile(blob, `${target}.incomplete`);
    await rename(`${target}.incomplete`, target);
  }
}

/** Blob paths the repository's snapshots link to (resolved). */
function linkedBlobs(dir: string): Set<string> {
  const linked = new Set<string>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      const stat = lstatSync(path);
      if (stat.isSymbolicLink()) linked.add(resolve(folder, readlinkSync(path)));
      else if (stat.isDirectory()) walk(path);
    }
  };
  const snapshots = join(dir, 'snapshots');
  if (existsSync(snapshots)) walk(snapshots);
  return linked;
}

/**
 * Removes one snapshot, the refs that point to it, and the blobs no other snapshot links to; the whole
 * repository folder when nothing of it is left. Returns the bytes freed.
 */
export async function removeSnapshot(cacheDir: string, repo: string, commit: string): Promise<number> {
  const dir = repoDir(cacheDir, repo);
  await rm(snapshotDir(cacheDir, repo, commit), { recursive: true, force: true });
  const refs = join(dir, 'refs');
  if (existsSync(refs))
    for (const ref of readdirSync(refs, { recursive: true, encoding: 'utf8' })) {
      const path = join(refs, ref);
      if (statSync(path).isFile() && readFileSync(path, 'utf8').trim() === commit) await rm(path);
    }
  const linked = linkedBlobs(dir);
  let freed = 0;
  const blobs = join(dir, 'blobs');
  if (existsSync(blobs))
    for (const blob of readdirSync(blobs)) {
      const path = join(blobs, blob);
      if (linked.has(path)) continue;
      freed += statSync(path).size;
      await rm(path);
    }
  const snapshots = join(dir, 'snapshots');
  if (!existsSync(snapshots) || readdirSync(snapshots).length === 0) await rm(dir, { recursive: true, force: true });
  return freed;
}
