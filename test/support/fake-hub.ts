/**
 * A loopback fake of the Hugging Face Hub's HTTP API, as @huggingface/hub (and huggingface_hub) call it:
 *
 *   GET /api/models/ORG/NAME/revision/REV        model info with `sha` (the commit) and `siblings`
 *   GET /api/models/ORG/NAME/tree/REV[/PATH]     the file list: git `oid`, `size`, and `lfs.oid` (sha256)
 *   GET /ORG/NAME/resolve/REV/PATH               LFS files: 302 to a CDN path with X-Repo-Commit,
 *                                                X-Linked-Etag (the sha256) and X-Linked-Size; small files: 200
 *   GET /cdn/SHA256                              the bytes, ETag "SHA256", Range requests answered with 206
 *
 * A gated repository answers resolve with 401 without a token and 403 with a token other than its own.
 * Behaviours for tests: `cutAfter` ends a path's first download mid-file; `corrupt` serves other bytes
 * than the sha256 listed. Every request is recorded.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRepo {
  commit: string;
  files: Record<string, Uint8Array>;
  /** Files stored in LFS (the rest are kept in git); default: names ending in .safetensors or .onnx. */
  lfs?: (path: string) => boolean;
  /** Gated: resolve requires `Authorization: Bearer <token>`. */
  token?: string;
}

export interface FakeHubRequest {
  method: string;
  url: string;
  range: string | null;
  authorization: string | null;
}

export interface FakeHub {
  url: string;
  requests: FakeHubRequest[];
  repos: Map<string, FakeRepo>;
  /** The next download of `path` (a full GET of its bytes) is cut after `bytes` bytes. */
  cutAfter: Map<string, number>;
  /** Paths whose bytes are served altered (the listing keeps the true sha256). */
  corrupt: Set<string>;
  close(): Promise<void>;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const gitOid = (bytes: Uint8Array) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const defaultLfs = (path: string) => /\.(safetensors|onnx|onnx_data)$/.test(path);

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Writes `bytes` honouring a `Range: bytes=A-B` header (206), cut short after `cut` bytes when given. */
function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: Uint8Array,
  headers: Record<string, string>,
  cut?: number,
) {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = bytes.length - 1;
  if (range) {
    start = Number(range[1]);
    end = range[2] ? Math.min(Number(range[2]), end) : end;
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${bytes.length}` });
      return res.end();
    }
  }
  const body = bytes.subarray(start, end + 1);
  res.writeHead(range ? 206 : 200, {
    'accept-ranges': 'bytes',
    'content-length': String(body.length),
    ...(range ? { 'content-range': `bytes ${start}-${end}/${bytes.length}` } : {}),
    ...headers,
  });
  if (cut === undefined) return res.end(body);
  // The connection drops mid-file, as a network failure would.
  res.write(body.subarray(0, cut), () => res.destroy());
}

export async function startFakeHub(repos: Record<string, FakeRepo>): Promise<FakeHub> {
  const hub: Omit<FakeHub, 'url' | 'close'> = {
    requests: [],
    repos: new Map(Object.entries(repos)),
    cutAfter: new Map(),
    corrupt: new Set(),
  };
  const blobs = new Map<string, { bytes: Uint8Array; path: string }>();
  const bytesOf = (path: string, bytes: Uint8Array) => {
    if (!hub.corrupt.has(path)) return bytes;
    const altered = Uint8Array.from(bytes);
    altered[altered.length >> 1] ^= 0xff;
    return altered;
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://hub');
    hub.requests.push({
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      range: req.headers.range ?? null,
      authorization: req.headers.authorization ?? null,
    });
    const info = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.+))?$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const repoOf = (name: string, revision: string) => {
      const repo = hub.repos.get(name);
      if (!repo) {
        json(res, 404, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
        return null;
      }
      if (revision !== 'main' && revision !== 'HEAD' && revision !== repo.commit) {
        json(res, 404, { error: `Invalid rev id: ${revision}` }, { 'x-error-code': 'RevisionNotFound' });
        return null;
      }
      return repo;
    };

    if (info) {
      const repo = repoOf(info[1], decodeURIComponent(info[2]));
      if (!repo) return;
      return json(res, 200, {
        _id: `id-${info[1]}`,
        id: info[1],
        modelId: info[1],
        sha: repo.commit,
        private: false,
        gated: repo.token ? 'manual' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00.000Z',
        tags: [],
        siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
      });
    }
    if (tree) {
      const repo = repoOf(tree[1], decodeURIComponent(tree[2]));
      if (!repo) return;
      const prefix = tree[3] ? `${tree[3]}/` : '';
      const isLfs = repo.lfs ?? defaultLfs;
      const entries = Object.entries(repo.files)
        .filter(([path]) => path.startsWith(prefix))
        .map(([path, bytes]) => ({
          type: 'file',
          oid: gitOid(bytes),
          size: bytes.length,
          path,
          ...(isLfs(path) ? { lfs: { oid: sha256(bytes), size: bytes.length, pointerSize: 134 } } : {}),
        }));
      return json(res, 200, entries);
    }
    if (resolve) {
      const repo = repoOf(resolve[1], decodeURIComponent(resolve[2]));
      if (!repo) return;
      if (repo.token) {
        const given = req.headers.authorization;
        if (!given)
          return json(res, 401, {
            error: `Access to model ${resolve[1]} is restricted. You must have access to it and be authenticated to access it.`,
          });
        if (given !== `Bearer ${repo.token}`)
          return json(res, 403, {
            error: `Access to model ${resolve[1]} is restricted and you are not in the authorized list.`,
          });
      }
      const path = decodeURIComponent(resolve[3]);
      const bytes = repo.files[path];
      if (!bytes) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
      const common = { 'x-repo-commit': repo.commit };
      if (!(repo.lfs ?? defaultLfs)(path))
        return sendBytes(req, res, bytesOf(path, bytes), { ...common, etag: `"${gitOid(bytes)}"` });
      const hash = sha256(bytes);
      blobs.set(hash, { bytes, path });
      res.writeHead(302, {
        ...common,
        location: `/cdn/${hash}?path=${encodeURIComponent(path)}`,
        'x-linked-etag': `"${hash}"`,
        'x-linked-size': String(bytes.length),
        etag: `"${gitOid(bytes)}"`,
      });
      return res.end();
    }
    if (cdn) {
      const blob = blobs.get(cdn[1]);
      if (!blob) return json(res, 404, { error: 'no such object' });
      const full =
        !req.headers.range ||
        /^bytes=0-$/.test(req.headers.range) ||
        req.headers.range === `bytes=0-${blob.bytes.length - 1}`;
      const cut = full ? hub.cutAfter.get(blob.path) : undefined;
      if (cut !== undefined) hub.cutAfter.delete(blob.path);
      return sendBytes(req, res, bytesOf(blob.path, blob.bytes), { etag: `"${cdn[1]}"` }, cut);
    }
    json(res, 404, { error: `not a Hub route: ${url.pathname}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    ...hub,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
