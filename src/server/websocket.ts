/**
 * GraphQL over WebSocket (the graphql-ws protocol, `graphql-transport-ws`) on the HTTP server's
 * /graphql path, executed through Yoga's envelop so masking, context and plugins are the same as
 * over HTTP and SSE.
 */
import type { Server } from 'node:http';
import type { ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: Yoga's server and user context types do not matter here
export function attachGraphQLWebSocket(server: Server, yoga: YogaServerInstance<any, any>): WebSocketServer {
  // Upgrades are routed by hand (noServer) so the HTTP server's own errors, such as a port in use,
  // stay with its owner instead of being re-emitted as WebSocket server errors.
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request, socket, head) => {
    if (new URL(request.url ?? '/', 'http://localhost').pathname !== yoga.graphqlEndpoint) {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  });
  useServer(
    {
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args: ExecutionArgs = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
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
