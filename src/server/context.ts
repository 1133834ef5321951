/** What every resolver and HTTP handler receives: the gateway's services. */
import type { Config } from '../config/config.js';
import type { JobManager } from '../jobs/manager.js';
import type { ModelRegistry } from '../models/registry.js';
import type { EncodeBatcher } from '../routing/batcher.js';
import type { Router } from '../routing/index.js';
import type { ProfileSource } from '../routing/profile-source.js';
import type { ResultStore } from '../storage/result-store.js';

export interface Services {
  config: Config;
  registry: ModelRegistry;
  router: Router;
  store: ResultStore;
  profiles: ProfileSource;
  jobs: JobManager;
  /** Dynamic batching of encodes (BATCH_WINDOW_MS); absent or null = none. */
  batcher?: EncodeBatcher | null;
}

export interface GraphQLContext {
  services: Services;
}
