/**
 * img2img jobs on the Redis job path: submitted through one gateway, run by whichever has room,
 * followed over SSE and WebSocket from the other. The seed (a bigint past 2^53), the stages and one
 * DENOISE event per network call come through Redis as they do in memory, and the result is the one
 * the synchronous mutation gives for the same seed. Two gateways in this process on one real Redis,
 * under a key prefix of this run's own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { type JobEvent, LatentgateClient } from '../src/client/client.ts';
import { gradientPng } from './support/image-files.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { deleteKeysUnder } from './support/redis-keys.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `latentgate-test:img2img:${randomUUID().slice(0, 8)}:`;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-durable-img2img-'));
const redis = new Redis(REDIS_URL);
let gateways: InProcessGateway[] = [];
let clients: LatentgateClient[] = [];

const IMAGE = gradientPng(64, 64, 11);
const SEED = '18446744073709551557';
const INPUT = {
  model: 'sd',
  prompt: 'a photo of a cat',
  strength: 0.5,
  steps: 6,
  seed: SEED,
  returnLatent: true,
  image: { base64: Buffer.from(IMAGE).toString('base64') },
};

before(async () => {
  writeTinyPipeline(join(dir, 'models', 'sd'), {});
  const env = {
    MODELS_DIR: join(dir, 'models'),
    DATA_DIR: join(dir, 'data'),
    REDIS_URL,
    REDIS_PREFIX: PREFIX,
    LOG_LEVEL: 'silent',
  };
  gateways = [await startInProcessGateway(env), await startInProcessGateway(env)];
  clients = gateways.map((g) => new LatentgateClient(g.url));
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(gateways.map((g) => g.stop()));
  await deleteKeysUnder(redis, PREFIX);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

test('submitImg2img on Redis: stages and steps followed from another instance; the same result as the mutation', async () => {
  const job = await clients[0].submitImg2img(INPUT);
  const [sse, ws] = await Promise.all(
    (['sse', 'ws'] as const).map(async (transport) => {
      const events: JobEvent[] = [];
      for await (const event of clients[1].jobProgress(job.id, transport)) events.push(event);
      return events;
    }),
  );
  for (const [label, events] of [
    ['SSE', sse],
    ['WebSocket', ws],
  ] as const) {
    const end = events.at(-1)!;
    assert.equal(end.__typename, 'JobDoneEvent', `${label}: ${events.map((e) => e.type)}`);
    const running = events.filter((e) => e.__typename === 'JobRunningEvent');
    const stages = [...new Set(running.map((e) => (e.__typename === 'JobRunningEvent' ? e.stage : null)))];
    assert.deepEqual(stages, ['TEXT_ENCODE', 'ENCODE', 'DENOISE', 'DECODE'], label);
    const denoise = running.filter((e) => e.__typename === 'JobRunningEvent' && e.stage === 'DENOISE');
    // PNDM's repeated timestep: int(6 x 0.5) + 1 network calls, one event each, in order.
    assert.deepEqual(
      denoise.map((e) => (e.__typename === 'JobRunningEvent' ? [e.done, e.total] : null)),
      [1, 2, 3, 4].map((done) => [done, 4]),
      label,
    );
  }
  const view = await clients[1].job(job.id);
  assert.equal(view.status, 'DONE');
  assert.equal(view.result?.__typename, 'Img2ImgResult');
  const direct = await gateways[1].graphql(
    'mutation ($input: Img2ImgInput!) { img2img(input: $input) { images { sha256 } latent { sha256 } } }',
    { input: INPUT },
  );
  assert.equal(direct.errors, undefined, JSON.stringify(direct.errors));
  if (view.result?.__typename === 'Img2ImgResult') {
    assert.equal(view.result.seed, SEED, 'the seed past 2^53 came through Redis exactly');
    assert.equal(view.result.images[0].sha256, direct.data.img2img.images[0].sha256, 'the same image as the mutation');
    assert.equal(view.result.finalLatent?.sha256, direct.data.img2img.latent.sha256, 'the same latent');
  }
});
