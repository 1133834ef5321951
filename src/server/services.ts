/** The composition root: builds every service from the configuration, and closes them. */
import { join } from 'node:path';
import { KeyStore } from '../auth/key-store.js';
import type { ApiKey } from '../auth/keys.js';
import type { KeyLimits } from '../auth/limit-specs.js';
import { createKeyLimiter } from '../auth/limiter.js';
import { type Config, ConfigError } from '../config/config.js';
import { deviceMemory } from '../gpu/device-memory.js';
import { LocalExecutor } from '../gpu/local-executor.js';
import { chooseProvider, OnnxRuntime } from '../gpu/onnx-runtime.js';
import type { HubScan } from '../hub/sources.js';
import { DurableJobs } from '../jobs/durable-jobs.js';
import { JobManager } from '../jobs/manager.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { loadModels } from '../models/load.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { GatewayMetrics } from '../observability/metrics.js';
import { RedisHealth } from '../observability/redis-health.js';
import { PeerDirectory } from '../peers/directory.js';
import { describeSelf } from '../peers/self.js';
import { PromptEncoder } from '../pipeline/prompt-encoding.js';
import { HostLedger } from '../routing/host-ledger.js';
import { LocalRunner, Router } from '../routing/index.js';
import { CapacityLedger } from '../routing/ledger.js';
import { ProfileSource } from '../routing/profile-source.js';
import { RunStats } from '../routing/run-stats.js';
import { type RedisSettings, redactedUrl, redisTarget } from '../storage/redis-client.js';
import { RedisResultStore } from '../storage/redis-result-store.js';
import { MemoryResultStore } from '../storage/result-store.js';
import { UpstreamPool } from '../upstream/pool.js';
import type { Services } from './context.js';
import { Lifecycle } from './lifecycle.js';

export interface RunningServices extends Services {
  runtime: OnnxRuntime;
  ledger: CapacityLedger;
  /** Where the device budget came from (the CUDA card, or DEVICE_MEMORY). */
  deviceMemorySource: string;
  /** Configured upstream endpoints and peers (null when there are neither). */
  upstreams: UpstreamPool | null;
  /** Other instances this one routes to (PEERS=true); null when off. */
  peers: PeerDirectory | null;
  /** JSON lines on stdout at LOG_LEVEL. */
  logger: Logger;
  /** The Prometheus registry behind GET /metrics (src/observability/metrics.ts). */
  metrics: GatewayMetrics;
  /** API keys (src/auth/key-store.ts), reread while the gateway runs so a revocation reaches it. */
  keys: KeyStore;
  /** What the Hub cache held at start (src/hub/sources.ts), for the start report. */
  hub: HubScan;
  /** Redis' health (null without REDIS_URL): /healthz and /metrics. */
  redisHealth: RedisHealth | null;
  /** Draining for a graceful shutdown (src/server/lifecycle.ts). */
  lifecycle: Lifecycle;
  /**
   * The graceful shutdown's one entry: takes no new work from now on, waits until the requests and jobs
   * in flight are done or `deadline` (ms since the epoch) has come, then ends the jobs left FAILED.
   * `close` comes after it.
   */
  drain(deadline: number): Promise<void>;
  close(): Promise<void>;
}

