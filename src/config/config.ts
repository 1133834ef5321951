/**
 * The one place configuration is read: environment variables, optionally over a JSON file named by
 * `LATENTGATE_CONFIG`, validated at start by one zod schema; bad values stop the process with one
 * message that names each setting, what was given and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { homedir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { LOG_LEVELS, type LogLevel } from '../observability/logger.js';
import { type UpstreamConfig, upstreamList } from '../upstream/config.js';
import { describeProblem, dottedPath, integerText, settingsObject, validate } from '../validation/problems.js';
import { readSecret, type Secret } from './secret.js';
import { byteSize, formatBytes } from './units.js';

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
  /** HOST_MEMORY: what requests may hold in this process besides device runs (see hostMemoryDefault). */
  hostMemoryBytes: number;
  /** Execution provider preference: `auto` tries CUDA then falls back to CPU; `webgpu` only when named. */
  executionProvider: 'auto' | 'cuda' | 'webgpu' | 'cpu';
  /** Threads onnxruntime uses per run (0 = onnxruntime's default). */
  intraOpThreads: number;
  limits: {
    maxImageBytes: number;
    maxImagePixels: number;
    maxLatentBytes: number;
    maxBatch: number;
    maxQueueLength: number;
  };
  /** Limits on GraphQL documents and bodies, checked before any work (README, Limits). */
  graphqlLimits: {
    maxDepth: number;
    maxTokens: number;
    maxAliases: number;
    maxDirectives: number;
    maxCost: number;
    /** encode, decode, img2img and their submit* forms one operation may run. */
    maxComputeFields: number;
    /** What a GraphQL body may hold besides its one largest image or latent (query text, other variables). */
    maxDocumentBytes: number;
  };
  /** The HTTP server against slow and idle clients (README, Limits). */
  http: {
    headersTimeoutMs: number;
    /** The whole request, body included, must arrive within this. */
    requestTimeoutMs: number;
    keepAliveTimeoutMs: number;
    maxConnections: number;
  };
  /** How long an encode waits for others of the same model and size to run with it as one batch (0 = no batching). */
  batchWindowMs: number;
  /** How long latent and image URLs stay valid. */
  resultTtlSeconds: number;
  /** How long a finished job (and its result) can still be read or subscribed to. */
  jobTtlSeconds: number;
  redisUrl: string | null;
  /** How the gateway treats Redis (README, Running it in production); only read when redisUrl is set. */
  redis: {
    /** Refuse to start when Redis does not answer at start (`REDIS_REQUIRED`, default true); false starts degraded. */
    required: boolean;
    /** Every command fails (SERVICE_UNAVAILABLE) after this long without an answer. */
    commandTimeoutMs: number;
    /** A connection attempt gives up after this long. */
    connectTimeoutMs: number;
    /** How often the health monitor PINGs Redis (what /healthz and /metrics report). */
    healthIntervalMs: number;
  };
  /** On SIGTERM/SIGINT, how long runs in flight may take to finish before the gateway exits anyway. */
  shutdownGraceSeconds: number;
  /** With REDIS_URL: prefix of the job queue's and the jobs' Redis keys, so deployments (and tests) can share one Redis. */
  redisPrefix: string;
  /** With REDIS_URL: the shared job queue (src/jobs/durable-jobs.ts). */
  jobQueue: {
    /** How long a running job's lock lasts without renewal: a job whose instance died runs again after this. */
    lockMs: number;
    /** How often each instance looks for jobs whose lock expired. */
    stalledIntervalMs: number;
    /** Jobs this instance takes from the queue at once (each still only when its device can admit it). */
    concurrency: number;
  };
  /** Upstream endpoints per model (`UPSTREAMS` JSON, or `upstreams` in the file); see src/upstream/config.ts. */
  upstreams: UpstreamConfig[];
  /** Instances that route to each other through Redis (`PEERS=true`); null = off. See src/peers/. */
  peers: PeersConfig | null;
  /** API keys (hashes only; `latentgate keys`); see src/auth/. */
  auth: {
    /** The keys file (`API_KEYS_FILE`); with Redis, keys are shared through Redis as well. */
    keysFile: string | null;
    /** Serve without keys on a non-loopback address (`ALLOW_UNAUTHENTICATED=true`). */
    allowUnauthenticated: boolean;
    /** How often each instance rereads the key list (a revocation is also announced through Redis at once). */
    refreshMs: number;
    /** Prefix of the keys' Redis hash and channel, so deployments can share one Redis. */
    redisPrefix: string;
  };
  /** Least severe level of the JSON log lines on stdout (`silent`: none). */
  logLevel: LogLevel;
  /** Signs result URLs (`URL_SIGNING_KEY` or the file `URL_SIGNING_KEY_FILE`); null = unsigned URLs. */
  urlSigningKey: Secret | null;
  /** What web pages may do with the gateway; see src/server/browser-safety.ts. */
  browser: {
    /** Origins besides the gateway's own whose pages may call it (`CORS_ORIGINS`, comma-separated; none by default). */
    corsOrigins: string[];
    /** GraphiQL at /graphql (`GRAPHIQL=true`). */
    graphiql: boolean;
    /** Schema introspection (`INTROSPECTION=true`). */
    introspection: boolean;
  };
  /** The Hugging Face Hub: where models are pulled from and cached (src/hub/). */
  hub: {
    /** HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub: the cache Python tools share. */
    cacheDir: string;
    /** HF_ENDPOINT: the Hub or a mirror of it. */
    endpoint: string;
    /** HF_TOKEN (or HF_TOKEN_FILE): for gated and private repositories. */
    token: Secret | null;
    /** HF_HUB_OFFLINE=1: serve and list from the cache only; never a request. */
    offline: boolean;
    /** MODELS: presets or REPO[@REVISION] to pull at start (when online and not cached yet). */
    pullAtStart: string[];
  };
}

