/**
 * What the Redis job path (REDIS_URL: BullMQ queue, state and events in Redis) adds to one small job
 * against the in-memory path: a 64x64 taef2 submitEncode followed over SSE to its DONE event, both
 * gateways in this process, alternating rounds so drift hits both alike. `dispatchMs` is the time
 * between a job's QUEUED and ROUTED events (the gateway's clock): in memory the run starts at once;
 * with Redis it is the queue add, a worker's fetch, the spec and input read and the room check.
 * `burstPerJobMs`: 40 such jobs submitted at once, wall time until the last is DONE, per job.
 *
 * Needs Redis at 127.0.0.1:6379 (keys under a prefix of this run, removed after).
 */
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { LatentgateClient } from '../src/client/client.ts';
import { type InProcessGateway, startInProcessGateway } from '../test/support/in-process.ts';
import { deleteKeysUnder } from '../test/support/redis-keys.ts';
import { MODELS_DIR, median } from './support.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';

interface Sample {
  wallMs: number;
  dispatchMs: number;
}

async function oneJob(client: LatentgateClient, image: string): Promise<Sample> {
  const start = performance.now();
  const job = await client.submitEncode({ model: 'taef2', image: { base64: image } });
  let queuedAt = 0;
  let routedAt = 0;
  for await (const event of client.jobProgress(job.id)) {
    if (event.type === 'QUEUED' && event.seq === 1) queuedAt = new Date(event.at).getTime();
    if (event.type === 'ROUTED' && !routedAt) routedAt = new Date(event.at).getTime();
    if (event.type === 'FAILED') throw new Error(JSON.stringify(event));
  }
  return { wallMs: performance.now() - start, dispatchMs: routedAt - queuedAt };
}

async function burst(client: LatentgateClient, image: string, jobs: number): Promise<number> {
  const start = performance.now();
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      const job = await client.submitEncode({ model: 'taef2', image: { base64: image } });
      for await (const event of client.jobProgress(job.id)) if (event.type === 'FAILED') throw new Error(event.type);
    }),
  );
  return (performance.now() - start) / jobs;
}

export async function durableJobs(rounds = 30, burstJobs = 40) {
  const prefix = `latentgate-bench:${randomUUID().slice(0, 8)}:`;
  const env = { MODELS_DIR, BATCH_WINDOW_MS: '0', LOG_LEVEL: 'silent' };
  const gateways: InProcessGateway[] = [];
  const clients: LatentgateClient[] = [];
  try {
    gateways.push(await startInProcessGateway(env));
    gateways.push(await startInProcessGateway({ ...env, REDIS_URL, REDIS_PREFIX: prefix }));
    clients.push(...gateways.map((g) => new LatentgateClient(g.url)));
    const [memory, redis] = clients;
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3080c0' } })
      .png()
      .toBuffer();
    const image = png.toString('base64');
    await oneJob(memory, image);
    await oneJob(redis, image);
    const samples: Record<'memory' | 'redis', Sample[]> = { memory: [], redis: [] };
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['memory', 'redis'] as const) : (['redis', 'memory'] as const);
      for (const side of order) samples[side].push(await oneJob(side === 'memory' ? memory : redis, image));
    }
    const summary = (side: 'memory' | 'redis') => ({
      wallMs: Math.round(median(samples[side].map((s) => s.wallMs)) * 100) / 100,
      dispatchMs: median(samples[side].map((s) => s.dispatchMs)),
    });
    const result = {
      benchmark: 'durable-jobs',
      job: '64x64 taef2 submitEncode, followed over SSE to DONE (medians)',
      rounds,
      memory: summary('memory'),
      redis: summary('redis'),
      latencyRatio: 0,
      burstPerJobMs: {
        memory: Math.round((await burst(memory, image, burstJobs)) * 100) / 100,
        redis: Math.round((await burst(redis, image, burstJobs)) * 100) / 100,
      },
      cores: cpus().length,
      note:
        'one instance per side, in one process; several instances on this machine would share its ' +
        `${cpus().length} cores, so no scaling figure is reported`,
    };
    result.latencyRatio = Math.round((result.redis.wallMs / result.memory.wallMs) * 100) / 100;
    return result;
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(gateways.map((g) => g.stop()));
    const redis = new Redis(REDIS_URL);
    await deleteKeysUnder(redis, prefix);
    redis.disconnect();
  }
}
