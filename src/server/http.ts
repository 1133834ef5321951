/**
 * The HTTP server: GraphQL (graphql-yoga) at /graphql over HTTP, SSE and WebSocket (graphql-ws),
 * results delivered by URL at /v1/latents/{id} and /v1/images/{id}, /healthz, Prometheus metrics at
 * /metrics, and the web playground at /.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createYoga } from 'graphql-yoga';
import { authenticate } from '../auth/authenticate.js';
import { ANONYMOUS } from '../auth/limit-specs.js';
import { GatewayError } from '../errors.js';
import { wasReported } from '../observability/answers.js';
import { yogaLogger } from '../observability/logger.js';
import { withHop } from '../peers/hop.js';
import { schema } from '../schema/index.js';
import { earlierRunError } from '../storage/result-store.js';
import { checkResultAccess, deleteResult, RESULT_CACHE_CONTROL } from '../storage/signed-urls.js';
import type { DType } from '../tensors/dtype.js';
import { serializeSafetensors } from '../tensors/safetensors.js';
import { serveWeb } from '../web/serve.js';
import { useApiKeys } from './api-keys.js';
import { browserSafety } from './browser-safety.js';
import { withByteBodies } from './byte-bodies.js';
import type { GraphQLContext } from './context.js';
import { httpErrorAnswer, maskGraphQLError } from './error-edges.js';
import { graphqlBodyLimits, graphqlLimitOptions } from './graphql-limits.js';
import { HYBRID_PATH, handleHybrid } from './hybrid-protocol.js';
import { useDraining } from './lifecycle.js';
import { useRequestErrorCode } from './request-errors.js';
import type { RunningServices } from './services.js';
import { attachGraphQLWebSocket } from './websocket.js';

export function createGraphQLHandler(services: RunningServices) {
  const limits = graphqlLimitOptions(services.config);
  // CORS allow-list, CSRF prevention, GraphiQL and introspection (src/server/browser-safety.ts).
  const safety = browserSafety(services.config, services);
  return createYoga<{ req: IncomingMessage; res: ServerResponse }, GraphQLContext>({
    ...limits,
    fetchAPI: withByteBodies(limits.fetchAPI),
    schema,
    graphqlEndpoint: '/graphql',
    context: () => ({ services }),
    landingPage: false,
    cors: safety.cors,
    graphiql: safety.graphiql,
    // Errors the edge reported (and logged at their level) are left out of Yoga's own log.
    logging: yogaLogger(services.logger, wasReported),
    // Typed errors become GraphQL errors with their code; anything else is logged and masked.
    maskedErrors: { maskError: (error, message, isDev) => maskGraphQLError(services, error, message, isDev) },
    // Body and document limits first; parse, validation and variable errors get the BAD_REQUEST code too;
    // then CSRF prevention and introspection; API keys (src/server/api-keys.ts).
    plugins: [...limits.plugins, useRequestErrorCode(), ...safety.plugins, useDraining(services), useApiKeys(services)],
  });
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function sendError(services: RunningServices, res: ServerResponse, error: unknown): void {
  const { status, body, headers } = httpErrorAnswer(services, error);
  sendJson(res, status, body, headers);
}

async function serveStoredResult(
  services: RunningServices,
  kind: 'latent' | 'image',
  id: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  // A signature, or else a valid key (any scope: whoever may call the gateway may fetch what it made).
  const access = checkResultAccess(url.searchParams, id, {
    signingKey: services.config.urlSigningKey,
    callerAuthorized: authenticate(services.keys, req).ok,
  });
  if (access.status === 401) throw new GatewayError('UNAUTHENTICATED', access.message, { id, reason: access.reason });
  if (access.status === 403) throw new GatewayError('FORBIDDEN', access.message, { id, reason: access.reason });
  const found = await services.store.get(id);
  if (found.status === 'expired') throw new GatewayError('EXPIRED', `${kind} ${id} has expired`, { id });
  if (found.status === 'earlier-run') throw earlierRunError(kind, id);
  if (found.status === 'unknown' || found.result.kind !== kind)
    throw new GatewayError('NOT_FOUND', `no ${kind} with id ${id}`, { id });
  const result = found.result;
  const expires = new Date(result.expiresAt).toUTCString();
  if (kind === 'latent' && url.searchParams.get('format') === 'safetensors') {
    const body = serializeSafetensors({
      latent: { dtype: result.dtype as DType, shape: result.shape!, data: result.bytes },
    });
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${id}.safetensors"`,
      'cache-control': RESULT_CACHE_CONTROL,
      expires,
    });
    res.end(body);
    return;
  }
  const format = url.searchParams.get('format');
  if (format && format !== 'raw' && kind === 'latent')
    throw new GatewayError('BAD_REQUEST', `format "${format}" is not offered; use raw or safetensors`);
  const headers: Record<string, string> = {
    'content-type': result.contentType,
    'cache-control': RESULT_CACHE_CONTROL,
    expires,
  };
  if (result.shape) headers.shape = JSON.stringify(result.shape);
  if (result.dtype) headers.dtype = result.dtype;
  res.writeHead(200, headers);
  res.end(result.bytes);
}

/**
 * 200 "ok"; 503 "draining" during a graceful shutdown, or "degraded" while Redis does not answer, so
 * a load balancer sends the work elsewhere. The body says why (`redis`: ok and the reason).
 */
