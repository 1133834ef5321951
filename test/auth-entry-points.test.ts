/**
 * API keys at every entry point of real gateways on loopback: GraphQL over HTTP, SSE and WebSocket,
 * Hybrid Inference (with diffusers' own client library, `requests`, reading a .netrc), result URLs
 * (signed, keyed, deleted by their owner); and a rate limit and a daily quota that two instances share
 * through Redis.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import WebSocket from 'ws';
import { KeyStore } from '../src/auth/key-store.ts';
import { Secret } from '../src/config/secret.ts';
import { signResultUrl } from '../src/storage/signed-urls.ts';
import { runCli } from './support/cli.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const SIGNING_KEY = 'a-url-signing-key-of-at-least-32-characters';
const MODELS = '{ models { id } }';
const ENCODE_URL = 'mutation($i: EncodeInput!) { encode(input: $i) { latent { url } } }';

const dir = mkdtempSync(join(tmpdir(), 'latentgate-auth-edges-'));
const prefix = `test:auth-edges:${randomUUID()}:`;
let gateway: InProcessGateway;
let shared: InProcessGateway[] = [];
let fileStore: KeyStore;
let redisStore: KeyStore;
let png: Buffer;
/** Keys by name: all scopes, encode only, decode only, one to revoke, another owner, the rate-limited one. */
const keys: Record<string, string> = {};

before(async () => {
  const keysFile = join(dir, 'keys.json');
  fileStore = await KeyStore.open({ keysFile, redisUrl: null, redisPrefix: 'unused:', refreshMs: 0 });
  const all = ['encode', 'decode', 'img2img', 'jobs', 'admin'] as const;
  for (const [name, scopes] of [
    ['full', all],
    ['encoder', ['encode']],
    ['decoder', ['decode']],
    ['revoked', all],
    ['other', all],
  ] as const)
    keys[name] = (await fileStore.create({ name, scopes: [...scopes] })).key;
  redisStore = await KeyStore.open({ keysFile: null, redisUrl: REDIS_URL, redisPrefix: prefix, refreshMs: 0 });
  keys.limited = (
    await redisStore.create({ name: 'limited', scopes: ['encode'], rate: { requests: 2, windowSeconds: 86400 } })
  ).key;
  // Any run costs more than 1 pixel-second: after one, the quota is spent.
  keys.metered = (await redisStore.create({ name: 'metered', scopes: ['encode'], quotaPixelSecondsPerDay: 1 })).key;
  keys.jobbed = (
    await redisStore.create({ name: 'jobbed', scopes: ['encode', 'jobs'], quotaPixelSecondsPerDay: 1e9 })
  ).key;
  const env = {
    MODELS_DIR,
    DATA_DIR: join(dir, 'data'),
    DEVICE_MEMORY: '1GiB',
    LOG_LEVEL: 'fatal',
    REDIS_URL: '',
  };
  // The job queue under this run's prefix too, so its keys are removed with the rest.
  const redisEnv = { ...env, REDIS_URL, API_KEYS_REDIS_PREFIX: prefix, REDIS_PREFIX: `${prefix}jobs:` };
  [gateway, png, ...shared] = await Promise.all([
    startInProcessGateway({
      ...env,
      API_KEYS_FILE: keysFile,
      API_KEYS_REFRESH_MS: '100',
      URL_SIGNING_KEY: SIGNING_KEY,
    }),
    sharp({ create: { width: 64, height: 64, channels: 3, background: '#3080c0' } })
      .png()
      .toBuffer(),
    startInProcessGateway(redisEnv),
    startInProcessGateway(redisEnv),
  ]);
  await fileStore.revoke('revoked');
  // The gateway rereads its keys every 100 ms.
  await new Promise((resolve) => setTimeout(resolve, 400));
});

