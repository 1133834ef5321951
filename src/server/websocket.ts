/**
 * GraphQL over WebSocket (the graphql-ws protocol, `graphql-transport-ws`) on the HTTP server's
 * /graphql path, executed through Yoga's envelop so masking, context and plugins are the same as
 * over HTTP and SSE. An upgrade from a foreign page's `Origin` is refused with 403 (CORS does not
 * cover WebSockets).
 */
import { type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type DocumentNode, type ExecutionArgs, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { authenticate, type KeyLookup } from '../auth/authenticate.js';
import type { Config } from '../config/config.js';
import { GatewayError } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import { originAllowed } from './browser-safety.js';
import { httpErrorAnswer } from './error-edges.js';

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

/** Answers an upgrade that is not taken with a plain HTTP error, as the HTTP edge would. */
function refuseUpgrade(socket: Duplex, observability: Observability, error: GatewayError): void {
  const { status, body } = httpErrorAnswer(observability, error);
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

export function attachGraphQLWebSocket(
  server: Server,
  // biome-ignore lint/suspicious/noExplicitAny: Yoga's server and user context types do not matter here
  yoga: YogaServerInstance<any, any>,
  services: Observability & { config: Pick<Config, 'browser'>; keys: KeyLookup },
  maxPayload: number,
): WebSocketServer {
  // Upgrades are routed by hand (noServer) so the HTTP server's own errors, such as a port in use,
  // stay with its owner instead of being re-emitted as WebSocket server errors. A message is at most
  // what an HTTP body may be (src/server/graphql-limits.ts).
  const wss = new WebSocketServer({ noServer: true, maxPayload });
  server.on('upgrade', (request, socket, head) => {
    if (new URL(request.url ?? '/', 'http://localhost').pathname !== yoga.graphqlEndpoint) {
      socket.destroy();
      return;
    }
    if (!originAllowed(request, services.config.browser.corsOrigins)) {
      const origin = request.headers.origin;
      const message =
        `a WebSocket from a page at ${origin} is refused: only the gateway's own pages ` +
        'and those of the origins in CORS_ORIGINS may open one';
      refuseUpgrade(socket, services, new GatewayError('FORBIDDEN', message, { origin }));
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  useServer(
    {
      // The key travels in connectionParams ({Authorization} or {headers: {Authorization}}): browsers
      // cannot set headers on an upgrade. A refusal closes with 4000 + its HTTP status (4401, 4403, 4503) and the reason.
      onConnect: (ctx) => {
        const result = authenticate(services.keys, ctx.connectionParams ?? {});
        if (result.ok) return true;
        reportAnswer(services, 'graphql', result.error);
        // A close reason is at most 123 bytes.
        const reason = Buffer.from(result.error.message)
          .subarray(0, 123)
          .toString()
          .replace(/\uFFFD$/, '');
        ctx.extra.socket.close(4000 + result.status, reason);
        return false;
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        let document: DocumentNode;
        try {
          document = parse(params.query);
        } catch (error) {
          // A syntax error or a limit's refusal goes to the client as the subscription's error.
          if (error instanceof GraphQLError) return [error];
          throw error;
        }
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe } satisfies EnvelopedRoot,
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );
  // Upgraded sockets are not the HTTP server's connections: end them when it closes.
  server.once('close', () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
  });
  return wss;
}
