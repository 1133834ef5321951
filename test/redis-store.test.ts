/** Two gateway instances sharing results through a real Redis: a URL from one decodes on the other. */

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisResultStore } from '../src/storage/redis-result-store.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/0';
/** The job queue's keys (REDIS_URL starts one) under this run's own prefix, removed after. */
const PREFIX = `latentgate-test:redis-store:${randomUUID().slice(0, 8)}:`;
let first: RunningGateway;
let second: RunningGateway;

before(async () => {
  [first, second] = await Promise.all([
    startGateway({ MODELS_DIR, REDIS_URL, REDIS_PREFIX: PREFIX }),
    startGateway({ MODELS_DIR, REDIS_URL, REDIS_PREFIX: PREFIX }),
  ]);
});
after(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  const redis = new Redis(REDIS_URL);
  const names = await redis.keys(`${PREFIX}*`);
  if (names.length) await redis.del(...names);
  await redis.quit();
});

test('a latent URL issued by one instance is served and decoded by another', async () => {
  const png = readFileSync(join(IMAGES_DIR, 'coffee.png')).toString('base64');
  const encoded = await first.graphql(
    'mutation($i: EncodeInput!) { encode(input: $i) { latent { url sha256 byteLength } } }',
    {
      i: { model: 'taef2', image: { base64: png }, delivery: 'URL' },
    },
  );
  assert.equal(encoded.errors, undefined, JSON.stringify(encoded.errors));
  const { url, byteLength } = encoded.data.encode.latent;
  assert.ok(url.startsWith(first.url));

  const viaSecond = await fetch(url.replace(first.url, second.url));
  assert.equal(viaSecond.status, 200);
  assert.equal((await viaSecond.arrayBuffer()).byteLength, byteLength);

  const decoded = await second.graphql('mutation($i: DecodeInput!) { decode(input: $i) { images { width height } } }', {
    i: { model: 'taef2', latent: { url } },
  });
  assert.equal(decoded.errors, undefined, JSON.stringify(decoded.errors));
  assert.deepEqual(decoded.data.decode.images, [{ width: 600, height: 400 }]);
});

test('the Redis store tells expired from unknown', async () => {
  const store = new RedisResultStore(REDIS_URL, 1);
  try {
    const { id } = await store.put({
      kind: 'latent',
      bytes: new Uint8Array([1, 2, 3, 4]),
      shape: [1],
      dtype: 'float32',
      contentType: 'application/octet-stream',
    });
    const found = await store.get(id);
    assert.equal(found.status, 'found');
    assert.deepEqual(found.status === 'found' && [...found.result.bytes], [1, 2, 3, 4]);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal((await store.get(id)).status, 'expired');
    assert.equal((await store.get('00000000-0000-0000-0000-000000000000')).status, 'unknown');
  } finally {
    await store.close();
  }
});
