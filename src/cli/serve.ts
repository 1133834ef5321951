import { authMode } from '../auth/startup.js';
import { ConfigError, loadConfig } from '../config/config.js';
import { formatBytes } from '../config/units.js';
import { pullAtStart } from '../hub/startup.js';
import { createLogger } from '../observability/logger.js';
import { createHttpServer, listen } from '../server/http.js';
import { createServices } from '../server/services.js';

/** How long closing connections and stores may take after SHUTDOWN_GRACE_SECONDS before the process exits anyway. */
const CLOSE_ALLOWANCE_SECONDS = 15;

export async function serve(): Promise<void> {
  const config = loadConfig();
  if (config.hub.pullAtStart.length > 0) await pullAtStart(config, createLogger(config.logLevel));
  const services = await createServices(config);
  const { logger } = services;
  let mode: string;
  try {
    // Refuses (ConfigError) a non-loopback address without keys unless ALLOW_UNAUTHENTICATED=true.
    mode = authMode({
      host: config.host,
      keysRequired: services.keys.required,
      keyCount: services.keys.size,
      keySource: services.keys.source,
      allowUnauthenticated: config.auth.allowUnauthenticated,
    });
  } catch (error) {
    await services.close();
    throw error;
  }
  logger.info({ auth: mode }, mode);
  const { hub } = services;
  const fromCache = services.registry.list().filter((m) => hub.sources.some((s) => s.id === m.id));
  logger.info(
    { hubCache: hub.cacheDir, served: fromCache.map((m) => m.id), skipped: hub.skipped },
    `Hub cache ${hub.cacheDir}: ` +
      `${fromCache.length > 0 ? `serving ${fromCache.map((m) => `${m.id} (${m.origin})`).join(', ')}` : 'no model served from it'}` +
      `${hub.skipped.length > 0 ? `; not in a layout latentgate serves: ${hub.skipped.join(', ')}` : ''}`,
  );
  for (const warning of hub.warnings) logger.warn({ hubCache: hub.cacheDir }, warning);
  for (const problem of services.registry.problems)
    logger.warn(
      { model: problem.id, path: problem.path, error: problem.error },
      `model ${problem.id} not loaded (${problem.path}): ${problem.error}`,
    );
  const server = createHttpServer(services);
  const port = await listen(server, config.port, config.host).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'EADDRINUSE')
      throw new ConfigError(`${config.host}:${config.port} is already in use; set PORT (or HOST) to a free address`);
    if (error.code === 'EACCES')
      throw new ConfigError(`no permission to listen on ${config.host}:${config.port}; set PORT to 1024 or above`);
    throw error;
  });
  const models = services.registry.list().map((m) => m.id);
  const snapshot = services.ledger.snapshot();
  // Tests and people wait for this line: `msg` names where it listens.
  logger.info(
    { host: config.host, port, models, device: snapshot.name, budgetBytes: snapshot.budgetBytes },
    `listening on http://${config.host}:${port}/graphql; ` +
      `models: ${
        models.join(', ') ||
        `none (get one: \`latentgate models pull taesd\`, or start with MODELS=taesd, or put model folders in ${config.modelsDir})`
      }; ` +
      `device ${snapshot.name} (${services.runtime.choice.reason}), ` +
      `budget ${formatBytes(snapshot.budgetBytes)} from ${services.deviceMemorySource}`,
  );
  // Graceful shutdown: new work is refused (/healthz says "draining") while the connections stay open,
  // so runs in flight can finish and be answered and their jobs read, for up to SHUTDOWN_GRACE_SECONDS;
  // jobs still going then end FAILED. A second signal exits at once.
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) {
      logger.warn({ signal }, `${signal} again: exiting without waiting for runs in flight`);
      process.exit(1);
    }
    closing = true;
    const grace = config.shutdownGraceSeconds;
    logger.info({ signal, graceSeconds: grace }, `${signal}: draining (runs in flight have ${grace} s to finish)`);
    // Whatever waits on a service that does not answer (a Redis that is down), the process still ends.
    setTimeout(
      () => {
        logger.error({ signal }, `not closed ${CLOSE_ALLOWANCE_SECONDS} s after the grace period; exiting`);
        process.exit(1);
      },
      (grace + CLOSE_ALLOWANCE_SECONDS) * 1000,
    ).unref();
    await services.drain(Date.now() + grace * 1000);
    server.close();
    server.closeAllConnections();
    await services.close();
    logger.info({ signal }, 'drained; exiting');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}
