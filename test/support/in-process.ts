/**
 * The gateway inside the test process: the real configuration loader, the real services, GraphQL
 * through Yoga's own `fetch`, and the real HTTP request handler (Hybrid Inference, result URLs,
 * /healthz, WebSocket) listening on a loopback port so the URLs the gateway hands out resolve.
 * No child process, so a test file pays for one start of the services, not for a Node start,
 * a TypeScript load and a model load per gateway. `bin/latentgate.js serve` itself is covered by
 * the smoke tests (test/smoke.test.ts and the CLI, playground and Redis tests).
 */
import { loadConfig } from '../../src/config/config.ts';
import { createGraphQLHandler, createHttpServer, listen } from '../../src/server/http.ts';
import { createServices, type RunningServices } from '../../src/server/services.ts';
import { NO_HUB_CACHE } from './paths.js';
import { CSRF_HEADERS, freePort, type GraphQLResponse, multipartBody, type TestGateway } from './server.ts';

export interface InProcessGateway extends TestGateway {
  /** The gateway's own services, for a look inside (the ledger, the store) that HTTP does not give. */
  services: RunningServices;
}

/**
 * Starts the gateway in this process with `env` over this process's environment (as a child would
 * see it): the same settings `startGateway` takes.
 */
export async function startInProcessGateway(env: Record<string, string>): Promise<InProcessGateway> {
  // The port is chosen before the configuration is read so PUBLIC_URL's default names it, as in `serve`.
  const port = await freePort();
  const config = loadConfig({ ...process.env, HOST: '127.0.0.1', PORT: String(port), ...NO_HUB_CACHE, ...env });
  const services = await createServices(config);
  const yoga = createGraphQLHandler(services);
  const server = createHttpServer(services);
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    await services.close();
    throw error;
  }
  const url = `http://127.0.0.1:${port}`;
  const post = async (body: BodyInit, headers?: Record<string, string>, signal?: AbortSignal) => {
    const answer = yoga.fetch(`${url}/graphql`, { method: 'POST', headers, body, signal });
    // The signal bounds the wait here too, so a hung request fails its test instead of stalling it.
    const response = signal ? await Promise.race([answer, rejectOnAbort(signal)]) : await answer;
    return response.json() as Promise<GraphQLResponse<any>>;
  };
  let stopped: Promise<void> | undefined;
  return {
    url,
    services,
    graphql: (query, variables, options) =>
      post(JSON.stringify({ query, variables }), { 'content-type': 'application/json' }, options?.signal),
    upload: (query, variables, path, file, filename) =>
      post(multipartBody(query, variables, path, file, filename), { ...CSRF_HEADERS }),
    stop() {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await yoga.dispose();
        await services.close();
      })();
      return stopped;
    },
  };
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
