/** The composition root: builds every service from the configuration, and closes them. */
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { LocalExecutor } from '../gpu/local-executor.js';
import { chooseProvider, OnnxRuntime } from '../gpu/onnx-runtime.js';
import { ModelRegistry } from '../models/registry.js';
import { Router } from '../routing/index.js';
import { CapacityLedger } from '../routing/ledger.js';
import { ProfileSource } from '../routing/profile-source.js';
import { LocalRunner } from '../routing/router.js';
import { RunStats } from '../routing/run-stats.js';
import { MemoryResultStore } from '../storage/result-store.js';
import { RedisResultStore } from '../storage/redis-result-store.js';
import type { Services } from './context.js';

export interface RunningServices extends Services {
  runtime: OnnxRuntime;
  ledger: CapacityLedger;
  close(): Promise<void>;
}

export async function createServices(config: Config): Promise<RunningServices> {
  const registry = await ModelRegistry.load(config.modelsDir);
  const runtime = new OnnxRuntime(await chooseProvider(config.executionProvider), config.intraOpThreads);
  const ledger = new CapacityLedger({ budgetBytes: config.deviceMemoryBytes, headroomBytes: config.headroomBytes, maxQueueLength: config.limits.maxQueueLength, name: `local:${runtime.choice.provider}` });
  const profiles = new ProfileSource(join(config.dataDir, 'profiles'));
  const router = new Router(profiles, new LocalRunner(new LocalExecutor(runtime), ledger, new RunStats()));
  // With Redis, every instance serves every instance's result URLs.
  const store = config.redisUrl ? new RedisResultStore(config.redisUrl, config.resultTtlSeconds) : new MemoryResultStore(config.resultTtlSeconds);
  return {
    config,
    registry,
    router,
    store,
    profiles,
    runtime,
    ledger,
    async close() {
      await store.close();
      await runtime.close();
    },
  };
}
