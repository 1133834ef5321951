/** `MODELS=taesd,taef2`: pulls each at start unless the cache has it; an unreachable Hub is reported, not fatal. */
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/config.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { SILENT_PROGRESS, StderrProgress } from './progress.js';
import { findCached, parseSpec, pull } from './pull.js';

export async function pullAtStart(config: Pick<Config, 'hub' | 'dataDir'>, logger: Logger): Promise<void> {
  const specs = config.hub.pullAtStart;
  // Every name checked before any download, so a typo stops the start at once.
  for (const spec of specs)
    try {
      parseSpec(spec);
    } catch (error) {
      throw new ConfigError(`MODELS (models): ${(error as Error).message}`);
    }
  const options = {
    hub: config.hub,
    dataDir: config.dataDir,
    progress: process.stderr.isTTY ? new StderrProgress() : SILENT_PROGRESS,
  };
  for (const spec of specs) {
    const found = findCached({ spec }, parseSpec(spec), options);
    if (found) {
      logger.info({ model: found.record.name, dir: found.dir }, `MODELS: ${spec} is in the Hub cache (${found.dir})`);
      continue;
    }
    try {
      const pulled = await pull({ spec }, options);
      logger.info(
        { model: pulled.record.name, repo: pulled.record.repo, commit: pulled.record.commit, dir: pulled.dir },
        `MODELS: pulled ${spec} (${pulled.record.repo}@${pulled.record.commit.slice(0, 12)}) into ${pulled.dir}`,
      );
    } catch (error) {
      const message = error instanceof GatewayError ? error.message : String(error);
      logger.warn({ model: spec, error: message }, `MODELS: ${spec} not pulled: ${message}`);
    }
  }
}
