/**
 * What `models pull` pulled, in DATA_DIR/hub-models.json: the served name, the repository, revision,
 * commit and subfolder. The cache has no place for a name or subfolder of ours, and Python tools
 * ignore this file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const recordSchema = z.object({
  name: z.string().min(1),
  repo: z.string().min(1),
  revision: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{40}$/),
  subfolder: z.string().nullable(),
  /** The cache it was pulled into (records of another HF_HUB_CACHE are left alone). */
  cacheDir: z.string(),
});

export type PullRecord = z.infer<typeof recordSchema>;

function recordsPath(dataDir: string): string {
  return join(dataDir, 'hub-models.json');
}

export function readRecords(dataDir: string): PullRecord[] {
  const path = recordsPath(dataDir);
  if (!existsSync(path)) return [];
  let parsed: z.ZodSafeParseResult<PullRecord[]>;
  try {
    parsed = z.array(recordSchema).safeParse(JSON.parse(readFileSync(path, 'utf8')));
  } catch (error) {
    throw new Error(`${path} is not JSON (${(error as Error).message}); remove it and pull again`);
  }
  if (!parsed.success) throw new Error(`${path} is not a list of pulled models: ${parsed.error.message}`);
  return parsed.data;
}

/** Saves the list, replacing it whole (written beside, then renamed). */
export async function writeRecords(dataDir: string, records: PullRecord[]): Promise<void> {
  const path = recordsPath(dataDir);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, `${JSON.stringify(records, null, 2)}\n`);
  await rename(`${path}.tmp`, path);
}

/** Adds `record`, replacing any of the same name. */
export async function saveRecord(dataDir: string, record: PullRecord): Promise<void> {
  await writeRecords(dataDir, [...readRecords(dataDir).filter((r) => r.name !== record.name), record]);
}
