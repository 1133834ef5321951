/**
 * Rate limits and quotas per key (in memory on a fixed clock, and on the real Redis shared by two
 * limiters), the `usage` query, signed result URLs, URL_SIGNING_KEY as a secret, and deleting a
 * result by its owner only.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { execute, GraphQLError, parse } from 'graphql';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { formatRate, type KeyLimits, parseQuota, parseRate } from '../src/auth/limit-specs.ts';
import {
  type Admission,
  createKeyLimiter,
  type KeyLimiter,
  pixelSeconds,
  rateLimitedError,
} from '../src/auth/limiter.ts';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { Secret } from '../src/config/secret.ts';
import type { GatewayError } from '../src/errors.ts';
import { createLogger } from '../src/observability/logger.ts';
import { GatewayMetrics } from '../src/observability/metrics.ts';
import { CapacityLedger } from '../src/routing/ledger.ts';
import { schema } from '../src/schema/index.ts';
import { httpErrorAnswer, maskGraphQLError } from '../src/server/error-edges.ts';
import { RedisResultStore } from '../src/storage/redis-result-store.ts';
import { MemoryResultStore, type ResultStore } from '../src/storage/result-store.ts';
import {
  type AccessOptions,
  checkResultAccess,
  deleteResult,
  RESULT_CACHE_CONTROL,
  signResultUrl,
} from '../src/storage/signed-urls.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';

/** The edges log and count what they answer: a silent logger and a metrics registry of their own. */
const observability = {
  logger: createLogger('silent'),
  metrics: new GatewayMetrics({
    ledger: new CapacityLedger({ budgetBytes: 1, headroomBytes: 0, maxQueueLength: 1, name: 'test' }),
    upstreams: null,
  }),
};

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const SIGNING_KEY = 'k'.repeat(16) + randomUUID();

/** 2026-11-26 16:00:20.500 UTC: 39.5 s before the minute ends, 7 h 59 min 39.5 s before the day does. */
const T0 = Date.UTC(2026, 10, 26, 16, 0, 20, 500);

/** A gateway without URL_SIGNING_KEY, for the usage query and unsigned URLs. */
let gateway: InProcessGateway;
before(async () => {
  gateway = await startInProcessGateway({ MODELS_DIR });
});
after(async () => gateway?.stop());

function limitsTable(table: Record<string, { rate?: string; quota?: string }>) {
  return (name: string): KeyLimits | undefined => {
    const record = table[name];
    if (!record) return undefined;
    return {
      rate: record.rate ? parseRate(record.rate) : null,
      quota: record.quota ? parseQuota(record.quota) : null,
    };
  };
}

function refused(admission: Admission) {
  assert.equal(admission.allowed, false, 'expected a refusal');
  return (admission as Extract<Admission, { allowed: false }>).limited;
}

function admitted(admission: Admission) {
  assert.equal(admission.allowed, true, `expected admission, got ${JSON.stringify(admission)}`);
  return (admission as Extract<Admission, { allowed: true }>).ticket;
}

describe('limit specs', () => {
  test('rates and quotas as a key record writes them', () => {
    assert.deepEqual(parseRate('60/min'), { requests: 60, windowSeconds: 60, text: '60/min' });
    assert.equal(parseRate('100/10s').windowSeconds, 10);
    assert.equal(parseRate('5000 / day').windowSeconds, 86400);
    assert.equal(parseQuota('1.1M/day').pixelSeconds, 1_100_000);
    assert.equal(parseQuota('2000000/day').pixelSeconds, 2_000_000);
    assert.equal(parseQuota('2e9/day').pixelSeconds, 2_000_000_000);
    assert.equal(formatRate(parseRate('60/min')), '60/min');
    assert.equal(formatRate(parseRate('100/10s')), '100/10s');
    for (const bad of ['60', '0/min', '60/fortnight', '10/2day', '1.5/min'])
      assert.throws(() => parseRate(bad), /not a rate limit; write REQUESTS\/UNIT/, bad);
    for (const bad of ['500M', '500M/hour', '0/day', '1.5/day', '-3/day', '2e9M/day', '1e-3/day'])
      assert.throws(() => parseQuota(bad), /not a daily quota; write PIXEL_SECONDS\/day/, bad);
  });
});

