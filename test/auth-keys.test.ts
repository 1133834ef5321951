/**
 * API keys: the `keys` CLI against a real keys file and a real Redis, authentication of Bearer and
 * .netrc-style Basic credentials through a real HTTP server on loopback, revocation seen by a second
 * instance on the same Redis, and the refusal to serve without keys on a non-loopback address.
 */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { authenticate, authenticateFor, type KeyLookup } from '../src/auth/authenticate.ts';
import { WWW_AUTHENTICATE } from '../src/auth/credentials.ts';
import { KeyStore } from '../src/auth/key-store.ts';
import { hashKey, KEY_PATTERN, SCOPES, type Scope } from '../src/auth/keys.ts';
import { authMode, isLoopback } from '../src/auth/startup.ts';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/observability/logger.ts';
import { GatewayMetrics } from '../src/observability/metrics.ts';
import { CapacityLedger } from '../src/routing/ledger.ts';
import { httpErrorAnswer } from '../src/server/error-edges.ts';
import { runCli } from './support/cli.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const dir = mkdtempSync(join(tmpdir(), 'latentgate-keys-'));
/** A Redis prefix of this test's own. */
const prefix = () => `latentgate-test:${randomUUID()}:`;
const stores: KeyStore[] = [];
const redis = new Redis(REDIS_URL);
const prefixes: string[] = [];

async function open(options: { keysFile?: string; redisPrefix?: string; refreshMs?: number }): Promise<KeyStore> {
  const store = await KeyStore.open({
    keysFile: options.keysFile ?? null,
    redisUrl: options.redisPrefix ? REDIS_URL : null,
    redisPrefix: options.redisPrefix ?? 'unused:',
    refreshMs: options.refreshMs ?? 0,
  });
  stores.push(store);
  return store;
}

function sharedPrefix(): string {
  const p = prefix();
  prefixes.push(p);
  return p;
}

after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  if (prefixes.length) await redis.del(...prefixes.map((p) => `${p}keys`));
  await redis.quit();
});

/** What `requests` sends for a `~/.netrc` entry (`machine HOST login USER password KEY`): HTTPBasicAuth. */
function netrcHeader(netrc: string, host: string): string {
  const tokens = netrc.split(/\s+/).filter(Boolean);
  const at = tokens.indexOf(host);
  assert.equal(tokens[at - 1], 'machine');
  const field = (name: string) => tokens[tokens.indexOf(name, at) + 1];
  return `Basic ${Buffer.from(`${field('login')}:${field('password')}`, 'latin1').toString('base64')}`;
}

