/**
 * Starts the real gateway (`bin/latentgate.js serve`) as a child process on a free port and talks to
 * it over HTTP. Most tests use the in-process gateway of ./in-process.ts instead; this one is for
 * smoke tests of the shipped entry point and for tests that need a process of their own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { NO_HUB_CACHE, PROJECT_DIR } from './paths.js';

/** How long a gateway may take to exit after SIGTERM (its drain has nothing to wait for in tests). */
const STOP_TIMEOUT_MS = 30_000;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A gateway a test talks to, whether a child process (below) or in the test's own (./in-process.ts). */
export interface TestGateway {
  /** Base URL of its HTTP server (result URLs, Hybrid Inference, /healthz). */
  url: string;
  stop(): Promise<void>;
  graphql<T = any>(
    query: string,
    variables?: Record<string, unknown>,
    options?: { signal?: AbortSignal },
  ): Promise<GraphQLResponse<T>>;
  /** A GraphQL multipart request with one file at `path` (e.g. `variables.input.image.upload`). */
  upload(
    query: string,
    variables: Record<string, unknown>,
    path: string,
    file: Uint8Array,
    filename: string,
  ): Promise<GraphQLResponse<any>>;
}

export interface RunningGateway extends TestGateway {
  process: ChildProcess;
  output: () => string;
}

export interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string; extensions?: Record<string, any> }[];
}

export async function startGateway(env: Record<string, string>): Promise<RunningGateway> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin/latentgate.js'), 'serve'], {
    cwd: PROJECT_DIR,
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port), ...NO_HUB_CACHE, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 60 s:\n${output}`)), 60_000);
    const onData = () => {
      if (output.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    process: child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A gateway that does not exit would keep the test file (and the suite) waiting: kill it and fail.
      let timer: NodeJS.Timeout | undefined;
      const hung = await Promise.race([
        exited.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (hung) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`gateway did not exit within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM:\n${output.slice(-4000)}`);
      }
    },
    async graphql(query, variables, options) {
      const response = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, variables }),
        signal: options?.signal,
      });
      return response.json() as Promise<GraphQLResponse<any>>;
    },
    upload: (query, variables, path, file, filename) => graphqlUpload(url, query, variables, path, file, filename),
  };
}

/** A GraphQL multipart request to the gateway at `url` with one file at `path`. */
export async function graphqlUpload(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  path: string,
  file: Uint8Array,
  filename: string,
) {
  const body = multipartBody(query, variables, path, file, filename);
  const response = await fetch(`${url}/graphql`, { method: 'POST', headers: CSRF_HEADERS, body });
  return response.json() as Promise<GraphQLResponse<any>>;
}

/** What a multipart (or any non-JSON) GraphQL request must carry, or the gateway refuses it as cross-site. */
export const CSRF_HEADERS: Readonly<Record<string, string>> = { 'x-graphql-yoga-csrf': '1' };

/** The body of a GraphQL multipart request (the spec graphql-yoga implements) with one file at `path`. */
export function multipartBody(
  query: string,
  variables: Record<string, unknown>,
  path: string,
  file: Uint8Array,
  filename: string,
): FormData {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query, variables }));
  form.set('map', JSON.stringify({ 0: [path] }));
  form.set('0', new Blob([new Uint8Array(file)]), filename);
  return form;
}
