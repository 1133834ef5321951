/**
 * Peers on one real Redis (a key prefix of this test's own): ant (1 MiB of device memory: nothing
 * fits), cat (its whole budget held and no queue: busy) and bee with room (a child process). A
 * synchronous encode on ant or cat goes to bee as an UPSTREAM route named after it, with the API key
 * every instance requires, and so does an img2img (whole, over GraphQL); `plan` and /healthz list
 * the peers; a request a peer forwarded is never forwarded again; bee killed with SIGKILL drops out
 * after its TTL, and then ant and cat, both full, answer at once with DOES_NOT_FIT and BUSY rather
 * than passing the request between them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { KeyStore } from '../src/auth/key-store.ts';
import { FORWARDED_HEADER } from '../src/peers/hop.ts';
import type { Reservation } from '../src/routing/ledger.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const PREFIX = `latentgate:test:peers:${randomUUID()}:`;
const TTL_MS = 2000;
const HEARTBEAT_MS = 250;

const dir = mkdtempSync(join(tmpdir(), 'latentgate-peers-'));
let ant: InProcessGateway;
let cat: InProcessGateway;
let bee: RunningGateway;
let key: string;
let png: Buffer;
/** All of cat's device budget, held for the whole file. */
let held: Reservation | null = null;

const ENCODE =
  'mutation($input: EncodeInput!) { encode(input: $input) { latent { sha256 } route { route target reason } } }';
const IMG2IMG =
  'mutation($input: Img2ImgInput!) { img2img(input: $input) { seed images { sha256 } ' +
  'stages { stage route { route target } } } }';
const PLAN =
  '{ plan(model: "taef2", operation: ENCODE, width: 128, height: 128) { route target reason ' +
  'peers { name target url device budgetBytes freeBytes queued running maxQueueLength drainSeconds lastSeen ' +
  'models { id operations } speed { model operation secondsPerMegapixel } } } }';

async function graphql(url: string, query: string, variables: object = {}, headers: Record<string, string> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return (await response.json()) as { data?: any; errors?: { message: string; extensions?: any }[] };
}

const encode = (url: string, headers: Record<string, string> = {}) =>
  graphql(url, ENCODE, { input: { model: 'taef2', image: { base64: png.toString('base64') } } }, headers);

async function peersOf(url: string): Promise<{ name: string; [field: string]: any }[]> {
  const response = await fetch(`${url}/healthz`);
  return ((await response.json()) as { peers: { name: string }[] }).peers;
}

/** Polls `check` until it holds (or fails after `ms`); returns the milliseconds it took. */
async function until(what: string, check: () => Promise<boolean>, ms = 8000): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - started;
}

before(async () => {
  // Every instance requires a key; the peers send theirs (PEER_TOKEN).
  const keysPrefix = `${PREFIX}keys:`;
  const store = await KeyStore.open({ keysFile: null, redisUrl: REDIS_URL, redisPrefix: keysPrefix, refreshMs: 0 });
  key = (await store.create({ name: 'peers', scopes: ['encode', 'decode', 'img2img'] })).key;
  await store.close();
  // The shared VAE and a tiny SD pipeline (img2img).
  const models = join(dir, 'models');
  mkdirSync(models);
  symlinkSync(join(MODELS_DIR, 'taef2'), join(models, 'taef2'));
  writeTinyPipeline(join(models, 'tiny-sd'));
  const common = {
    MODELS_DIR: models,
    DATA_DIR: join(dir, 'data'),
    REDIS_URL,
    PEERS: 'true',
    PEERS_REDIS_PREFIX: PREFIX,
    PEER_HEARTBEAT_MS: String(HEARTBEAT_MS),
    PEER_TTL_MS: String(TTL_MS),
    PEER_TOKEN: key,
    API_KEYS_REDIS_PREFIX: keysPrefix,
  };
  const quiet = { LOG_LEVEL: 'silent', DEVICE_HEADROOM: '0' };
  // Each assigned as it starts, so `after` stops whichever did when another failed.
  await Promise.all([
    startGateway({ ...common, DEVICE_MEMORY: '2GiB', PEER_NAME: 'bee', LOG_LEVEL: 'info' }).then((g) => (bee = g)),
    startInProcessGateway({ ...common, ...quiet, DEVICE_MEMORY: '1MiB', PEER_NAME: 'ant' }).then((g) => (ant = g)),
    startInProcessGateway({ ...common, ...quiet, DEVICE_MEMORY: '1GiB', MAX_QUEUE_LENGTH: '0', PEER_NAME: 'cat' }).then(
      (g) => (cat = g),
    ),
    sharp({ create: { width: 128, height: 128, channels: 3, background: '#3080c0' } })
      .png()
      .toBuffer()
      .then((b) => (png = b)),
  ]);
  const ledger = cat.services.ledger;
  held = ledger.tryReserve(ledger.snapshot().budgetBytes, { label: 'test: cat is busy', expectedSeconds: 600 });
  for (const gateway of [ant, cat])
    await until('the peers see bee', async () => (await peersOf(gateway.url)).some((p) => p.name === 'bee'));
});