export interface PeersConfig {
  /** This instance as its peers name it (route target `peer:<name>`); default PEER_URL's host. */
  name: string;
  /** Where peers reach this instance (`PEER_URL`, default PUBLIC_URL). */
  url: string;
  /** Prefix of the registry's Redis keys, so deployments (and tests) can share one Redis. */
  redisPrefix: string;
  heartbeatMs: number;
  /** A peer whose heartbeat is older than this is gone. */
  ttlMs: number;
  /** Sent to peers as `Authorization: Bearer` (an API key every instance accepts); null = none. */
  token: Secret | null;
}

/** The shortest URL_SIGNING_KEY accepted: 32 characters, as many as HMAC-SHA256's output has bytes. */
const MIN_SIGNING_KEY_LENGTH = 32;

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
  hostMemory: 'HOST_MEMORY',
  executionProvider: 'EXECUTION_PROVIDER',
  intraOpThreads: 'INTRA_OP_THREADS',
  maxImageBytes: 'MAX_IMAGE_BYTES',
  maxImagePixels: 'MAX_IMAGE_PIXELS',
  maxLatentBytes: 'MAX_LATENT_BYTES',
  maxBatch: 'MAX_BATCH',
  maxQueueLength: 'MAX_QUEUE_LENGTH',
  maxQueryDepth: 'MAX_QUERY_DEPTH',
  maxQueryTokens: 'MAX_QUERY_TOKENS',
  maxQueryAliases: 'MAX_QUERY_ALIASES',
  maxQueryDirectives: 'MAX_QUERY_DIRECTIVES',
  maxQueryCost: 'MAX_QUERY_COST',
  maxComputeFields: 'MAX_COMPUTE_FIELDS',
  maxDocumentBytes: 'MAX_DOCUMENT_BYTES',
  headersTimeoutMs: 'HEADERS_TIMEOUT_MS',
  requestTimeoutMs: 'REQUEST_TIMEOUT_MS',
  keepAliveTimeoutMs: 'KEEP_ALIVE_TIMEOUT_MS',
  maxConnections: 'MAX_CONNECTIONS',
  batchWindowMs: 'BATCH_WINDOW_MS',
  resultTtlSeconds: 'RESULT_TTL_SECONDS',
  jobTtlSeconds: 'JOB_TTL_SECONDS',
  redisUrl: 'REDIS_URL',
  redisRequired: 'REDIS_REQUIRED',
  redisCommandTimeoutMs: 'REDIS_COMMAND_TIMEOUT_MS',
  redisConnectTimeoutMs: 'REDIS_CONNECT_TIMEOUT_MS',
  redisHealthIntervalMs: 'REDIS_HEALTH_INTERVAL_MS',
  shutdownGraceSeconds: 'SHUTDOWN_GRACE_SECONDS',
  redisPrefix: 'REDIS_PREFIX',
  jobLockMs: 'JOB_LOCK_MS',
  jobStalledIntervalMs: 'JOB_STALLED_INTERVAL_MS',
  jobConcurrency: 'JOB_CONCURRENCY',
  upstreams: 'UPSTREAMS',
  peers: 'PEERS',
  peerName: 'PEER_NAME',
  peerUrl: 'PEER_URL',
  peersRedisPrefix: 'PEERS_REDIS_PREFIX',
  peerHeartbeatMs: 'PEER_HEARTBEAT_MS',
  peerTtlMs: 'PEER_TTL_MS',
  apiKeysFile: 'API_KEYS_FILE',
  allowUnauthenticated: 'ALLOW_UNAUTHENTICATED',
  apiKeysRefreshMs: 'API_KEYS_REFRESH_MS',
  apiKeysRedisPrefix: 'API_KEYS_REDIS_PREFIX',
  logLevel: 'LOG_LEVEL',
  corsOrigins: 'CORS_ORIGINS',
  graphiql: 'GRAPHIQL',
  introspection: 'INTROSPECTION',
  hfHubCache: 'HF_HUB_CACHE',
  hfHome: 'HF_HOME',
  xdgCacheHome: 'XDG_CACHE_HOME',
  hfEndpoint: 'HF_ENDPOINT',
  hfHubOffline: 'HF_HUB_OFFLINE',
  models: 'MODELS',
} as const;