async function until(condition: () => boolean, withinMs: number): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > withinMs) assert.fail(`not within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('keys CLI with a keys file', () => {
  const file = join(dir, 'cli', 'keys.json');
  // No Redis and no config file from the surroundings: this is the file-only case.
  const env = { API_KEYS_FILE: file, REDIS_URL: '', LATENTGATE_CONFIG: '' };

  test('create prints the key once, stores only its hash in a 0600 file; list shows no key; revoke', async () => {
    const created = await runCli(
      [
        'keys',
        'create',
        '--name',
        'ci',
        '--scopes',
        'encode,decode',
        '--rate',
        '60/min',
        '--quota',
        '2e9/day',
        '--json',
      ],
      dir,
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const { name, key } = JSON.parse(created.stdout) as { name: string; key: string };
    assert.equal(name, 'ci');
    assert.match(key, new RegExp(`^${KEY_PATTERN.source}$`));

    assert.equal(statSync(file).mode & 0o777, 0o600);
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(key) && !text.includes(key.slice(3)), 'the key is in the file in clear');
    assert.ok(text.includes(hashKey(key)));

    const plain = await runCli(['keys', 'create', '--name', 'ops', '--scopes', 'admin'], dir, env);
    assert.equal(plain.code, 0, plain.stderr);
    const opsKey = plain.stdout.trim();
    assert.match(opsKey, KEY_PATTERN);
    assert.match(plain.stderr, /shown this once/);

    const listed = await runCli(['keys', 'list'], dir, env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      /^ci\tscopes encode,decode; rate 60\/min; quota 2000000000 pixel-seconds\/day; created /m,
    );
    assert.match(listed.stdout, /^ops\tscopes admin; rate unlimited; quota unlimited/m);
    const json = await runCli(['keys', 'list', '--json'], dir, env);
    const records = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.deepEqual(
      records.map((r) => [r.name, r.scopes, r.rate]),
      [
        ['ci', ['encode', 'decode'], { requests: 60, windowSeconds: 60 }],
        ['ops', ['admin'], null],
      ],
    );
    for (const output of [listed.stdout + listed.stderr, json.stdout])
      for (const secret of [key, opsKey, hashKey(key), hashKey(opsKey)]) assert.ok(!output.includes(secret));

    const store = await open({ keysFile: file });
    assert.equal(store.find(key)?.name, 'ci');
    assert.equal(store.find(opsKey)?.name, 'ops');

    const revoked = await runCli(['keys', 'revoke', 'ci'], dir, env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    await store.refresh();
    assert.equal(store.find(key), undefined);
    assert.equal(store.find(opsKey)?.name, 'ops');

    const again = await runCli(['keys', 'revoke', 'ci'], dir, env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no key named "ci"; keys: ops/);
  });

  test('bad flags are named with what is allowed; a taken name is refused', async () => {
    const bad = await runCli(
      ['keys', 'create', '--name', 'x', '--scopes', 'encode,bogus', '--rate', '60/fortnight', '--quota=-1'],
      dir,
      env,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--scopes is "encode,bogus"; allowed scopes: encode, decode, img2img, jobs, admin/);
    assert.match(
      bad.stderr,
      /--rate is "60\/fortnight"; rate "60\/fortnight" is not a rate limit; write REQUESTS\/UNIT/,
    );
    assert.match(bad.stderr, /--quota is "-1"; quota "-1" is not a daily quota; write PIXEL_SECONDS\/day/);
    // The keys file of the test above holds "ops".
    const taken = await runCli(['keys', 'create', '--name', 'ops', '--scopes', 'jobs'], dir, env);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /BAD_REQUEST: a key named "ops" already exists; revoke it first/);
    const store = await open({ keysFile: file });
    await expectRejected(store.create({ name: '../x', scopes: ['encode'] }), /the key name "\.\.\/x" is not allowed/);
  });

  test('without API_KEYS_FILE or REDIS_URL there is nowhere to keep a key', async () => {
    const run = await runCli(['keys', 'create', '--name', 'x', '--scopes', 'encode'], dir, {
      ...env,
      API_KEYS_FILE: '',
    });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /set API_KEYS_FILE/);
  });

  test('a keys file that is not a key list stops the store with the file named', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ version: 1, keys: [{ name: 'x', hash: 'plain-key' }] }));
    await assert.rejects(open({ keysFile: bad }), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /the keys file .*bad\.json is not valid: keys\[0\]\.scopes is required/);
      return true;
    });
  });
});

describe('authentication through a real HTTP server', () => {
  let server: Server;
  let url: string;
  let keys: KeyLookup;

  const ledger = new CapacityLedger({ budgetBytes: 1, headroomBytes: 0, maxQueueLength: 1, name: 'test' });
  const observability = { logger: createLogger('silent'), metrics: new GatewayMetrics({ ledger, upstreams: null }) };
  /** An edge as the gateway's will be: the scope is the path's first segment. */
  async function start(lookup: KeyLookup) {
    keys = lookup;
    server = createServer((request, response) => {
      const scope = (request.url ?? '/').slice(1) as Scope;
      const result = authenticateFor(keys, request, scope);
      if (!result.ok) {
        const answer = httpErrorAnswer(observability, result.error);
        assert.equal(answer.status, result.status);
        assert.deepEqual(answer.headers, result.headers);
        response.writeHead(answer.status, { ...answer.headers, 'content-type': 'application/json' });
        response.end(JSON.stringify(answer.body));
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ key: result.key?.name ?? null }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  after(() => server?.close());

  async function call(scope: string, authorization?: string) {
    const response = await fetch(`${url}/${scope}`, { headers: authorization ? { authorization } : {} });
    return {
      status: response.status,
      challenge: response.headers.get('www-authenticate'),
      body: (await response.json()) as Record<string, unknown>,
    };
  }

  test('Bearer and .netrc Basic pass; no, wrong, malformed, revoked key: 401; unscoped: 403', async () => {
    const store = await open({ keysFile: join(dir, 'http', 'keys.json') });
    const { key } = await store.create({ name: 'encoder', scopes: ['encode', 'decode'] });
    const { key: other } = await store.create({ name: 'jobs-only', scopes: ['jobs'] });
    await start(store);

    assert.deepEqual(await call('encode', `Bearer ${key}`), { status: 200, challenge: null, body: { key: 'encoder' } });
    const netrc = `machine gpu.example.com\n  login anyone\n  password ${key}\n`;
    const basic = netrcHeader(netrc, 'gpu.example.com');
    assert.equal(basic, `Basic ${Buffer.from(`anyone:${key}`).toString('base64')}`);
    assert.deepEqual((await call('decode', basic)).body, { key: 'encoder' });
    // The Basic user name is ignored, even an empty one.
    assert.equal((await call('decode', `Basic ${Buffer.from(`:${key}`).toString('base64')}`)).status, 200);

    const unauthenticated = async (authorization: string | undefined, reason: string, message: RegExp) => {
      const answer = await call('encode', authorization);
      assert.equal(answer.status, 401, JSON.stringify(answer.body));
      assert.equal(answer.challenge, WWW_AUTHENTICATE);
      assert.equal(answer.challenge, 'Bearer realm="latentgate", Basic realm="latentgate"');
      assert.equal(answer.body.code, 'UNAUTHENTICATED');
      assert.equal(answer.body.reason, reason);
      assert.match(String(answer.body.error), message);
    };
    await unauthenticated(undefined, 'missing', /needs an API key: send "Authorization: Bearer KEY"/);
    await unauthenticated(`Bearer ${key}x`, 'invalid', /not valid: it is unknown or has been revoked/);
    await unauthenticated(`Bearer lg_${'A'.repeat(43)}`, 'invalid', /not valid/);
    await unauthenticated(`Basic ${Buffer.from(key).toString('base64')}`, 'malformed', /must be "user:key"/);
    await unauthenticated(`Token ${key}`, 'malformed', /scheme "Token" is not accepted/);

    const forbidden = await call('encode', `Bearer ${other}`);
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.challenge, null);
    assert.equal(forbidden.body.code, 'FORBIDDEN');
    assert.match(String(forbidden.body.error), /"jobs-only" may not encode: its scopes are jobs/);
    assert.equal((await call('jobs', `Bearer ${other}`)).status, 200);

    assert.equal(await store.revoke('encoder'), true);
    await unauthenticated(`Bearer ${key}`, 'invalid', /revoked/);
    await unauthenticated(basic, 'invalid', /revoked/);
  });

  test('every kind of header source: Fetch Headers, a Request, WebSocket connectionParams', async () => {
    const store = await open({ keysFile: join(dir, 'sources', 'keys.json') });
    const { key } = await store.create({ name: 'all', scopes: [...SCOPES] });
    const bearer = `Bearer ${key}`;
    for (const source of [
      new Headers({ Authorization: bearer }),
      new Request('http://x/', { headers: { authorization: bearer } }),
      { Authorization: bearer },
      { headers: { Authorization: bearer } },
      { headers: new Headers({ Authorization: bearer }) },
    ]) {
      const result = authenticate(store, source);
      assert.ok(result.ok && result.key?.name === 'all');
    }
    const twice = authenticate(store, { authorization: [bearer, bearer] });
    assert.ok(!twice.ok && twice.status === 401);
  });

  test('with no keys configured anyone passes; with a keys file but no key yet nobody does', async () => {
    const none = await open({});
    assert.equal(none.required, false);
    assert.deepEqual(authenticateFor(none, {}, 'admin'), { ok: true, key: null });
    const empty = await open({ keysFile: join(dir, 'empty', 'keys.json') });
    assert.equal(empty.required, true);
    const result = authenticate(empty, {});
    assert.ok(!result.ok && result.status === 401);
  });
});

describe('keys shared through Redis', () => {
  test('the CLI writes to Redis; a watching instance sees a key and its revocation at once', async () => {
    const redisPrefix = sharedPrefix();
    const env = { REDIS_URL, API_KEYS_REDIS_PREFIX: redisPrefix, API_KEYS_FILE: '', LATENTGATE_CONFIG: '' };
    // Long enough that only the announcement on the Redis channel can explain a prompt update.
    const watching = await open({ redisPrefix, refreshMs: 10_000 });
    assert.equal(watching.required, false);

    const created = await runCli(['keys', 'create', '--name', 'shared', '--scopes', 'img2img', '--json'], dir, env);
    assert.equal(created.code, 0, created.stderr);
    const { key } = JSON.parse(created.stdout) as { key: string };
    const stored = JSON.parse((await redis.hget(`${redisPrefix}keys`, 'shared')) ?? '{}');
    assert.equal(stored.hash, hashKey(key));
    assert.ok(!JSON.stringify(stored).includes(key));

    await until(() => watching.find(key)?.name === 'shared', 2000);
    assert.equal(watching.required, true);
    const revoked = await runCli(['keys', 'revoke', 'shared'], dir, env);
    assert.equal(revoked.code, 0, revoked.stderr);
    await until(() => watching.find(key) === undefined, 2000);
    // Revoking the last key keeps the gateway locked rather than opening it.
    assert.equal(watching.required, true);
    const result = authenticate(watching, { authorization: `Bearer ${key}` });
    assert.ok(!result.ok && result.status === 401);
  });

  test('two instances: a revocation whose announcement is lost is still seen within the refresh interval', async () => {
    const redisPrefix = sharedPrefix();
    const first = await open({ redisPrefix, refreshMs: 200 });
    const second = await open({ redisPrefix, refreshMs: 200 });
    const { key } = await first.create({ name: 'a', scopes: ['encode'] });
    await until(() => second.find(key)?.name === 'a', 1000);

    // Removed behind the instances' backs: no message on the channel, only the periodic reread can see it.
    await redis.hdel(`${redisPrefix}keys`, 'a');
    await until(() => second.find(key) === undefined && first.find(key) === undefined, 1500);

    const { key: next } = await second.create({ name: 'b', scopes: ['decode'] });
    await until(() => first.find(next)?.name === 'b', 1000);
    await expectRejected(first.create({ name: 'b', scopes: ['decode'] }), /a key named "b" already exists/);
    assert.equal(await first.revoke('b'), true);
    await until(() => second.find(next) === undefined, 1000);
    assert.equal(await second.revoke('b'), false);
  });

  test('names in the keys file but not in Redis are reported, not accepted', async () => {
    const redisPrefix = sharedPrefix();
    const keysFile = join(dir, 'file-only', 'keys.json');
    const { key } = await (await open({ keysFile })).create({ name: 'old', scopes: ['encode'] });
    const store = await open({ keysFile, redisPrefix });
    assert.deepEqual(store.fileOnlyNames, ['old']);
    assert.equal(store.find(key), undefined);
  });
});

async function expectRejected(promise: Promise<unknown>, message: RegExp) {
  await assert.rejects(promise, (error: unknown) => {
    assert.match((error as Error).message, message);
    return true;
  });
}

describe('start-up safety', () => {
  const base = { keysRequired: false, keyCount: 0, keySource: 'Redis', allowUnauthenticated: false };

  test('without keys a non-loopback address is refused unless ALLOW_UNAUTHENTICATED=true', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'gpu.example.com'])
      assert.throws(
        () => authMode({ ...base, host }),
        (error: unknown) =>
          error instanceof ConfigError &&
          error.message.includes(`listening on ${host} would let anyone use this gateway`) &&
          error.message.includes('ALLOW_UNAUTHENTICATED=true'),
      );
    assert.match(authMode({ ...base, host: '0.0.0.0', allowUnauthenticated: true }), /open to anyone.*0\.0\.0\.0/);
    for (const host of ['127.0.0.1', '127.0.1.1', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1'])
      assert.match(authMode({ ...base, host }), /no API keys configured: open to anyone who can reach loopback/);
    assert.equal(isLoopback('128.0.0.1'), false);
    assert.equal(isLoopback('::2'), false);
    assert.equal(
      authMode({ ...base, host: '0.0.0.0', keysRequired: true, keyCount: 2 }),
      'API keys required (2 key(s) from Redis)',
    );
  });

  test('the settings: ALLOW_UNAUTHENTICATED, API_KEYS_FILE, a refresh of at most 10 s', () => {
    const config = loadConfig({ ALLOW_UNAUTHENTICATED: 'true', API_KEYS_FILE: 'keys.json' });
    assert.equal(config.auth.allowUnauthenticated, true);
    assert.equal(config.auth.keysFile, join(process.cwd(), 'keys.json'));
    assert.deepEqual(loadConfig({}).auth, {
      keysFile: null,
      allowUnauthenticated: false,
      refreshMs: 5000,
      redisPrefix: 'latentgate:apikeys:',
    });
    assert.throws(
      () => loadConfig({ ALLOW_UNAUTHENTICATED: 'yes', API_KEYS_REFRESH_MS: '60000' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /ALLOW_UNAUTHENTICATED \(allowUnauthenticated\) is "yes"; allowed: true, false/);
        assert.match(
          error.message,
          /API_KEYS_REFRESH_MS \(apiKeysRefreshMs\) is "60000"; it must be an integer from 100 to 10000/,
        );
        return true;
      },
    );
  });
});