after(async () => {
  held?.release();
  bee?.process.kill('SIGKILL');
  await Promise.all([ant?.stop(), cat?.stop()]);
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${PREFIX}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('peers on one Redis', () => {
  test('an encode that fits nothing here, or finds the device busy, runs on the peer with room', async () => {
    const direct = await encode(bee.url);
    assert.equal(direct.errors, undefined, JSON.stringify(direct.errors));
    assert.equal(direct.data.encode.route.route, 'LOCAL');

    const routed = await encode(ant.url);
    assert.equal(routed.errors, undefined, JSON.stringify(routed.errors));
    assert.equal(routed.data.encode.route.route, 'UPSTREAM');
    assert.equal(routed.data.encode.route.target, 'peer:bee');
    assert.match(routed.data.encode.route.reason, /nothing fits local:cpu/);
    assert.equal(routed.data.encode.latent.sha256, direct.data.encode.latent.sha256);

    const busy = await encode(cat.url);
    assert.equal(busy.errors, undefined, JSON.stringify(busy.errors));
    assert.equal(busy.data.encode.route.target, 'peer:bee');
    assert.match(busy.data.encode.route.reason, /local:cpu is saturated/);

    // The Hybrid Inference route takes the same way.
    const answer = await fetch(`${cat.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      body: new Uint8Array(png),
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    assert.equal(answer.headers.get('x-latentgate-target'), 'peer:bee');
  });

  test('an img2img whose UNet fits nothing here runs whole on the peer', async () => {
    const input = { model: 'tiny-sd', image: { base64: png.toString('base64') }, prompt: 'a cat', steps: 4, seed: '7' };
    const direct = await graphql(bee.url, IMG2IMG, { input });
    assert.equal(direct.errors, undefined, JSON.stringify(direct.errors));
    const routed = await graphql(ant.url, IMG2IMG, { input });
    assert.equal(routed.errors, undefined, JSON.stringify(routed.errors));
    assert.deepEqual(routed.data.img2img.stages, [
      { stage: 'DENOISE', route: { route: 'UPSTREAM', target: 'peer:bee' } },
    ]);
    assert.equal(routed.data.img2img.seed, direct.data.img2img.seed);
    assert.equal(routed.data.img2img.images[0].sha256, direct.data.img2img.images[0].sha256);
  });

  test('plan and /healthz show the peers: models, free memory, queue, measured speed, last seen', async () => {
    // bee has measured its encodes and is idle again; its next heartbeat says so.
    const idle = (p: { [field: string]: any }) =>
      p.speed.length > 0 && p.running === 0 && p.freeBytes === p.budgetBytes;
    await until('bee advertises its speed, idle', async () =>
      (await peersOf(ant.url)).some((p) => p.name === 'bee' && idle(p)),
    );
    const { data, errors } = await graphql(ant.url, PLAN);
    assert.equal(errors, undefined, JSON.stringify(errors));
    assert.equal(data.plan.route, 'UPSTREAM');
    assert.equal(data.plan.target, 'peer:bee');
    const names = data.plan.peers.map((p: { name: string }) => p.name).sort();
    assert.deepEqual(names, ['bee', 'cat']);
    const peer = data.plan.peers.find((p: { name: string }) => p.name === 'bee');
    assert.equal(peer.target, 'peer:bee');
    assert.equal(peer.url, bee.url);
    assert.equal(peer.device, 'local:cpu');
    assert.deepEqual(
      peer.models.find((m: { id: string }) => m.id === 'taef2'),
      { id: 'taef2', operations: ['ENCODE', 'DECODE'] },
    );
    assert.deepEqual(
      peer.models.find((m: { id: string }) => m.id === 'tiny-sd'),
      { id: 'tiny-sd', operations: ['ENCODE', 'DECODE', 'IMG2IMG'] },
    );
    assert.ok(peer.budgetBytes > 1e9 && peer.freeBytes === peer.budgetBytes, JSON.stringify(peer));
    assert.equal(peer.queued, 0);
    assert.equal(peer.running, 0);
    assert.ok(Date.now() - Date.parse(peer.lastSeen) < TTL_MS, peer.lastSeen);
    const [speed] = peer.speed;
    assert.equal(speed.model, 'taef2');
    assert.equal(speed.operation, 'ENCODE');
    assert.ok(speed.secondsPerMegapixel > 0);

    const health = await peersOf(ant.url);
    assert.deepEqual(health.map((p) => p.name).sort(), ['bee', 'cat']);
    // cat advertises that it is busy: no memory free, no queue.
    const cats = health.find((p) => p.name === 'cat')!;
    assert.equal(cats.budgetBytes, 2 ** 30);
    assert.equal(cats.freeBytes, 0);
    assert.equal(cats.maxQueueLength, 0);
    assert.ok(!health.some((p) => p.name === 'ant'), 'an instance is not its own peer');
  });

  test('a request a peer forwarded is not forwarded again', async () => {
    // As if cat had sent it: ant cannot run it and must not pass it on to bee.
    const marked = await encode(ant.url, { [FORWARDED_HEADER]: 'cat' });
    assert.equal(marked.data, null);
    assert.equal(marked.errors?.[0].extensions?.code, 'DOES_NOT_FIT', JSON.stringify(marked.errors));
    const answer = await fetch(`${ant.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, [FORWARDED_HEADER]: 'cat' },
      body: new Uint8Array(png),
    });
    assert.equal(((await answer.json()) as { code: string }).code, 'DOES_NOT_FIT');
  });

  test('a killed peer drops out after its TTL; then ant and cat, both full, answer without a loop', async () => {
    bee.process.kill('SIGKILL');
    const gone = (url: string) => async () => !(await peersOf(url)).some((p) => p.name === 'bee');
    const took = Math.max(await until('ant sees bee leave', gone(ant.url)), await until('cat too', gone(cat.url)));
    assert.ok(took <= TTL_MS + 2 * HEARTBEAT_MS + 1000, `took ${took} ms`);
    const { data } = await graphql(ant.url, PLAN);
    assert.equal(data.plan.route, 'REJECT');
    assert.deepEqual(
      data.plan.peers.map((p: { name: string }) => p.name),
      ['cat'],
    );
    for (const [gateway, code] of [
      [ant, 'DOES_NOT_FIT'],
      [cat, 'BUSY'],
    ] as const) {
      const started = performance.now();
      const refused = await encode(gateway.url);
      assert.equal(refused.errors?.[0].extensions?.code, code, JSON.stringify(refused.errors));
      assert.ok(performance.now() - started < 5000, 'answered at once, not bounced between them');
    }
  });
});