after(async () => {
  await Promise.all([gateway?.stop(), ...shared.map((g) => g.stop())]);
  await Promise.all([fileStore?.close(), redisStore?.close()]);
  const redis = new Redis(REDIS_URL);
  const names = await redis.keys(`${prefix}*`);
  if (names.length) await redis.del(...names);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** The credentials each failing case sends, and the status it must get. */
const FAILURES: [string, Record<string, string>, number][] = [
  ['no key', {}, 401],
  ['a wrong key', bearer(`lg_${'x'.repeat(43)}`), 401],
  ['a revoked key', bearer('revoked'), 401],
];

function headersFor(credentials: Record<string, string>): Record<string, string> {
  // 'revoked' stands for the revoked key itself, known only after start.
  const value = credentials.authorization;
  return value === 'Bearer revoked' ? bearer(keys.revoked) : credentials;
}

function graphql(body: unknown, headers: Record<string, string> = {}, url = gateway.url): Promise<Response> {
  return fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

describe('GraphQL over HTTP and SSE', () => {
  test('no, wrong or revoked key: 401 with WWW-Authenticate and code UNAUTHENTICATED', async () => {
    for (const [label, credentials, status] of FAILURES)
      for (const accept of ['application/json', 'text/event-stream']) {
        const answer = await graphql({ query: MODELS }, { ...headersFor(credentials), accept });
        assert.equal(answer.status, status, `${label} (${accept})`);
        assert.match(answer.headers.get('www-authenticate') ?? '', /Bearer .*Basic/, label);
        const body = await answer.json();
        assert.equal(body.errors[0].extensions.code, 'UNAUTHENTICATED', label);
      }
  });

  test('a valid key runs models; a key without the scope gets FORBIDDEN naming it', async () => {
    const ok = await graphql({ query: MODELS }, bearer(keys.encoder));
    assert.equal(ok.status, 200);
    assert.ok((await ok.json()).data.models.length > 0);
    const forbidden = await graphql({ query: 'query { job(id: "x") { id } }' }, bearer(keys.encoder));
    assert.equal(forbidden.status, 403);
    const body = await forbidden.json();
    assert.equal(body.errors[0].extensions.code, 'FORBIDDEN');
    assert.match(body.errors[0].message, /"encoder" may not jobs/);
    assert.equal(body.errors[0].extensions.http, undefined, 'the status travels as the status only');
    assert.equal(body.data, undefined);
  });

  test('SSE: a subscription without the jobs scope is refused in the stream', async () => {
    const answer = await graphql(
      { query: 'subscription { jobProgress(id: "x") { __typename } }' },
      { ...bearer(keys.decoder), accept: 'text/event-stream' },
    );
    const text = await answer.text();
    assert.match(text, /FORBIDDEN/);
    assert.match(text, /may not jobs/);
  });

  test("usage is the calling key's own", async () => {
    const answer = await graphql({ query: '{ usage { key } }' }, bearer(keys.full));
    assert.equal((await answer.json()).data.usage.key, 'full');
  });
});

/** Opens a graphql-ws connection with `payload` and says how it ended: ack, or the close code and reason. */
function connect(payload?: unknown): Promise<{ socket: WebSocket; ack: boolean; code?: number; reason?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload })));
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') resolve({ socket, ack: true });
    });
    socket.once('close', (code, reason) => resolve({ socket, ack: false, code, reason: String(reason) }));
    socket.once('error', reject);
  });
}

describe('GraphQL over WebSocket', () => {
  test('no, wrong or revoked key in connectionParams: closed with 4401 and the reason', async () => {
    for (const [label, credentials] of FAILURES) {
      const header = headersFor(credentials).authorization;
      const result = await connect(header ? { Authorization: header } : undefined);
      assert.equal(result.ack, false, label);
      assert.equal(result.code, 4401, label);
      assert.match(result.reason!, /API key/, label);
    }
  });

  test('a key in connectionParams.headers is accepted; a subscription without the scope gets FORBIDDEN', async () => {
    const { socket, ack } = await connect({ headers: { authorization: `Bearer ${keys.encoder}` } });
    assert.equal(ack, true);
    const answer = new Promise<any>((resolve) =>
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        if (message.type === 'next' || message.type === 'error') resolve(message);
      }),
    );
    socket.send(
      JSON.stringify({
        id: '1',
        type: 'subscribe',
        payload: { query: 'subscription { jobProgress(id: "x") { __typename } }' },
      }),
    );
    const message = await answer;
    socket.close();
    const errors = message.payload.errors ?? message.payload;
    assert.equal(errors[0].extensions.code, 'FORBIDDEN');
  });
});

