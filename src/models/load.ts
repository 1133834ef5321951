/** The models a gateway serves: MODELS_DIR's folders, then what the Hub cache holds (src/hub/sources.ts). */
import type { Config } from '../config/config.js';
import { type HubScan, localModelIds, scanHubCache } from '../hub/sources.js';
import { ModelRegistry } from './registry.js';

export async function loadModels(config: Pick<Config, 'modelsDir' | 'dataDir' | 'hub'>): Promise<{
  registry: ModelRegistry;
  hub: HubScan;
}> {
  const hub = await scanHubCache(config.hub, config.dataDir, localModelIds(config.modelsDir));
  return { registry: await ModelRegistry.load(config.modelsDir, hub.sources), hub };
}
