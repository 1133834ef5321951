/**
 * Redis going away and coming back, with a real gateway process on a private redis-server: typed
 * SERVICE_UNAVAILABLE answers (GraphQL and HTTP, with Retry-After) instead of INTERNAL or a hang,
 * /healthz and /metrics saying so, recovery without a restart; and the start-up check.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { KeyStore } from '../src/auth/key-store.ts';
import { LatentgateClient } from '../src/client/client.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type PrivateRedis, startPrivateRedis } from './support/redis-server.ts';
import { freePort, type RunningGateway, startGateway } from './support/server.ts';
import { until } from './support/until.ts';

const ENCODE = 'mutation($i: EncodeInput!) { encode(input: $i) { latent { url } } }';
const PNG = readFileSync(join(IMAGES_DIR, 'coffee.png')).toString('base64');
const COMMAND_TIMEOUT_MS = 1000;
const env = (redisUrl: string) => ({
  MODELS_DIR,
  REDIS_URL: redisUrl,
  REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
  REDIS_HEALTH_INTERVAL_MS: '300',
  DEVICE_MEMORY: '2GiB',
});

let redis: PrivateRedis;
let gateway: RunningGateway;

before(async () => {
  redis = await startPrivateRedis();
  gateway = await startGateway(env(redis.url));
});
after(async () => {
  await gateway?.stop();
  await redis?.stop();
});

const encode = () => gateway.graphql(ENCODE, { i: { model: 'taef2', image: { base64: PNG }, delivery: 'URL' } });

async function health(): Promise<{ status: number; body: any }> {
  const response = await fetch(`${gateway.url}/healthz`);
  return { status: response.status, body: await response.json() };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} is exposed`);
  return Number(line.split(' ')[1]);
}

test('with Redis up, URL deliveries work and /healthz reports redis ok', async () => {
  const answers = await Promise.all([encode(), encode()]);
  for (const answer of answers) assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  const served = await fetch(answers[0].data.encode.latent.url);
  assert.equal(served.status, 200);
  const { status, body } = await health();
  assert.equal(status, 200);
  assert.equal(body.status, 'ok');
  assert.deepEqual({ ok: body.redis.ok, reason: body.redis.reason }, { ok: true, reason: null });
});

test('Redis stopped under load: typed SERVICE_UNAVAILABLE, no INTERNAL, no hang; recovery once it is back', async () => {
  const stored = (await encode()).data.encode.latent.url as string;
  // Runs in flight when Redis dies; each must end, delivered or refused with a typed error.
  const inFlight = Array.from({ length: 3 }, () => encode());
  await new Promise((resolve) => setTimeout(resolve, 200));
  await redis.stop();
  const started = Date.now();
  const answers = [...(await Promise.all(inFlight)), await encode()];
  assert.ok(Date.now() - started < 15_000, 'the answers came within the bounds, not after a hang');
  for (const answer of answers) {
    if (!answer.errors) continue;
    const { code, retryAfterSeconds } = answer.errors[0].extensions ?? {};
    assert.equal(code, 'SERVICE_UNAVAILABLE', JSON.stringify(answer.errors));
    assert.ok(retryAfterSeconds > 0, JSON.stringify(answer.errors));
  }
  const last = answers.at(-1)!;
  assert.equal(last.errors?.[0].extensions?.code, 'SERVICE_UNAVAILABLE', 'an encode sent while Redis is down');
  assert.match(last.errors![0].message, /Redis did not answer while storing a result/);

  // What needs no Redis still works.
  const inline = await gateway.graphql(ENCODE, { i: { model: 'taef2', image: { base64: PNG }, delivery: 'BASE64' } });
  assert.equal(inline.errors, undefined, JSON.stringify(inline.errors));

  // A result URL: HTTP 503 with Retry-After.
  const fetched = await fetch(stored);
  assert.equal(fetched.status, 503);
  assert.ok(Number(fetched.headers.get('retry-after')) > 0);
  assert.equal(((await fetched.json()) as { code: string }).code, 'SERVICE_UNAVAILABLE');

  const down = await until('/healthz reporting Redis down', 5000, async () => {
    const h = await health();
    return h.body.redis.ok ? null : h;
  });
  assert.equal(down.status, 503);
  assert.equal(down.body.status, 'degraded');
  assert.match(down.body.redis.reason, /ECONNREFUSED|closed|max retries|timed out/i);
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  assert.equal(metric(metrics, 'latentgate_redis_up'), 0);
  assert.ok(metric(metrics, 'latentgate_redis_failures_total') >= 1);
  assert.ok(metric(metrics, 'latentgate_rejections_total{reason="SERVICE_UNAVAILABLE"}') >= 1);

  await redis.start();
  const back = Date.now();
  await until('an encode succeeding again', 30_000, async () => ((await encode()).errors ? null : true));
  const recovered = Date.now() - back;
  assert.ok(recovered < 30_000, `recovered in ${recovered} ms`);
  await until('/healthz reporting Redis up', 5000, async () => ((await health()).status === 200 ? true : null));
  const again = await encode();
  assert.equal(again.errors, undefined, JSON.stringify(again.errors));
  assert.equal((await fetch(again.data.encode.latent.url)).status, 200);
  assert.equal(metric(await (await fetch(`${gateway.url}/metrics`)).text(), 'latentgate_redis_up'), 1);
});

test('a Redis that does not answer at start stops the gateway with a message naming REDIS_URL', async () => {
  const nobody = `redis://127.0.0.1:${await freePort()}/0`;
  await assert.rejects(startGateway(env(nobody)), (error: Error) => {
    assert.match(error.message, /Redis at redis:\/\/127\.0\.0\.1:\d+\/0 \(REDIS_URL\) does not answer/);
    assert.match(error.message, /REDIS_REQUIRED=false/);
    return true;
  });
});

test('REDIS_REQUIRED=false starts degraded and recovers when Redis comes', async () => {
  const late = await startPrivateRedis();
  await late.stop();
  const degraded = await startGateway({ ...env(late.url), REDIS_REQUIRED: 'false' });
  try {
    assert.match(degraded.output(), /starting degraded/);
    const h = await fetch(`${degraded.url}/healthz`);
    assert.equal(h.status, 503);
    assert.equal(((await h.json()) as { status: string }).status, 'degraded');
    // The keys (in Redis) cannot be read yet: refused as unavailable, neither let through nor called unauthenticated.
    const response = await fetch(`${degraded.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: ENCODE, variables: { i: { model: 'taef2', image: { base64: PNG } } } }),
    });
    assert.equal(response.status, 503);
    assert.ok(Number(response.headers.get('retry-after')) > 0);
    const refused = (await response.json()) as { errors: { extensions: { code: string } }[] };
    assert.equal(refused.errors[0].extensions.code, 'SERVICE_UNAVAILABLE', JSON.stringify(refused.errors));
    await late.start();
    const back = Date.now();
    await until('the degraded gateway recovering', 30_000, async () => {
      const answer = await degraded.graphql(ENCODE, { i: { model: 'taef2', image: { base64: PNG }, delivery: 'URL' } });
      return answer.errors ? null : answer;
    });
    assert.ok(Date.now() - back < 30_000);
    assert.equal((await fetch(`${degraded.url}/healthz`)).status, 200);
    // Jobs too: the queue's worker and the job-event subscription came up with Redis.
    const client = new LatentgateClient(degraded.url);
    try {
      const job = await client.submitEncode({ model: 'taef2', image: { base64: PNG } });
      const events: string[] = [];
      for await (const event of client.jobProgress(job.id, 'sse')) events.push(event.type);
      assert.equal(events.at(-1), 'DONE', events.join(' '));
      assert.equal((await client.job(job.id)).status, 'DONE');
    } finally {
      await client.close();
    }
  } finally {
    await degraded.stop();
    await late.stop();
  }
});

test('with API keys and limits in Redis, a down Redis refuses compute with 503 SERVICE_UNAVAILABLE, not 500', async () => {
  const store = await KeyStore.open({ keysFile: null, redisUrl: redis.url, redisPrefix: 'latentgate:apikeys:' });
  const { key } = await store.create({ name: 'client', scopes: ['encode'] });
  await store.close();
  const call = (headers: Record<string, string> = { authorization: `Bearer ${key}` }) =>
    fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({
        query: ENCODE,
        variables: { i: { model: 'taef2', image: { base64: PNG }, delivery: 'BASE64' } },
      }),
    });
  // The creation is announced to the gateway, which from then on needs a key.
  await until('the gateway needing a key', 10_000, async () => ((await call({})).status === 401 ? true : null));
  assert.equal((await call()).status, 200);
  const unavailable = async () =>
    metric(
      await (await fetch(`${gateway.url}/metrics`)).text(),
      'latentgate_rejections_total{reason="SERVICE_UNAVAILABLE"}',
    );
  const before = await unavailable();
  await redis.stop();
  const refused = await call();
  assert.equal(refused.status, 503);
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  const { errors } = (await refused.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
  assert.equal(errors[0].extensions.code, 'SERVICE_UNAVAILABLE');
  assert.match(errors[0].message, /limits/);
  assert.equal(await unavailable(), before + 1, 'counted once');
});