/** POSTs with python-requests, as diffusers' remote_encode does, its ~/.netrc being the file NETRC names. */
async function requestsPost(url: string, netrc: string | null): Promise<{ status: number; auth: string }> {
  const script = [
    'import sys, requests',
    'r = requests.post(sys.argv[1], data=open(sys.argv[2], "rb").read(), headers={"Content-Type": "image/png"})',
    'print(r.status_code); print(r.headers.get("WWW-Authenticate", ""))',
  ].join('\n');
  const image = join(dir, 'in.png');
  writeFileSync(image, png);
  const env = { ...process.env, NETRC: netrc ?? join(dir, 'no-netrc') };
  const { stdout } = await promisify(execFile)('python3', ['-c', script, url, image], { env });
  const [status, auth] = stdout.split('\n');
  return { status: Number(status), auth };
}

describe('Hybrid Inference', () => {
  test('without credentials: 401 with WWW-Authenticate; with ~/.netrc, requests authenticates by itself', async () => {
    const url = `${gateway.url}/v1/vae/taef2/encode`;
    const refused = await requestsPost(url, null);
    assert.equal(refused.status, 401);
    assert.match(refused.auth, /Basic realm="latentgate"/);
    const netrc = join(dir, 'netrc');
    writeFileSync(netrc, `machine 127.0.0.1\n  login anyone\n  password ${keys.full}\n`, { mode: 0o600 });
    assert.equal((await requestsPost(url, netrc)).status, 200);
    writeFileSync(netrc, `machine 127.0.0.1\n  login anyone\n  password ${keys.revoked}\n`, { mode: 0o600 });
    assert.equal((await requestsPost(url, netrc)).status, 401);
  });

  test('wrong key 401, key without the scope 403 (encode with a decode key, decode with an encode key)', async () => {
    for (const [label, credentials, status] of FAILURES) {
      const answer = await fetch(`${gateway.url}/v1/vae/taef2/encode`, {
        method: 'POST',
        headers: headersFor(credentials),
        body: new Uint8Array(png),
      });
      assert.equal(answer.status, status, label);
      assert.ok(answer.headers.get('www-authenticate'), label);
    }
    const encode = await fetch(`${gateway.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      headers: bearer(keys.decoder),
      body: new Uint8Array(png),
    });
    assert.equal(encode.status, 403);
    assert.equal((await encode.json()).code, 'FORBIDDEN');
    const decode = await fetch(`${gateway.url}/v1/vae/taef2/decode?shape=1&shape=32&shape=8&shape=8`, {
      method: 'POST',
      headers: bearer(keys.encoder),
      body: new Uint8Array(4 * 32 * 8 * 8),
    });
    assert.equal(decode.status, 403);
  });
});

describe('the command-line client', () => {
  test("sends LATENTGATE_API_KEY (SSE and WebSocket); without it the gateway's 401 is what it reports", async () => {
    const image = join(dir, 'cli.png');
    writeFileSync(image, png);
    const args = (transport: string) => [
      'encode',
      image,
      '--model',
      'taef2',
      '--out',
      join(dir, `cli-${transport}.safetensors`),
      '--url',
      gateway.url,
      '--transport',
      transport,
    ];
    const [sse, ws, refused] = await Promise.all([
      runCli(args('sse'), dir, { LATENTGATE_API_KEY: keys.full }),
      runCli(args('ws'), dir, { LATENTGATE_API_KEY: keys.full }),
      runCli(args('sse'), dir, { LATENTGATE_API_KEY: '' }),
    ]);
    assert.equal(sse.code, 0, sse.stderr);
    assert.equal(ws.code, 0, ws.stderr);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /UNAUTHENTICATED|API key/);
  });
});

describe('result URLs', () => {
  let signed: URL;
  let plain: string;
  let id: string;

  before(async () => {
    const answer = await graphql(
      {
        query: ENCODE_URL,
        variables: { i: { model: 'taef2', image: { base64: png.toString('base64') }, delivery: 'URL' } },
      },
      bearer(keys.full),
    );
    const body = await answer.json();
    signed = new URL(body.data.encode.latent.url);
    plain = `${signed.origin}${signed.pathname}`;
    id = signed.pathname.split('/').at(-1)!;
  });

  test('signed URL: valid without a key, private; tampered or expired 403', async () => {
    const valid = await fetch(signed);
    assert.equal(valid.status, 200);
    assert.equal(valid.headers.get('cache-control'), 'private');
    const tampered = new URL(signed);
    tampered.searchParams.set('expires', String(Number(signed.searchParams.get('expires')) + 1));
    assert.equal((await fetch(tampered)).status, 403);
    const expired = signResultUrl(plain, id, Date.now() - 1000, new Secret(SIGNING_KEY));
    const answer = await fetch(expired);
    assert.equal(answer.status, 403);
    assert.match((await answer.json()).error, /expired/);
  });

  test('unsigned: no, wrong or revoked key 401; any valid key 200', async () => {
    for (const [label, credentials, status] of FAILURES) {
      const answer = await fetch(plain, { headers: headersFor(credentials) });
      assert.equal(answer.status, status, label);
      assert.ok(answer.headers.get('www-authenticate'), label);
    }
    assert.equal((await fetch(plain, { headers: bearer(keys.decoder) })).status, 200);
  });

  test('DELETE: refused without a key and for another key; the owner deletes it', async () => {
    assert.equal((await fetch(plain, { method: 'DELETE' })).status, 401);
    const other = await fetch(plain, { method: 'DELETE', headers: bearer(keys.other) });
    assert.equal(other.status, 403);
    assert.equal((await fetch(plain, { method: 'DELETE', headers: bearer(keys.full) })).status, 204);
    assert.equal((await fetch(plain, { headers: bearer(keys.full) })).status, 404);
  });
});

describe('rate limit shared by two instances on one Redis', () => {
  test('the third request on either instance gets 429 with Retry-After, RATE_LIMITED the same figure', async () => {
    const [a, b] = shared;
    const encode = (g: InProcessGateway) =>
      fetch(`${g.url}/v1/vae/taef2/encode`, {
        method: 'POST',
        headers: bearer(keys.limited),
        body: new Uint8Array(png),
      });
    assert.equal((await encode(a)).status, 200);
    const models = await graphql({ query: MODELS }, bearer(keys.limited), b.url);
    assert.equal(models.status, 200, 'a request that runs nothing is not counted');
    const variables = { i: { model: 'taef2', image: { base64: png.toString('base64') } } };
    const second = await graphql({ query: ENCODE_URL, variables }, bearer(keys.limited), b.url);
    assert.equal(second.status, 200);
    const refused = await encode(b);
    assert.equal(refused.status, 429);
    const retry = Number(refused.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 86400, `Retry-After ${retry}`);
    const graphqlRefused = await graphql({ query: ENCODE_URL, variables }, bearer(keys.limited), a.url);
    assert.equal(graphqlRefused.status, 429);
    const body = await graphqlRefused.json();
    assert.equal(body.errors[0].extensions.code, 'RATE_LIMITED');
    assert.ok(Math.abs(body.errors[0].extensions.retryAfterSeconds - retry) <= 1);
    assert.equal(graphqlRefused.headers.get('retry-after'), String(body.errors[0].extensions.retryAfterSeconds));
  });
});

describe('daily quota shared by two instances on one Redis', () => {
  const USAGE = '{ usage { pixelSeconds { used limit resetsAt } requests { used } } }';
  const ENCODE_COST = 'mutation($i: EncodeInput!) { encode(input: $i) { width height seconds } }';
  const usage = async (key: string, url: string) => await (await graphql({ query: USAGE }, bearer(key), url)).json();

  test('a run is counted as its pixels x seconds; a failed one gives its reservation back; then 429 until midnight UTC', async () => {
    const [a, b] = shared;
    const bad = await graphql(
      { query: ENCODE_COST, variables: { i: { model: 'taef2', image: { base64: 'not base64!' } } } },
      bearer(keys.metered),
      a.url,
    );
    assert.equal((await bad.json()).errors[0].extensions.code, 'BAD_REQUEST');
    assert.equal((await usage(keys.metered, b.url)).data.usage.pixelSeconds.used, 0, 'nothing ran, nothing counted');

    const variables = { i: { model: 'taef2', image: { base64: png.toString('base64') } } };
    const ran = (await (await graphql({ query: ENCODE_COST, variables }, bearer(keys.metered), a.url)).json()).data
      .encode;
    const counted = (await usage(keys.metered, b.url)).data.usage.pixelSeconds;
    assert.equal(counted.used, Math.ceil(ran.width * ran.height * ran.seconds), 'the other instance sees the run');
    assert.equal(counted.limit, 1);

    const refused = await graphql({ query: ENCODE_COST, variables }, bearer(keys.metered), b.url);
    assert.equal(refused.status, 429);
    const error = (await refused.json()).errors[0];
    assert.equal(error.extensions.code, 'RATE_LIMITED');
    assert.equal(error.extensions.reason, 'quota');
    const untilMidnight = (Date.parse(counted.resetsAt) - Date.now()) / 1000;
    assert.ok(
      Math.abs(error.extensions.retryAfterSeconds - untilMidnight) <= 5,
      `${error.extensions.retryAfterSeconds}`,
    );
    assert.equal(refused.headers.get('retry-after'), String(error.extensions.retryAfterSeconds));

    const hybrid = await fetch(`${a.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      headers: bearer(keys.metered),
      body: new Uint8Array(png),
    });
    assert.equal(hybrid.status, 429);
    assert.ok(Math.abs(Number(hybrid.headers.get('retry-after')) - untilMidnight) <= 5);
    assert.equal(
      (await usage(keys.metered, a.url)).data.usage.pixelSeconds.used,
      counted.used,
      'refusals cost nothing',
    );
  });

  test('Hybrid Inference runs and jobs are counted when they finish, on whichever instance asks', async () => {
    const [a, b] = shared;
    const hybrid = await fetch(`${a.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      headers: bearer(keys.jobbed),
      body: new Uint8Array(png),
    });
    assert.equal(hybrid.status, 200);
    await hybrid.arrayBuffer();
    const afterHybrid = (await usage(keys.jobbed, b.url)).data.usage.pixelSeconds.used;
    assert.ok(afterHybrid >= 1, `hybrid run counted: ${afterHybrid}`);

    const submit = 'mutation($i: EncodeInput!) { submitEncode(input: $i) { id } }';
    const variables = { i: { model: 'taef2', image: { base64: png.toString('base64') } } };
    const id = (await (await graphql({ query: submit, variables }, bearer(keys.jobbed), b.url)).json()).data
      .submitEncode.id;
    const JOB = `{ job(id: "${id}") { status result { ... on EncodeResult { width height seconds } } } }`;
    let job: { status: string; result: { width: number; height: number; seconds: number } | null };
    for (;;) {
      job = (await (await graphql({ query: JOB }, bearer(keys.jobbed), b.url)).json()).data.job;
      if (job.status !== 'QUEUED' && job.status !== 'RUNNING') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(job.status, 'DONE');
    const { width, height, seconds } = job.result!;
    // The settlement follows the DONE event by a moment.
    let used = 0;
    for (let i = 0; i < 50; i++) {
      used = (await usage(keys.jobbed, a.url)).data.usage.pixelSeconds.used;
      if (used > afterHybrid) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(used, afterHybrid + Math.ceil(width * height * seconds));
  });
});
