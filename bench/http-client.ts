/**
 * A lean GraphQL multipart client on node:http with a kept-alive connection, for timing the gateway
 * rather than the client: undici's fetch with FormData spends ~3 ms building the body and reading the
 * answer of a 512² encode, and leaves garbage that the next timed run pays for. This one writes the
 * body from the bytes as they are (the multipart layout graphql-yoga implements) and reads one buffer.
 */
import { Agent, request } from 'node:http';
import type { GraphQLResponse } from '../test/support/server.ts';

const BOUNDARY = '----latentgate-bench-boundary';

function part(name: string, value: string): string {
  return `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
}

function multipartBytes(
  query: string,
  variables: Record<string, unknown>,
  path: string,
  file: Uint8Array,
  filename: string,
): Buffer {
  const head =
    part('operations', JSON.stringify({ query, variables })) +
    part('map', JSON.stringify({ 0: [path] })) +
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="${filename}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n';
  return Buffer.concat([Buffer.from(head), file, Buffer.from(`\r\n--${BOUNDARY}--\r\n`)]);
}

export function leanClient(url: string) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const upload = (
    query: string,
    variables: Record<string, unknown>,
    path: string,
    file: Uint8Array,
    filename: string,
  ): Promise<GraphQLResponse<any>> =>
    new Promise((resolve, reject) => {
      const body = multipartBytes(query, variables, path, file, filename);
      const sent = request(
        `${url}/graphql`,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': `multipart/form-data; boundary=${BOUNDARY}`,
            'content-length': body.length,
            // The CSRF header every non-JSON GraphQL request to the gateway carries.
            'x-graphql-yoga-csrf': '1',
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () => {
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
            } catch (error) {
              reject(error);
            }
          });
        },
      );
      sent.on('error', reject);
      sent.end(body);
    });
  return { upload, close: () => agent.destroy() };
}
