/**
 * `drain` on the Redis job path: an instance that drains stops taking jobs, and a run it cannot finish
 * by the deadline goes back to the queue and completes on another instance, with one terminal event;
 * a job whose instance was lost too often ends FAILED instead of running again.
 * Gateways in this process on one real Redis, under a key prefix of this run's own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { LatentgateClient } from '../src/client/client.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';
import { deleteKeysUnder } from './support/redis-keys.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `latentgate-test:drain:${randomUUID().slice(0, 8)}:`;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-drain-'));
const redis = new Redis(REDIS_URL);
let gateways: InProcessGateway[] = [];
let client: LatentgateClient;

// 288 MiB runs a 1024² taef2 encode TILED in 256 px tiles: a few seconds, so it is mid-run when drained.
const env = {
  MODELS_DIR,
  DATA_DIR: dataDir,
  REDIS_URL,
  REDIS_PREFIX: PREFIX,
  DEVICE_MEMORY: '288MiB',
  DEVICE_HEADROOM: '0',
  EXECUTION_PROVIDER: 'cpu',
  LOG_LEVEL: 'silent',
};

before(async () => {
  gateways = [await startInProcessGateway(env), await startInProcessGateway(env)];
  client = new LatentgateClient(gateways[0].url);
});

after(async () => {
  await client?.close();
  await Promise.all(gateways.map((g) => g.stop()));
  await deleteKeysUnder(redis, PREFIX);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a drained instance hands its run back; another finishes it, once', async () => {
  const png = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#a06040' } })
    .png()
    .toBuffer();
  const job = await client.submitEncode({ model: 'taef2', image: { base64: png.toString('base64') } });
  const events = [];
  let drained: Promise<void> | null = null;
  for await (const event of client.jobProgress(job.id)) {
    events.push(event);
    if (!drained && event.__typename === 'JobRunningEvent' && event.done >= 1) {
      const runner = gateways.find((g) => g.services.ledger.snapshot().running > 0);
      assert.ok(runner, 'one of the two runs it');
      drained = runner.services.durableJobs!.drain(100);
    }
  }
  await drained;
  assert.ok(drained, 'the run was followed to its first tile');
  const types = events.map((e) => e.type);
  assert.equal(types.at(-1), 'DONE', types.join(' '));
  assert.equal(types.filter((t) => t === 'DONE' || t === 'FAILED' || t === 'CANCELLED').length, 1);
  assert.ok(types.lastIndexOf('ROUTED') > types.indexOf('RUNNING'), `routed again after the hand-back: ${types}`);
  assert.equal(await redis.hget(`${PREFIX}job:${job.id}`, 'runs'), '2');
  const view = await client.job(job.id);
  assert.equal(view.status, 'DONE');
  assert.deepEqual((view.result as { latent: { shape: number[] } }).latent.shape, [1, 32, 128, 128]);
});

test('a job whose run was started 5 times (its instance lost each time) ends FAILED, not run again', async () => {
  // No instance takes jobs while this one is set up.
  await Promise.all(gateways.map((g) => g.services.durableJobs!.drain(0)));
  const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#204060' } })
    .png()
    .toBuffer();
  const job = await client.submitEncode({ model: 'taef2', image: { base64: png.toString('base64') } });
  // As five instances that died mid-run would have left it.
  await redis.hset(`${PREFIX}job:${job.id}`, 'runs', '5');
  gateways.push(await startInProcessGateway(env));
  const events = [];
  for await (const event of client.jobProgress(job.id)) events.push(event);
  const end = events.at(-1)!;
  assert.equal(end.__typename, 'JobFailedEvent', JSON.stringify(events));
  if (end.__typename === 'JobFailedEvent') assert.match(end.error.message, /started 5 times .* not run again/);
  assert.equal(await redis.hget(`${PREFIX}job:${job.id}`, 'runs'), '5', 'not started again');
});
