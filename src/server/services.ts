/** The composition root: builds every service from the configuration, and closes them. */
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { deviceMemory } from '../gpu/device-memory.js';
import { LocalExecutor } from '../gpu/local-executor.js';
import { chooseProvider, OnnxRuntime } from '../gpu/onnx-runtime.js';
import { JobManager } from '../jobs/manager.js';
import { FAMILIES, isFamilyId } from '../models/families.js';
import { ModelRegistry } from '../models/registry.js';
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
  close(): Promise<void>;
}

export async function createServices(config: Config): Promise<RunningServices> {
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
  const jobs = new JobManager(config.jobTtlSeconds);
  const upstreams = config.upstreams.length > 0 ? new UpstreamPool(config.upstreams) : null;
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
  const router = new Router(profiles, new LocalRunner(new LocalExecutor(runtime), ledger, new RunStats()), {
    upstream: upstreams,
    batching: { windowMs: config.batchWindowMs, maxBatch: config.limits.maxBatch },
  });
  return {
    config,
    registry,
    router,
    store,
    profiles,
    jobs,
    host,
    batcher: router.batcher,
    prompts: new PromptEncoder(runtime),
    img2imgUpstreams: upstreams,
    runtime,
    ledger,
    deviceMemorySource: memory.source,
    upstreams,
    async close() {
      upstreams?.close();
      jobs.close();
      await store.close();
      await runtime.close();
    },
  };
}