type SettingKey = keyof typeof SETTINGS;

/**
 * HOST_MEMORY's default: a quarter of the machine's memory, less 512 MiB for the process itself (Node,
 * onnxruntime and libvips code, loaded models' weights, GraphQL), at least 256 MiB. On CPU the device
 * budget (DEVICE_MEMORY) is host memory too, so the two together should stay below what the machine has.
 */
export function hostMemoryDefault(total: number = totalmem()): number {
  return Math.max(256 * 2 ** 20, Math.floor(total / 4) - 512 * 2 ** 20);
}

/** An integer setting, as text (a file's numbers are read as text too). */
function integer(fallback: number, min: number, max?: number) {
  return integerText(min, max).default(fallback);
}

const flag = () => z.enum(['true', 'false']).default('false');

/** An origin exactly as a browser sends it in `Origin`: `scheme://host[:port]`, lower case, no default port. */
function originProblem(given: string): string | null {
  if (given === '*') return '"*" is not allowed (it would let every web page use the gateway)';
  let url: URL;
  try {
    url = new URL(given);
  } catch {
    return `"${given}" is not an origin (e.g. https://app.example.com)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${given}" is not an http or https origin`;
  if (url.origin !== given)
    return `"${given}" is not an origin as a browser sends it: that would be "${url.origin}" (no path, lower case)`;
  return null;
}

/** `CORS_ORIGINS`: origins separated by commas (a file may give a list); `*` is not one, so never allowed. */
function originList() {
  return z.union([z.string(), z.array(z.string())]).transform((given, context) => {
    const origins = (typeof given === 'string' ? given.split(',') : given).map((o) => o.trim()).filter(Boolean);
    const problems = origins.map(originProblem).filter((p) => p !== null);
    if (problems.length > 0)
      context.addIssue({ code: 'custom', input: given, message: `${problems.join('; ')}; list exact origins` });
    return origins;
  });
}

/** A boolean as huggingface_hub reads one (`1`, `true`, `yes`, `on`, any case), so one setting serves both. */
function hubFlag() {
  return z
    .string()
    .regex(/^(1|0|true|false|yes|no|on|off)$/i, { error: 'it must be 1 or 0 (or true / false, yes / no, on / off)' })
    .transform((v) => /^(1|true|yes|on)$/i.test(v))
    .default(false);
}

/** `MODELS`: comma-separated presets (`taesd`) or repositories (`ORG/NAME[@REVISION]`); checked when pulled. */
function modelList() {
  return z.union([z.string(), z.array(z.string())]).transform((given, context) => {
    const items = (typeof given === 'string' ? given.split(',') : given).map((m) => m.trim()).filter(Boolean);
    const bad = items.filter((m) => !/^[\w.-]+(\/[\w.-]+)?(@[\w./-]+)?$/.test(m));
    if (bad.length > 0)
      context.addIssue({
        code: 'custom',
        input: given,
        message: `${bad.map((b) => `"${b}"`).join(', ')}: each must be a preset (taesd) or ORG/NAME[@REVISION]`,
      });
    return items;
  });
}

/** What the schema yields: all but the secrets, read apart (see loadConfig). */
type Validated = Omit<Config, 'urlSigningKey' | 'hub'> & { hub: Omit<Config['hub'], 'token'> };

function configSchema(env: NodeJS.ProcessEnv) {
  return settingsObject({
    host: z.string().default('127.0.0.1'),
    port: integer(4000, 0, 65535),
    publicUrl: z.url().optional(),
    modelsDir: z.string().default('./models'),
    dataDir: z.string().default('./data'),
    deviceMemory: byteSize(2 ** 20).default(4 * 2 ** 30),
    headroom: byteSize().default(256 * 2 ** 20),
    hostMemory: byteSize(2 ** 20).default(hostMemoryDefault()),
    executionProvider: z.enum(['auto', 'cuda', 'webgpu', 'cpu']).default('auto'),
    intraOpThreads: integer(0, 0, 1024),
    maxImageBytes: byteSize(1024).default(50 * 2 ** 20),
    maxImagePixels: integer(4096 * 4096, 64),
    maxLatentBytes: byteSize(1024).default(256 * 2 ** 20),
    maxBatch: integer(16, 1, 1024),
    maxQueueLength: integer(64, 0, 100000),
    // Why these defaults: README, Limits.
    maxQueryDepth: integer(10, 1, 1000),
    maxQueryTokens: integer(2000, 10, 1_000_000),
    maxQueryAliases: integer(15, 0, 10_000),
    maxQueryDirectives: integer(10, 0, 10_000),
    maxQueryCost: integer(5000, 1),
    maxComputeFields: integer(4, 1, 1000),
    maxDocumentBytes: byteSize(1024).default(2 ** 20),
    headersTimeoutMs: integer(10_000, 100),
    requestTimeoutMs: integer(120_000, 100),
    keepAliveTimeoutMs: integer(5_000, 100),
    maxConnections: integer(512, 1),
    batchWindowMs: integer(5, 0, 10000),
    resultTtlSeconds: integer(3600, 1),
    jobTtlSeconds: integer(3600, 1),
    redisUrl: z.url().optional(),
    redisRequired: z.enum(['true', 'false']).default('true'),
    redisCommandTimeoutMs: integer(2000, 10, 60_000),
    redisConnectTimeoutMs: integer(5000, 10, 60_000),
    redisHealthIntervalMs: integer(2000, 100, 60_000),
    shutdownGraceSeconds: integer(30, 0, 3600),
    redisPrefix: z.string().min(1).default('latentgate:'),
    jobLockMs: integer(30_000, 500, 3_600_000),
    jobStalledIntervalMs: integer(30_000, 100, 3_600_000),
    jobConcurrency: integer(2, 1, 64),
    upstreams: upstreamList(env).default([]),
    peers: flag(),
    peerName: z.string().min(1).optional(),
    peerUrl: z.url({ protocol: /^https?$/ }).optional(),
    peersRedisPrefix: z.string().min(1).default('latentgate:peers:'),
    peerHeartbeatMs: integer(2000, 100, 60_000),
    peerTtlMs: integer(10_000, 300, 600_000),
    apiKeysFile: z.string().optional(),
    allowUnauthenticated: flag(),
    // At most 10 s: a revoked key must stop working everywhere within that, even when a Redis message is lost.
    apiKeysRefreshMs: integer(5000, 100, 10000),
    apiKeysRedisPrefix: z.string().min(1).default('latentgate:apikeys:'),
    logLevel: z.enum(LOG_LEVELS).default('info'),
    corsOrigins: originList().default([]),
    graphiql: flag(),
    introspection: flag(),
    hfHubCache: z.string().optional(),
    hfHome: z.string().optional(),
    xdgCacheHome: z.string().optional(),
    hfEndpoint: z.url({ protocol: /^https?$/ }).default('https://huggingface.co'),
    hfHubOffline: hubFlag(),
    models: modelList().default([]),
  })
    .superRefine((s, context) => {
      if (s.headroom >= s.deviceMemory)
        context.addIssue({
          code: 'custom',
          path: ['headroom'],
          message: `it must be smaller than DEVICE_MEMORY (${formatBytes(s.deviceMemory)})`,
        });
      if (s.peers === 'true' && !s.redisUrl)
        context.addIssue({
          code: 'custom',
          path: ['peers'],
          message: 'peers find each other through Redis: set REDIS_URL',
        });
      if (s.peerTtlMs < 2 * s.peerHeartbeatMs)
        context.addIssue({
          code: 'custom',
          path: ['peerTtlMs'],
          message: `it must be at least twice PEER_HEARTBEAT_MS (${s.peerHeartbeatMs}), or one late beat drops a peer`,
        });
      // Node refuses a header timeout above the whole request's.
      if (s.headersTimeoutMs > s.requestTimeoutMs)
        context.addIssue({
          code: 'custom',
          path: ['headersTimeoutMs'],
          message: `it must be at most REQUEST_TIMEOUT_MS (${s.requestTimeoutMs})`,
        });
    })
    .transform((s): Validated => {
      const publicUrl = (s.publicUrl ?? `http://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).replace(
        /\/$/,
        '',
      );
      const peerUrl = (s.peerUrl ?? publicUrl).replace(/\/$/, '');
      return {
        host: s.host,
        port: s.port,
        publicUrl,
        modelsDir: resolve(s.modelsDir),
        dataDir: resolve(s.dataDir),
        deviceMemoryBytes: s.deviceMemory,
        headroomBytes: s.headroom,
        hostMemoryBytes: s.hostMemory,
        executionProvider: s.executionProvider,
        intraOpThreads: s.intraOpThreads,
        limits: {
          maxImageBytes: s.maxImageBytes,
          maxImagePixels: s.maxImagePixels,
          maxLatentBytes: s.maxLatentBytes,
          maxBatch: s.maxBatch,
          maxQueueLength: s.maxQueueLength,
        },
        graphqlLimits: {
          maxDepth: s.maxQueryDepth,
          maxTokens: s.maxQueryTokens,
          maxAliases: s.maxQueryAliases,
          maxDirectives: s.maxQueryDirectives,
          maxCost: s.maxQueryCost,
          maxComputeFields: s.maxComputeFields,
          maxDocumentBytes: s.maxDocumentBytes,
        },
        http: {
          headersTimeoutMs: s.headersTimeoutMs,
          requestTimeoutMs: s.requestTimeoutMs,
          keepAliveTimeoutMs: s.keepAliveTimeoutMs,
          maxConnections: s.maxConnections,
        },
        batchWindowMs: s.batchWindowMs,
        resultTtlSeconds: s.resultTtlSeconds,
        jobTtlSeconds: s.jobTtlSeconds,
        redisUrl: s.redisUrl ?? null,
        redis: {
          required: s.redisRequired === 'true',
          commandTimeoutMs: s.redisCommandTimeoutMs,
          connectTimeoutMs: s.redisConnectTimeoutMs,
          healthIntervalMs: s.redisHealthIntervalMs,
        },
        shutdownGraceSeconds: s.shutdownGraceSeconds,
        redisPrefix: s.redisPrefix,
        jobQueue: { lockMs: s.jobLockMs, stalledIntervalMs: s.jobStalledIntervalMs, concurrency: s.jobConcurrency },
        upstreams: s.upstreams,
        peers:
          s.peers === 'true'
            ? {
                name: s.peerName ?? new URL(peerUrl).host,
                url: peerUrl,
                redisPrefix: s.peersRedisPrefix,
                heartbeatMs: s.peerHeartbeatMs,
                ttlMs: s.peerTtlMs,
                token: null,
              }
            : null,
        auth: {
          keysFile: s.apiKeysFile ? resolve(s.apiKeysFile) : null,
          allowUnauthenticated: s.allowUnauthenticated === 'true',
          refreshMs: s.apiKeysRefreshMs,
          redisPrefix: s.apiKeysRedisPrefix,
        },
        logLevel: s.logLevel,
        browser: {
          corsOrigins: s.corsOrigins,
          graphiql: s.graphiql === 'true',
          introspection: s.introspection === 'true',
        },
        // huggingface_hub's order, so both use one cache.
        hub: {
          cacheDir: resolve(
            s.hfHubCache ?? join(s.hfHome ?? join(s.xdgCacheHome ?? join(homedir(), '.cache'), 'huggingface'), 'hub'),
          ),
          endpoint: s.hfEndpoint.replace(/\/+$/, ''),
          offline: s.hfHubOffline,
          pullAtStart: s.models,
        },
      };
    });
}

/** `PORT (port)` for a top-level setting; a dotted path inside one (`upstreams[0].url`). */
function settingName(path: PropertyKey[]): string {
  const [key] = path;
  return path.length === 1 && typeof key === 'string' && key in SETTINGS
    ? `${SETTINGS[key as SettingKey]} (${key})`
    : dottedPath(path);
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
  // The file's values as text, like the environment's (a list stays a list); the environment wins.
  const given: Source = {};
  for (const [key, value] of Object.entries({ ...readConfigFile(env.LATENTGATE_CONFIG), ...overrides }))
    if (value !== undefined && value !== null) given[key] = typeof value === 'object' ? value : String(value);
  for (const [key, name] of Object.entries(SETTINGS))
    if (env[name] !== undefined && env[name] !== '') given[key] = env[name];
  const result = validate(configSchema(env), given, settingName);
  if (!result.ok)
    throw new ConfigError(`invalid configuration:\n  - ${result.problems.map(describeProblem).join('\n  - ')}`);
  // Read apart from the schema, whose problems quote the value given: a secret is never quoted, nor in the file.
  try {
    const urlSigningKey = readSecret(env, 'URL_SIGNING_KEY', MIN_SIGNING_KEY_LENGTH);
    const peerToken = readSecret(env, 'PEER_TOKEN', 1);
    const { peers, hub } = result.value;
    return {
      ...result.value,
      urlSigningKey,
      peers: peers && { ...peers, token: peerToken },
      hub: { ...hub, token: readSecret(env, 'HF_TOKEN', 1) },
    };
  } catch (error) {
    throw new ConfigError(`invalid configuration: ${(error as Error).message}`);
  }
}
