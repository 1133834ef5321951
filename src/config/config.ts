/**
 * The one place configuration is read: environment variables, optionally over a JSON file named by
 * `LATENTGATE_CONFIG`. Every value is validated at start; a bad value stops the process with a
 * message that names the setting, what was given and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseUpstreams, type UpstreamConfig } from '../upstream/config.js';
import { formatBytes, parseBytes } from './units.js';

export interface Config {
  host: string;
  port: number;
  /** Base URL used in latent and image URLs (defaults to http://host:port). */
  publicUrl: string;
  modelsDir: string;
  /** Where measured memory profiles (`latentgate calibrate`) are kept. */
  dataDir: string;
  /** Memory budget of the CPU device (CUDA devices report their own). */
  deviceMemoryBytes: number;
  /** Held back from every device's budget. */
  headroomBytes: number;
  /** Execution provider preference: `auto` tries CUDA then falls back to CPU. */
  executionProvider: 'auto' | 'cuda' | 'cpu';
  /** Threads onnxruntime uses per run (0 = onnxruntime's default). */
  intraOpThreads: number;
  limits: {
    maxImageBytes: number;
    maxImagePixels: number;
    maxLatentBytes: number;
    maxBatch: number;
    maxQueueLength: number;
  };
  /** How long an encode waits for others of the same model and size to run with it as one batch (0 = no batching). */
  batchWindowMs: number;
  /** How long latent and image URLs stay valid. */
  resultTtlSeconds: number;
  /** How long a finished job (and its result) can still be read or subscribed to. */
  jobTtlSeconds: number;
  redisUrl: string | null;
  /** Upstream endpoints per model (`UPSTREAMS` JSON, or `upstreams` in the file); see src/upstream/config.ts. */
  upstreams: UpstreamConfig[];
}

export class ConfigError extends Error {}

type Source = Record<string, unknown>;

/** Setting names as environment variables; the config file uses the same keys in camelCase. */
const SETTINGS = {
  host: 'HOST',
  port: 'PORT',
  publicUrl: 'PUBLIC_URL',
  modelsDir: 'MODELS_DIR',
  dataDir: 'DATA_DIR',
  deviceMemory: 'DEVICE_MEMORY',
  headroom: 'DEVICE_HEADROOM',
  executionProvider: 'EXECUTION_PROVIDER',
  intraOpThreads: 'INTRA_OP_THREADS',
  maxImageBytes: 'MAX_IMAGE_BYTES',
  maxImagePixels: 'MAX_IMAGE_PIXELS',
  maxLatentBytes: 'MAX_LATENT_BYTES',
  maxBatch: 'MAX_BATCH',
  maxQueueLength: 'MAX_QUEUE_LENGTH',
  batchWindowMs: 'BATCH_WINDOW_MS',
  resultTtlSeconds: 'RESULT_TTL_SECONDS',
  jobTtlSeconds: 'JOB_TTL_SECONDS',
  redisUrl: 'REDIS_URL',
  upstreams: 'UPSTREAMS',
} as const;

type SettingKey = keyof typeof SETTINGS;

