/** The composition root: builds every service from the configuration, and closes them. */
import { join } from 'node:path';
import { KeyStore } from '../auth/key-store.js';
import type { ApiKey } from '../auth/keys.js';
import type { KeyLimits } from '../auth/limit-specs.js';
import { createKeyLimiter } from '../auth/limiter.js';
import type { Config } from '../config/config.js';
import { deviceMemory } from '../gpu/device-memory.js';
import { LocalExecutor } from '../gpu/local-executor.js';
import { chooseProvider, OnnxRuntime } from '../gpu/onnx-runtime.js';
import { DurableJobs } from '../jobs/durable-jobs.js';
import { JobManager } from '../jobs/manager.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { ModelRegistry } from '../models/registry.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { GatewayMetrics } from '../observability/metrics.js';
import { PromptEncoder } from '../pipeline/prompt-encoding.js';
import { HostLedger } from '../routing/host-ledger.js';
import { LocalRunner, Router } from '../routing/index.js';
import { CapacityLedger } from '../routing/ledger.js';
import { ProfileSource } from '../routing/profile-source.js';
import { RunStats } from '../routing/run-stats.js';
import { RedisResultStore } from '../storage/redis-result-store.js';
import { MemoryResultStore } from '../storage/result-store.js';
import { UpstreamPool } from '../upstream/pool.js';
import type { Services } from './context.js';

export interface RunningServices extends Services {
  runtime: OnnxRuntime;
  ledger: CapacityLedger;
  /** Where the device budget came from (the CUDA card, or DEVICE_MEMORY). */
  deviceMemorySource: string;
  /** Configured upstream endpoints (null when none are). */
  upstreams: UpstreamPool | null;
  /** JSON lines on stdout at LOG_LEVEL. */
  logger: Logger;
  /** The Prometheus registry behind GET /metrics (src/observability/metrics.ts). */
  metrics: GatewayMetrics;
  /** API keys (src/auth/key-store.ts), reread while the gateway runs so a revocation reaches it. */
  keys: KeyStore;
  close(): Promise<void>;
}

/** `logDestination` (tests) replaces stdout as where the log lines go. */
export async function createServices(
  config: Config,
  logDestination?: Parameters<typeof createLogger>[1],
): Promise<RunningServices> {
  const logger = createLogger(config.logLevel, logDestination);
  const registry = await ModelRegistry.load(config.modelsDir);
  const runtime = new OnnxRuntime(await chooseProvider(config.executionProvider), config.intraOpThreads);
  const memory = await deviceMemory(runtime.choice.provider, config.deviceMemoryBytes);
  const ledger = new CapacityLedger({
    budgetBytes: memory.bytes,
    headroomBytes: config.headroomBytes,
    maxQueueLength: config.limits.maxQueueLength,
    name: `local:${runtime.choice.provider}`,
  });
  const profiles = new ProfileSource(join(config.dataDir, 'profiles'));
  const host = new HostLedger(config.hostMemoryBytes);
  // With Redis, every instance serves every instance's result URLs.
  const store = config.redisUrl
    ? new RedisResultStore(config.redisUrl, config.resultTtlSeconds)
    : new MemoryResultStore(config.resultTtlSeconds, Date.now, host);
  const upstreams = config.upstreams.length > 0 ? new UpstreamPool(config.upstreams) : null;
  const metrics = new GatewayMetrics({ ledger, upstreams });
  metrics.registerHostMemory(() => {
    const { heldBytes, budgetBytes } = host.snapshot();
    return { heldBytes, budgetBytes };
  });
  const jobs = new JobManager(config.jobTtlSeconds, undefined, { logger, metrics });
  // With Redis, jobs go on the queue every instance shares; the in-memory manager then stays unused.
  const durableJobs = config.redisUrl
    ? await DurableJobs.connect({ ...config, redisUrl: config.redisUrl }, { logger, metrics })
    : null;
  if (upstreams) {
    for (const [id, operations] of upstreams.models()) {
      // A model with no local weights takes its latent conventions from the entry's family (or its id).
      const entry =
        config.upstreams.find((u) => u.model === id && (u.family || u.latentChannels)) ??
        config.upstreams.find((u) => u.model === id)!;
      const familyId = entry.family ?? (isFamilyId(id) ? id : null);
      const base = familyId ? FAMILIES[familyId] : null;
      const conventions = base && {
        ...base,
        latentChannels: entry.latentChannels ?? base.latentChannels,
        downscaleFactor: entry.downscaleFactor ?? base.downscaleFactor,
      };
      registry.addUpstream(id, operations, conventions);
    }
    for (const id of upstreams.img2imgModels()) {
      const entry = config.upstreams.find((u) => u.model === id && u.family) ?? null;
      const familyId = entry?.family ?? (isFamilyId(id) ? id : null);
      // Only the init image's resize to the VAE factor depends on it for a model without local weights.
      registry.addUpstream(id, ['img2img'], familyId ? FAMILIES[familyId] : FAMILIES.sd15);
    }
    upstreams.start();
  }
  const runner = new LocalRunner(new LocalExecutor(runtime), ledger, new RunStats(), metrics);
  const router = new Router(profiles, runner, {
    observer: metrics,
    upstream: upstreams,
    batching: { windowMs: config.batchWindowMs, maxBatch: config.limits.maxBatch },
  });
  const keys = await KeyStore.fromConfig(config, true);
  const limiter = createKeyLimiter(
    config.redisUrl,
    (name) => {
      const key = keys.list().find((k) => k.name === name);
      return key && limitsOf(key);
      // Counters live beside the keys, so an API_KEYS_REDIS_PREFIX of its own separates both.
    },
    { prefix: `${config.auth.redisPrefix}limits:` },
  );
  const services: RunningServices = {
    config,
    registry,
    router,
    store,
    profiles,
    jobs,
    durableJobs,
    host,
    batcher: router.batcher,
    prompts: new PromptEncoder(runtime),
    img2imgUpstreams: upstreams,
    limiter,
    runtime,
    ledger,
    deviceMemorySource: memory.source,
    upstreams,
    logger,
    metrics,
    keys,
    async close() {
      upstreams?.close();
      jobs.close();
      await durableJobs?.close();
      await Promise.all([store.close(), limiter.close(), keys.close()]);
      await runtime.close();
    },
  };
  durableJobs?.start(services, ledger);
  return services;
}

/** A key record's limits as the limiter reads them. */
function limitsOf(key: ApiKey): KeyLimits {
  const rate = key.rate && { ...key.rate, text: `${key.rate.requests}/${key.rate.windowSeconds}s` };
  const quota = key.quotaPixelSecondsPerDay && {
    pixelSeconds: key.quotaPixelSecondsPerDay,
    text: `${key.quotaPixelSecondsPerDay}/day`,
  };
  return { rate, quota: quota || null };
}
