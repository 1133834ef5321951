/**
 * One pull at a time per blob: two gateways started with the same MODELS on one cache would otherwise
 * append to the same `.incomplete` file. The lock is a file created exclusively, holding its owner's pid
 * and host; the others wait for it to go, and take it over when its owner (on this host) is gone.
 * huggingface_hub locks with flock on `.locks/…/ETAG.lock`, which Node cannot take, so this lock has a
 * name of its own beside it.
 */
import { readFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getRepoFolderName } from '@huggingface/hub';

const POLL_MS = 200;

export function blobLockPath(cacheDir: string, repo: string, etag: string): string {
  return join(cacheDir, '.locks', getRepoFolderName({ name: repo, type: 'model' }), `${etag}.latentgate.lock`);
}

/** Whether the lock's owner is a process of this host that no longer runs (a lock being written is not). */
function abandoned(path: string): boolean {
  let owner: { pid?: unknown; host?: unknown };
  try {
    owner = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return false;
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number') return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Takes the lock (waiting while another holds it); the returned function releases it. */
export async function lockBlob(path: string, onWait: () => void): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname() }));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (abandoned(path)) {
      await rm(path, { force: true });
      continue;
    }
    if (!waited) onWait();
    waited = true;
    await sleep(POLL_MS);
  }
}
