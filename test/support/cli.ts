/** Runs the shipped `latentgate` command in a child process, as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_DIR } from './paths.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `env` is added to this process's environment (an empty value unsets a setting). */
export function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin/latentgate.js'), ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