class Reader {
  private readonly problems: string[] = [];
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly file: Source,
  ) {}

  raw(key: SettingKey): string | undefined {
    const fromEnv = this.env[SETTINGS[key]];
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    const fromFile = this.file[key];
    return fromFile === undefined || fromFile === null ? undefined : String(fromFile);
  }

  string(key: SettingKey, fallback: string): string {
    return this.raw(key) ?? fallback;
  }

  integer(key: SettingKey, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const text = this.raw(key);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.problems.push(`${SETTINGS[key]} (${key}) is "${text}"; it must be an integer from ${min} to ${max}`);
      return fallback;
    }
    return value;
  }

  bytes(key: SettingKey, fallback: number, min = 0): number {
    const text = this.raw(key);
    if (text === undefined) return fallback;
    const value = parseBytes(text);
    if (value === null || value < min) {
      this.problems.push(
        `${SETTINGS[key]} (${key}) is "${text}"; it must be a size such as 4GiB, 512MiB or 1000000, at least ${formatBytes(min)}`,
      );
      return fallback;
    }
    return value;
  }

  oneOf<T extends string>(key: SettingKey, allowed: readonly T[], fallback: T): T {
    const text = this.raw(key);
    if (text === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      this.problems.push(`${SETTINGS[key]} (${key}) is "${text}"; allowed: ${allowed.join(', ')}`);
      return fallback;
    }
    return text as T;
  }

  url(key: SettingKey): string | null {
    const text = this.raw(key);
    if (text === undefined) return null;
    try {
      new URL(text);
      return text;
    } catch {
      this.problems.push(`${SETTINGS[key]} (${key}) is "${text}"; it must be an absolute URL`);
      return null;
    }
  }

  /** A JSON list in the environment, or a list (or its JSON text) in the file. */
  upstreams(): UpstreamConfig[] {
    const fromEnv = this.env[SETTINGS.upstreams];
    const { upstreams, problems } = parseUpstreams(
      fromEnv !== undefined && fromEnv !== '' ? fromEnv : this.file.upstreams,
      this.env,
    );
    this.problems.push(...problems);
    return upstreams;
  }

  finish(): void {
    if (this.problems.length > 0) throw new ConfigError(`invalid configuration:\n  - ${this.problems.join('\n  - ')}`);
  }
}

function readConfigFile(path: string | undefined): Source {
  if (!path) return {};
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`LATENTGATE_CONFIG names ${path}, which cannot be read: ${(error as Error).message}`);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Source;
  } catch (error) {
    throw new ConfigError(`config file ${path} is not a JSON object: ${(error as Error).message}`);
  }
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<SettingKey, string | number>> = {},
): Config {
  const file = { ...readConfigFile(env.LATENTGATE_CONFIG), ...overrides };
  const r = new Reader(env, file);
  const host = r.string('host', '127.0.0.1');
  const port = r.integer('port', 4000, 0, 65535);
  const config: Config = {
    host,
    port,
    publicUrl: (r.url('publicUrl') ?? `http://${host.includes(':') ? `[${host}]` : host}:${port}`).replace(/\/$/, ''),
    modelsDir: resolve(r.string('modelsDir', './models')),
    dataDir: resolve(r.string('dataDir', './data')),
    deviceMemoryBytes: r.bytes('deviceMemory', 4 * 2 ** 30, 2 ** 20),
    headroomBytes: r.bytes('headroom', 256 * 2 ** 20),
    executionProvider: r.oneOf('executionProvider', ['auto', 'cuda', 'cpu'] as const, 'auto'),
    intraOpThreads: r.integer('intraOpThreads', 0, 0, 1024),
    limits: {
      maxImageBytes: r.bytes('maxImageBytes', 50 * 2 ** 20, 1024),
      maxImagePixels: r.integer('maxImagePixels', 4096 * 4096, 64),
      maxLatentBytes: r.bytes('maxLatentBytes', 256 * 2 ** 20, 1024),
      maxBatch: r.integer('maxBatch', 16, 1, 1024),
      maxQueueLength: r.integer('maxQueueLength', 64, 0, 100000),
    },
    batchWindowMs: r.integer('batchWindowMs', 5, 0, 10000),
    resultTtlSeconds: r.integer('resultTtlSeconds', 3600, 1),
    jobTtlSeconds: r.integer('jobTtlSeconds', 3600, 1),
    redisUrl: r.url('redisUrl'),
    upstreams: r.upstreams(),
  };
  r.finish();
  if (config.headroomBytes >= config.deviceMemoryBytes) {
    throw new ConfigError(
      `invalid configuration:\n  - DEVICE_HEADROOM (${formatBytes(config.headroomBytes)}) must be smaller than DEVICE_MEMORY (${formatBytes(config.deviceMemoryBytes)})`,
    );
  }
  return config;
}
