/**
 * The web playground at `/`: one static page and its script and style sheet (plain ES modules,
 * no build step), plus `/web/operations.js`, the GraphQL documents of src/client/operations.ts as
 * graphql-codegen generated them, so the page sends exactly the operations the typed client does.
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import * as generated from '../client/generated/graphql.js';

const WEB_DIR = import.meta.dirname;

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/web/playground.js': { file: 'playground.js', type: 'text/javascript; charset=utf-8' },
  '/web/latent-preview.js': { file: 'latent-preview.js', type: 'text/javascript; charset=utf-8' },
  '/web/playground.css': { file: 'playground.css', type: 'text/css; charset=utf-8' },
};

let operationsModule: string | undefined;

/** `export const XDocument = "query ...";` for every generated document. */
export function operationsSource(): string {
  operationsModule ??= Object.entries(generated)
    .filter(([name, value]) => name.endsWith('Document') && value instanceof String)
    .map(([name, value]) => `export const ${name} = ${JSON.stringify(String(value))};`)
    .join('\n')
    .concat('\n');
  return operationsModule;
}

/** Serves a playground file; false when the path is not one. */
export async function serveWeb(req: IncomingMessage, url: URL, res: ServerResponse): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const headers = { 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
  if (url.pathname === '/web/operations.js') {
    res.writeHead(200, { ...headers, 'content-type': 'text/javascript; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : operationsSource());
    return true;
  }
  const entry = STATIC[url.pathname];
  if (!entry) return false;
  const body = await readFile(join(WEB_DIR, entry.file));
  res.writeHead(200, { ...headers, 'content-type': entry.type });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