function sendHealth(services: RunningServices, res: ServerResponse): void {
  const redis = services.redisHealth?.snapshot();
  const status = services.lifecycle.draining ? 'draining' : redis && !redis.ok ? 'degraded' : 'ok';
  sendJson(res, status === 'ok' ? 200 : 503, {
    status,
    ...(redis && { redis: { ok: redis.ok, reason: redis.reason, checkedAt: redis.checkedAt } }),
    device: services.ledger.snapshot(),
    upstreams: services.upstreams?.snapshot() ?? [],
    peers: services.peers?.snapshot() ?? [],
  });
}

export function createHttpServer(services: RunningServices): Server {
  const yoga = createGraphQLHandler(services);
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs, maxConnections } = services.config.http;
  const options = {
    headersTimeout: headersTimeoutMs,
    // The whole request, body included; a client that sends slowly or less than it declared is cut off (408).
    requestTimeout: requestTimeoutMs,
    keepAliveTimeout: keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (30 s by default).
    connectionsCheckingInterval: Math.min(1000, headersTimeoutMs / 2),
  };
  const server = createServer(options, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = /^\/v1\/(latents|images)\/([0-9a-f-]{36})$/.exec(url.pathname);
    if (url.pathname !== '/healthz' && url.pathname !== '/metrics') services.lifecycle.track(req, res);
    const handle = async () => {
      if (url.pathname === '/graphql' || url.pathname.startsWith('/graphql/')) return yoga(req, res);
      if (url.pathname === '/healthz') return sendHealth(services, res);
      if (url.pathname === '/metrics' && req.method === 'GET') {
        const { contentType, body } = await services.metrics.exposition();
        res.writeHead(200, { 'content-type': contentType });
        return void res.end(body);
      }
      if (route && req.method === 'GET')
        return serveStoredResult(services, route[1] === 'latents' ? 'latent' : 'image', route[2], url, req, res);
      if (route && req.method === 'DELETE') {
        const auth = authenticate(services.keys, req);
        if (!auth.ok) throw auth.error;
        await deleteResult(services.store, route[2], auth.key?.name ?? ANONYMOUS);
        res.writeHead(204);
        return void res.end();
      }
      const hybrid = HYBRID_PATH.exec(url.pathname);
      if (hybrid && services.lifecycle.draining) throw services.lifecycle.refusal();
      if (hybrid) return handleHybrid(services, req, res, url, hybrid);
      if (await serveWeb(req, url, res)) return;
      throw new GatewayError('NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
    };
    // A request a peer forwarded is not forwarded again (src/peers/hop.ts).
    withHop(req, handle).catch((error) => {
      if (!res.headersSent) sendError(services, res, error);
      else res.destroy();
    });
  });
  server.maxConnections = maxConnections;
  attachGraphQLWebSocket(server, yoga, services, graphqlBodyLimits(services.config).maxBodyBytes);
  return server;
}

export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return typeof address === 'object' && address ? address.port : port;
}
