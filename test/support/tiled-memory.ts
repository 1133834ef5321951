/**
 * Runs one tiled encode in a fresh process (tiled-memory-child.ts), so that its peak resident memory
 * is its own, and returns what the child measured. Used by the tiling test and the benchmark.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Plan } from '../../src/routing/planner.js';
import { PROJECT_DIR } from './paths.js';

export interface TiledMemoryResult {
  plan: Plan;
  baselineBytes: number;
  peakBytes: number;
  /** False when the peak is an upper bound (no VmHWM reset). */
  exact: boolean;
  seconds: number;
  steps: number;
  dims: number[];
  min: number;
  max: number;
  finite: boolean;
}

export async function measureTiledEncode(
  model: string,
  size: number,
  budget: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<TiledMemoryResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', join(PROJECT_DIR, 'test', 'support', 'tiled-memory-child.ts'), model, String(size), budget],
    { cwd: PROJECT_DIR, env, maxBuffer: 16 * 2 ** 20 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as TiledMemoryResult;
}
