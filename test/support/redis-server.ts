/**
 * A private redis-server on a free loopback port, for tests that stop and restart Redis (the shared
 * one at 6379 serves other tests). Nothing is persisted, so a restarted server starts empty, unless
 * `persistDir` is given: then every write goes to an append-only file there first (appendfsync
 * always), as a production Redis behind durable jobs should be set up, and a restart keeps it all.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from './server.ts';

export interface PrivateRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: connections drop at once, as when Redis dies). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export async function startPrivateRedis(options: { persistDir?: string } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const persistence = options.persistDir
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', options.persistDir]
    : ['--appendonly', 'no'];
  const start = async () => {
    if (child) throw new Error(`the private redis-server on port ${port} is already running`);
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = server;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000);
      server.stdout!.on('data', (d) => {
        output += d;
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      });
      server.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}:\n${output}`));
      });
    });
  };
  const stop = async () => {
    const server = child;
    child = null;
    if (!server || server.exitCode !== null || server.signalCode !== null) return;
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGKILL');
    await exited;
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}/0`, stop, start };
}