describe('limits in memory, on a fixed clock', () => {
  let now = T0;
  const limiter = createKeyLimiter(null, limitsTable({ alice: { rate: '3/min', quota: '1000/day' } }), {
    now: () => now,
  });

  test('the rate limit refuses the 4th request with the seconds left in the window, then resets', async () => {
    for (let i = 0; i < 3; i++) admitted(await limiter.admit('alice'));
    const limited = refused(await limiter.admit('alice'));
    assert.deepEqual(limited, {
      keyName: 'alice',
      reason: 'rate',
      retryAfterSeconds: 40,
      limit: 3,
      used: 3,
      estimate: 0,
    });
    // Refused requests are not counted: the window still holds 3.
    assert.equal((await limiter.usage('alice')).requests.used, 3);
    now = T0 + 39_500;
    admitted(await limiter.admit('alice'));
  });

  test('the quota refuses an estimate that does not fit until midnight UTC; settling frees the difference', async () => {
    now = T0 + 120_000;
    const first = admitted(await limiter.admit('alice', 600));
    const limited = refused(await limiter.admit('alice', 500));
    assert.equal(limited.reason, 'quota');
    assert.equal(limited.retryAfterSeconds, 8 * 3600 - 140);
    assert.deepEqual([limited.limit, limited.used, limited.estimate], [1000, 600, 500]);
    // 299.2 measured pixel-seconds count as 300: the counters keep whole ones, rounded up.
    assert.equal(pixelSeconds(1024 * 1024, 0.000285339), 300);
    await limiter.settle(first, pixelSeconds(1024 * 1024, 0.000285339));
    assert.equal((await limiter.usage('alice')).pixelSeconds.used, 300);
    admitted(await limiter.admit('alice', 500));
    assert.equal((await limiter.usage('alice')).pixelSeconds.used, 800);
  });

  test('a request that runs nothing passes an exhausted quota; an estimate above the whole quota is refused', async () => {
    now = T0 + 180_000;
    admitted(await limiter.admit('alice', 200));
    refused(await limiter.admit('alice', 1));
    admitted(await limiter.admit('alice', 0));
    admitted(await limiter.admit('alice', 0));
    // Both limits refuse now; the answer is the later reset, midnight.
    const both = refused(await limiter.admit('alice', 1));
    assert.deepEqual([both.reason, both.retryAfterSeconds], ['quota', 8 * 3600 - 200]);
    assert.equal(refused(await limiter.admit('alice')).retryAfterSeconds, 40);
    await assert.rejects(limiter.admit('alice', 1001), (error: GatewayError) => {
      assert.equal(error.code, 'BAD_REQUEST');
      assert.match(error.message, /estimated at 1001 pixel-seconds, more than key "alice"'s whole daily quota/);
      return true;
    });
  });

  test('a settlement after midnight leaves the new day alone', async () => {
    now = T0 + 240_000;
    const ticket = admitted(await limiter.admit('bob', 50));
    now = Date.UTC(2026, 10, 27, 0, 0, 1);
    admitted(await limiter.admit('bob', 10));
    await limiter.settle(ticket, 5000);
    const usage = await limiter.usage('bob');
    assert.equal(usage.pixelSeconds.used, 10);
    assert.equal(usage.pixelSeconds.limit, null);
    assert.equal(usage.pixelSeconds.resetsAt.toISOString(), '2026-11-28T00:00:00.000Z');
  });

  test('the edges answer a refusal with 429 + Retry-After and GraphQL code RATE_LIMITED, the same figure', async () => {
    now = Date.UTC(2026, 10, 27, 9, 30, 15);
    for (let i = 0; i < 3; i++) admitted(await limiter.admit('alice'));
    const error = rateLimitedError(refused(await limiter.admit('alice')));
    const http = httpErrorAnswer(observability, error);
    assert.equal(http.status, 429);
    assert.equal(http.headers['retry-after'], '45');
    assert.equal(http.body.code, 'RATE_LIMITED');
    assert.equal(http.body.retryAfterSeconds, 45);
    const graphql = maskGraphQLError(observability, new GraphQLError('x', { originalError: error }), 'masked');
    assert.ok(graphql instanceof GraphQLError);
    assert.equal(graphql.extensions.code, 'RATE_LIMITED');
    assert.equal(graphql.extensions.retryAfterSeconds, 45);
    assert.match(graphql.message, /key "alice" has made 3 of its 3 requests in this window; retry in 45 s/);
  });
});

describe('limits in Redis, shared by two limiters', () => {
  const prefix = `latentgate:test:${randomUUID()}:`;
  const limits = limitsTable({ carol: { rate: '3/hour', quota: '1000/day' } });
  let first: KeyLimiter;
  let second: KeyLimiter;
  let redis: Redis;

  before(() => {
    first = createKeyLimiter(REDIS_URL, limits, { prefix });
    second = createKeyLimiter(REDIS_URL, limits, { prefix });
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await Promise.all([first?.close(), second?.close(), redis?.quit()]);
  });

  /** Redis' clock in ms, after waiting out the last 5 s before a multiple of `periodMs` so the test cannot straddle it. */
  async function redisNow(periodMs: number): Promise<number> {
    const [seconds, micros] = await redis.time();
    const now = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const left = periodMs - (now % periodMs);
    if (left > 5000) return now;
    await new Promise((resolve) => setTimeout(resolve, left + 50));
    return redisNow(periodMs);
  }

  test('requests on either instance count against one window, and the refusal says when it ends', async () => {
    const now = await redisNow(3_600_000);
    admitted(await first.admit('carol'));
    admitted(await second.admit('carol'));
    admitted(await first.admit('carol'));
    const limited = refused(await second.admit('carol'));
    assert.equal(limited.reason, 'rate');
    const expected = Math.ceil((3_600_000 - (now % 3_600_000)) / 1000);
    assert.ok(Math.abs(limited.retryAfterSeconds - expected) <= 1, `${limited.retryAfterSeconds} vs ${expected}`);
    refused(await first.admit('carol'));
    assert.equal((await first.usage('carol')).requests.used, 3);
  });

  test('the quota is shared too: estimates reserve, settling corrects, and a refusal lasts until midnight UTC', async () => {
    const now = await redisNow(86_400_000);
    const dave = limitsTable({ dave: { quota: '1000/day' } });
    const firstDave = createKeyLimiter(REDIS_URL, dave, { prefix });
    const secondDave = createKeyLimiter(REDIS_URL, dave, { prefix });
    try {
      const ticket = admitted(await firstDave.admit('dave', 600));
      admitted(await secondDave.admit('dave', 300));
      const limited = refused(await secondDave.admit('dave', 200));
      assert.equal(limited.reason, 'quota');
      assert.deepEqual([limited.used, limited.limit], [900, 1000]);
      const expected = Math.ceil((86_400_000 - (now % 86_400_000)) / 1000);
      assert.ok(Math.abs(limited.retryAfterSeconds - expected) <= 1, `${limited.retryAfterSeconds} vs ${expected}`);
      await firstDave.settle(ticket, 123.4);
      admitted(await secondDave.admit('dave', 200));
      const usage = await firstDave.usage('dave');
      assert.equal(usage.pixelSeconds.used, 124 + 300 + 200);
      assert.equal(usage.pixelSeconds.limit, 1000);
      assert.equal(usage.pixelSeconds.resetsAt.getTime(), now - (now % 86_400_000) + 86_400_000);
    } finally {
      await Promise.all([firstDave.close(), secondDave.close()]);
    }
  });
});

describe('the usage query', () => {
  const USAGE = '{ usage { key requests { used limit windowSeconds resetsAt } pixelSeconds { used limit resetsAt } } }';

  test('a caller without a key sees what anonymous has used, through the gateway', async () => {
    const { limiter } = gateway.services;
    admitted(await limiter.admit('anonymous'));
    const ticket = admitted(await limiter.admit('anonymous', 5000));
    await limiter.settle(ticket, 4321);
    const response = await gateway.graphql(USAGE);
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const { usage } = response.data;
    assert.equal(usage.key, 'anonymous');
    assert.deepEqual(
      { ...usage.requests, resetsAt: undefined },
      { used: 2, limit: null, windowSeconds: 60, resetsAt: undefined },
    );
    assert.equal(new Date(usage.requests.resetsAt).getTime() % 60_000, 0);
    assert.deepEqual({ ...usage.pixelSeconds, resetsAt: undefined }, { used: 4321, limit: null, resetsAt: undefined });
    assert.match(usage.pixelSeconds.resetsAt, /T00:00:00\.000Z$/);
  });

  test("a key sees its own figures and limits, not another key's", async () => {
    let now = T0;
    const limiter = createKeyLimiter(null, limitsTable({ erin: { rate: '10/min', quota: '2M/day' } }), {
      now: () => now,
    });
    admitted(await limiter.admit('erin', 1500));
    admitted(await limiter.admit('frank'));
    now += 1000;
    const run = async (keyName: string) => {
      const contextValue = { services: { ...gateway.services, limiter }, auth: { keyName } };
      const { data, errors } = await execute({ schema, document: parse(USAGE), contextValue });
      assert.equal(errors, undefined);
      return JSON.parse(JSON.stringify(data));
    };
    assert.deepEqual(await run('erin'), {
      usage: {
        key: 'erin',
        requests: { used: 1, limit: 10, windowSeconds: 60, resetsAt: '2026-11-26T16:01:00.000Z' },
        pixelSeconds: { used: 1500, limit: 2_000_000, resetsAt: '2026-11-27T00:00:00.000Z' },
      },
    });
    assert.deepEqual((await run('gina')).usage, {
      key: 'gina',
      requests: { used: 0, limit: null, windowSeconds: 60, resetsAt: '2026-11-26T16:01:00.000Z' },
      pixelSeconds: { used: 0, limit: null, resetsAt: '2026-11-27T00:00:00.000Z' },
    });
  });
});

describe('signed result URLs', () => {
  const key = new Secret(SIGNING_KEY);
  const id = randomUUID();
  const expiresAt = T0 + 3_600_000;
  const url = new URL(signResultUrl(`http://127.0.0.1:4000/v1/images/${id}`, id, expiresAt, key));
  const anonymous: AccessOptions = { signingKey: key, callerAuthorized: false, now: T0 };
  const check = (u: URL, options = anonymous, forId = id) => checkResultAccess(u.searchParams, forId, options);
  const edited = (name: string, value: string) => {
    const copy = new URL(url);
    copy.searchParams.set(name, value);
    return copy;
  };

  test('a valid signature serves the result without a key, until it expires', () => {
    assert.equal(url.searchParams.get('expires'), String(Math.floor(expiresAt / 1000)));
    assert.match(url.searchParams.get('sig')!, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(check(url), { status: 'valid' });
    assert.equal(check(url, { ...anonymous, now: expiresAt }).status, 403);
    assert.equal((check(url, { ...anonymous, now: expiresAt }) as { reason: string }).reason, 'expired');
    assert.equal(RESULT_CACHE_CONTROL, 'private');
  });

  test('a tampered id, expiry or signature is refused with 403, a key holder included', () => {
    const sig = url.searchParams.get('sig')!;
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    const lastChar = sig.slice(0, 42) + (sig[42] === 'A' ? 'B' : 'A');
    for (const [name, answer] of [
      ['other id', check(url, anonymous, randomUUID())],
      ['later expiry', check(edited('expires', String(Number(url.searchParams.get('expires')) + 3600)))],
      ['first character', check(edited('sig', flipped))],
      ['last character', check(edited('sig', lastChar))],
      ['key holder', check(edited('sig', flipped), { ...anonymous, callerAuthorized: true })],
    ] as const)
      assert.deepEqual([name, answer.status, 'reason' in answer && answer.reason], [name, 403, 'tampered']);
    assert.equal((check(edited('sig', `${sig}=`)) as { reason: string }).reason, 'malformed');
    const noExpiry = new URL(url);
    noExpiry.searchParams.delete('expires');
    assert.equal((check(noExpiry) as { reason: string }).reason, 'malformed');
    assert.equal(
      (check(url, { ...anonymous, signingKey: new Secret('x'.repeat(32)) }) as { reason: string }).reason,
      'tampered',
    );
    assert.equal((check(url, { ...anonymous, signingKey: null }) as { reason: string }).reason, 'signing-disabled');
  });

  test('without a signature: 401 for a caller without a key, served to a key holder or by a gateway without keys', () => {
    const bare = new URL(`http://127.0.0.1:4000/v1/images/${id}`);
    assert.deepEqual(check(bare), {
      status: 401,
      reason: 'unsigned',
      message: 'this result URL needs an API key or a signature (expires, sig)',
    });
    assert.deepEqual(check(bare, { ...anonymous, callerAuthorized: true }), { status: 'valid' });
    assert.deepEqual(check(bare, { signingKey: null, callerAuthorized: true }), { status: 'valid' });
  });
});

describe('URL_SIGNING_KEY', () => {
  const env = { HOST: '127.0.0.1', PORT: '4000' };

  test('comes from the environment or a file, and never shows in logs or errors', () => {
    const config = loadConfig({ ...env, URL_SIGNING_KEY: SIGNING_KEY });
    assert.equal(config.urlSigningKey?.reveal(), SIGNING_KEY);
    for (const shown of [JSON.stringify(config), inspect(config, { depth: 5 }), String(config.urlSigningKey)])
      assert.ok(!shown.includes(SIGNING_KEY), shown);
    const dir = mkdtempSync(join(tmpdir(), 'latentgate-secret-'));
    writeFileSync(join(dir, 'key'), `${SIGNING_KEY}\n`);
    assert.equal(loadConfig({ ...env, URL_SIGNING_KEY_FILE: join(dir, 'key') }).urlSigningKey?.reveal(), SIGNING_KEY);
    assert.equal(loadConfig(env).urlSigningKey, null);
    const short = 'short-secret-value';
    assert.throws(
      () => loadConfig({ ...env, URL_SIGNING_KEY: short }),
      (error: Error) =>
        error instanceof ConfigError &&
        /URL_SIGNING_KEY is 18 character\(s\) long; it must be at least 32/.test(error.message) &&
        !error.message.includes(short),
    );
    assert.throws(
      () => loadConfig({ ...env, URL_SIGNING_KEY: SIGNING_KEY, URL_SIGNING_KEY_FILE: join(dir, 'key') }),
      /set URL_SIGNING_KEY or URL_SIGNING_KEY_FILE, not both/,
    );
    assert.throws(
      () => loadConfig({ ...env, URL_SIGNING_KEY_FILE: join(dir, 'missing') }),
      /URL_SIGNING_KEY_FILE names .*missing, which cannot be read: ENOENT/,
    );
  });

  test('signs the URLs a real gateway hands out, and an unsigned gateway keeps plain ones', async () => {
    const png = (
      await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
        .png()
        .toBuffer()
    ).toString('base64');
    const query = 'mutation($i: EncodeInput!) { encode(input: $i) { latent { url expiresAt } } }';
    const variables = { i: { model: 'taef2', image: { base64: png }, delivery: 'URL' } };
    const signing = await startInProcessGateway({ MODELS_DIR, URL_SIGNING_KEY: SIGNING_KEY });
    // The usage query's gateway runs without a signing key.
    const plain = gateway;
    try {
      const signed = await signing.graphql(query, variables);
      assert.equal(signed.errors, undefined, JSON.stringify(signed.errors));
      const url = new URL(signed.data.encode.latent.url);
      const id = url.pathname.split('/').at(-1)!;
      const expiresAt = Date.parse(signed.data.encode.latent.expiresAt);
      assert.equal(Number(url.searchParams.get('expires')), Math.floor(expiresAt / 1000));
      const options = { signingKey: signing.services.config.urlSigningKey, callerAuthorized: false };
      assert.deepEqual(checkResultAccess(url.searchParams, id, options), { status: 'valid' });
      // The path's query does not disturb today's route: the URL still serves the latent.
      assert.equal((await fetch(url)).status, 200);
      const unsigned = await plain.graphql(query, variables);
      assert.equal(unsigned.errors, undefined, JSON.stringify(unsigned.errors));
      assert.equal(new URL(unsigned.data.encode.latent.url).search, '');
    } finally {
      await signing.stop();
    }
  });
});

describe('deleting a result', () => {
  const stores: [string, () => ResultStore][] = [
    ['in memory', () => new MemoryResultStore(60)],
    ['in Redis', () => new RedisResultStore(REDIS_URL, 60)],
  ];
  for (const [name, make] of stores)
    test(`${name}: the owner may, another key may not, and then it is gone`, async () => {
      const store = make();
      try {
        const result = { kind: 'image' as const, bytes: new Uint8Array([1, 2]), contentType: 'image/png' };
        const { id } = await store.put({ ...result, owner: 'alice' });
        const found = await store.get(id);
        assert.equal(found.status === 'found' && found.result.owner, 'alice');
        await assert.rejects(deleteResult(store, id, 'mallory'), (error: GatewayError) => {
          assert.equal(error.code, 'FORBIDDEN');
          assert.equal(httpErrorAnswer(observability, error).status, 403);
          return true;
        });
        assert.equal((await store.get(id)).status, 'found');
        await deleteResult(store, id, 'alice');
        assert.equal((await store.get(id)).status, 'unknown');
        await assert.rejects(deleteResult(store, id, 'alice'), { code: 'NOT_FOUND' });
        // A result stored without an owner is anonymous's.
        const { id: anonymous } = await store.put(result);
        await assert.rejects(deleteResult(store, anonymous, 'alice'), { code: 'FORBIDDEN' });
        await deleteResult(store, anonymous, 'anonymous');
      } finally {
        await store.close();
      }
    });
});