/** `logDestination` (tests) replaces stdout as where the log lines go. */
export async function createServices(
  config: Config,
  logDestination?: Parameters<typeof createLogger>[1],
): Promise<RunningServices> {
  const logger = createLogger(config.logLevel, logDestination);
  const redis = redisTarget(config);
  // Checked first: a gateway that needs Redis should not spend a model load on finding it gone.
  const redisHealth = redis && (await checkRedis(redis, config, logger));
  const { registry, hub } = await loadModels(config);
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
  const store = redis
    ? new RedisResultStore(redis, config.resultTtlSeconds, config.redisPrefix)
    : new MemoryResultStore(config.resultTtlSeconds, Date.now, host);
  const upstreams = config.upstreams.length > 0 || config.peers ? new UpstreamPool(config.upstreams) : null;
  const metrics = new GatewayMetrics({ ledger, upstreams });
  if (redisHealth) metrics.registerRedis(() => redisHealth.snapshot());
  metrics.registerHostMemory(() => {
    const { heldBytes, budgetBytes } = host.snapshot();
    return { heldBytes, budgetBytes };
  });
  const jobs = new JobManager(config.jobTtlSeconds, undefined, { logger, metrics });
  // With Redis, jobs go on the queue every instance shares; the in-memory manager then stays unused.
  const durableJobs = redis
    ? await DurableJobs.connect(config, redis, { logger, metrics }, redisHealth?.snapshot().ok ?? true)
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
  const stats = new RunStats();
  const runner = new LocalRunner(new LocalExecutor(runtime), ledger, stats, metrics);
  const router = new Router(profiles, runner, {
    observer: metrics,
    upstream: upstreams,
    batching: { windowMs: config.batchWindowMs, maxBatch: config.limits.maxBatch },
  });
  const peers =
    config.peers && upstreams && redis
      ? new PeerDirectory(config.peers, redis, () => describeSelf(registry, ledger, stats), upstreams, logger)
      : null;
  await peers?.start();
  const keys = await KeyStore.fromConfig(config, true);
  const limiter = createKeyLimiter(
    redis,
    (name) => {
      const key = keys.list().find((k) => k.name === name);
      return key && limitsOf(key);
      // Counters live beside the keys, so an API_KEYS_REDIS_PREFIX of its own separates both.
    },
    {
      prefix: `${config.auth.redisPrefix}limits:`,
      onSettleError: (error, ticket, measured) =>
        logger.warn(
          { key: ticket.keyName, pixelSeconds: measured, error: String(error) },
          `a run's ${measured} pixel-seconds were not counted against key "${ticket.keyName}"'s quota`,
        ),
    },
  );
  const lifecycle = new Lifecycle();
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
    peers,
    logger,
    metrics,
    keys,
    hub,
    redisHealth,
    lifecycle,
    async drain(deadline) {
      lifecycle.begin();
      // Durable jobs still running at the deadline go back to the queue, for another instance to run.
      const handedBack = durableJobs?.drain(Math.max(0, deadline - Date.now()));
      if (!(await lifecycle.settled(() => jobs.activeCount === 0, deadline))) {
        const interrupted = jobs.interrupt();
        logger.warn(
          { jobs: interrupted },
          `shutdown deadline: ${interrupted} job(s) still queued or running end FAILED`,
        );
      }
      await handedBack;
      await lifecycle.flush();
    },
    async close() {
      upstreams?.close();
      await peers?.close();
      jobs.close();
      await durableJobs?.close();
      await Promise.all([store.close(), limiter.close(), keys.close(), redisHealth?.close()]);
      await runtime.close();
    },
  };
  durableJobs?.start(services, ledger);
  return services;
}

/**
 * Redis' health monitor after a first PING: a Redis that does not answer stops the start (ConfigError)
 * unless REDIS_REQUIRED=false, which starts degraded and recovers once Redis answers.
 */
async function checkRedis(redis: RedisSettings, config: Config, logger: Logger): Promise<RedisHealth> {
  const health = new RedisHealth(redis, config.redis.healthIntervalMs, logger);
  const first = await health.check();
  const where = redactedUrl(redis.url);
  if (!first.ok && config.redis.required) {
    await health.close();
    throw new ConfigError(
      `Redis at ${where} (REDIS_URL) does not answer: ${first.reason}; start it, correct REDIS_URL, ` +
        'or set REDIS_REQUIRED=false to start without it (degraded until it answers)',
    );
  }
  if (!first.ok)
    logger.warn(
      { redis: where, reason: first.reason },
      `Redis at ${where} does not answer (${first.reason}); starting degraded (REDIS_REQUIRED=false): ` +
        'result URLs, API keys and limits answer SERVICE_UNAVAILABLE until it does',
    );
  health.start();
  return health;
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
