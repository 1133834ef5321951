/**
 * Three real gateway processes on one real Redis (a private, persistent redis-server on loopback):
 * jobs submitted through any of them run wherever there is room; one instance is killed with SIGKILL
 * while it runs jobs, and every job still ends exactly once, DONE, readable and subscribable from
 * every survivor; a survivor told SIGTERM finishes its run in flight and exits 0; then Redis is
 * stopped and restarted under load: typed SERVICE_UNAVAILABLE while it is down, recovery after, and
 * every job accepted before or after still ends DONE once.
 *
 * JOB_LOCK_MS / JOB_STALLED_INTERVAL_MS are short so the dead instance's jobs run again within ~2 s;
 * DEVICE_MEMORY (288 MiB) holds one 256² taef2 run and a small one at most, so jobs wait in the queue,
 * and runs a 1024² encode TILED (256 px tiles: a few seconds, long enough to cancel mid-run).
 * The tests run in order: each starts from the instances the one before left.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { type JobEvent, LatentgateClient, type LatentgateError } from '../src/client/client.ts';
import { MODELS_DIR } from './support/paths.ts';
import { type PrivateRedis, startPrivateRedis } from './support/redis-server.ts';
import { type RunningGateway, startGateway } from './support/server.ts';
import { until } from './support/until.ts';

const PREFIX = `latentgate-test:scale-out:${randomUUID().slice(0, 8)}:`;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-scale-out-'));
let server: PrivateRedis;
let redis: Redis;
let gateways: RunningGateway[] = [];
let clients: LatentgateClient[] = [];

before(async () => {
  server = await startPrivateRedis({ persistDir: dataDir });
  redis = new Redis(server.url);
  redis.on('error', () => {}); // while the last test has Redis stopped
  const env = {
    MODELS_DIR,
    DATA_DIR: dataDir,
    REDIS_URL: server.url,
    REDIS_PREFIX: PREFIX,
    REDIS_COMMAND_TIMEOUT_MS: '1000',
    REDIS_HEALTH_INTERVAL_MS: '300',
    JOB_LOCK_MS: '1500',
    JOB_STALLED_INTERVAL_MS: '500',
    JOB_CONCURRENCY: '2',
    DEVICE_MEMORY: '288MiB',
    DEVICE_HEADROOM: '0',
    EXECUTION_PROVIDER: 'cpu',
    INTRA_OP_THREADS: '1',
    BATCH_WINDOW_MS: '0',
    LOG_LEVEL: 'info', // startGateway waits for the info line 'listening on'
  };
  gateways = await Promise.all([0, 1, 2].map(() => startGateway(env)));
  clients = gateways.map((g) => new LatentgateClient(g.url));
});

after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  // The killed and the drained ones have exited already.
  await Promise.all(
    gateways.filter((g) => g.process.exitCode === null && g.process.signalCode === null).map((g) => g.stop()),
  );
  redis?.disconnect();
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const SIDES = [64, 128, 192, 256];
const JOBS = 36;

interface Submitted {
  id: string;
  operation: 'encode' | 'decode';
  side: number;
  delivery: 'BASE64' | 'URL';
  via: number;
}

async function submit(i: number): Promise<Submitted> {
  const side = SIDES[i % SIDES.length];
  const via = i % 3;
  const delivery = i % 4 === 3 ? 'URL' : 'BASE64';
  const client = clients[via];
  if (i % 2 === 0) {
    const png = await sharp({
      create: { width: side, height: side, channels: 3, background: { r: i * 7, g: 90, b: 200 } },
    })
      .png()
      .toBuffer();
    const job = await client.submitEncode({ model: 'taef2', image: { base64: png.toString('base64') }, delivery });
    return { id: job.id, operation: 'encode', side, delivery, via };
  }
  const shape = [1, 32, side / 8, side / 8];
  const values = new Float32Array(shape.reduce((a, b) => a * b));
  for (let k = 0; k < values.length; k++) values[k] = Math.sin(k * 0.37 + i);
  const data = Buffer.from(values.buffer).toString('base64');
  const job = await client.submitDecode({ model: 'taef2', latent: { tensor: { data, shape } }, delivery });
  return { id: job.id, operation: 'decode', side, delivery, via };
}

const TERMINAL = new Set(['DONE', 'FAILED', 'CANCELLED']);

/** Every event of a subscription, until it ends. */
async function collect(client: LatentgateClient, id: string): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of client.jobProgress(id)) events.push(event);
  return events;
}

function checkStream(events: JobEvent[], label: string): void {
  const seqs = events.map((e) => e.seq);
  assert.deepEqual(
    seqs,
    [...seqs].sort((a, b) => a - b),
    `${label}: in order`,
  );
  assert.equal(new Set(seqs).size, seqs.length, `${label}: no event twice`);
  assert.equal(events.filter((e) => TERMINAL.has(e.type)).length, 1, `${label}: one terminal event`);
  assert.equal(events.at(-1)!.type, 'DONE', `${label}: ends DONE`);
}

test('cancelJob on one instance stops a run on another', async () => {
  const png = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#4060a0' } })
    .png()
    .toBuffer();
  const job = await clients[0].submitEncode({ model: 'taef2', image: { base64: png.toString('base64') } });
  const events: JobEvent[] = [];
  let cancelled = false;
  for await (const event of clients[1].jobProgress(job.id)) {
    events.push(event);
    if (!cancelled && event.__typename === 'JobRunningEvent' && event.done >= 1) {
      cancelled = true;
      // From an instance other than the one that runs it.
      const runner = await redis.hget(`${PREFIX}job:${job.id}`, 'runner');
      const other = gateways.findIndex((g) => !runner?.endsWith(`:${g.process.pid}`));
      const view = await clients[other].cancelJob(job.id);
      assert.equal(view.cancelRequested, true);
    }
  }
  assert.ok(cancelled, `the run was followed to its first tile: ${events.map((e) => e.type)}`);
  assert.equal(events.at(-1)!.type, 'CANCELLED');
  assert.equal(events.filter((e) => TERMINAL.has(e.type)).length, 1);
  const view = await clients[2].job(job.id);
  assert.equal(view.status, 'CANCELLED');
  assert.ok(view.progress!.done < view.progress!.total, 'stopped before its last step');
});

const JOB_QUERY = `query($id: ID!) { job(id: $id) { status events { seq type }
  result { __typename ... on EncodeResult { latent { shape url data } } ... on DecodeResult { images { width height url data } } } } }`;

test('three instances share one queue; a killed instance’s jobs run again elsewhere, each ends once', async (t) => {
  const started = Date.now();
  const victim = gateways[2];
  const victimRunner = runnerOf(victim);
  const jobs = await Promise.all(Array.from({ length: JOBS }, (_, i) => submit(i)));
  // Followed live from an instance other than the one each went in through (never the victim).
  const live = jobs.slice(0, 6).map((job) => collect(clients[(job.via + 1) % 2], job.id));

  // Kill the victim while it runs a job.
  const hashes = () => {
    const pipeline = redis.pipeline();
    for (const job of jobs) pipeline.hmget(`${PREFIX}job:${job.id}`, 'status', 'runner', 'runs');
    return pipeline.exec() as Promise<[Error | null, [string | null, string | null, string | null]][]>;
  };
  let interrupted: string[] = [];
  while (interrupted.length === 0) {
    assert.ok(Date.now() - started < 20_000, 'the victim ran no job within 20 s');
    const states = await hashes();
    interrupted = jobs
      .filter((_, i) => states[i][1][0] === 'RUNNING' && states[i][1][1] === victimRunner)
      .map((j) => j.id);
    if (interrupted.length === 0) await new Promise((r) => setTimeout(r, 5));
  }
  victim.process.kill('SIGKILL');
  const survivors = [0, 1];

  // Every job ends.
  for (;;) {
    assert.ok(Date.now() - started < 50_000, 'jobs still unfinished after 50 s');
    const states = await hashes();
    if (states.every(([, [status]]) => status && TERMINAL.has(status))) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  // The interrupted jobs ran again, on a survivor.
  const states = await hashes();
  for (const id of interrupted) {
    const [, [status, runner, runs]] = states[jobs.findIndex((j) => j.id === id)];
    assert.equal(status, 'DONE', `interrupted ${id}`);
    assert.ok(Number(runs) >= 2, `interrupted ${id} ran again (runs ${runs})`);
    assert.notEqual(runner, victimRunner, `interrupted ${id} finished elsewhere`);
  }

  const byRunner = new Map<string, number>();
  for (const [, [, runner]] of states) byRunner.set(runner!, (byRunner.get(runner!) ?? 0) + 1);
  t.diagnostic(
    `finished by instance: ${JSON.stringify(Object.fromEntries(byRunner))}; rerun after the kill: ${interrupted.length}`,
  );

  // Each job: DONE with one terminal event and the same result on every survivor; valid results.
  const urls = new Set<string>();
  for (const job of jobs) {
    const views = await Promise.all(survivors.map((s) => gateways[s].graphql(JOB_QUERY, { id: job.id })));
    for (const [s, view] of views.entries()) {
      assert.equal(view.errors, undefined, JSON.stringify(view.errors));
      const { status, events, result } = view.data.job;
      const label = `${job.operation} ${job.side}² via ${job.via}, read on ${s}`;
      assert.equal(status, 'DONE', label);
      assert.deepEqual(
        events.map((e: { seq: number }) => e.seq),
        events.map((_: unknown, k: number) => k + 1),
        label,
      );
      assert.equal(events.filter((e: { type: string }) => TERMINAL.has(e.type)).length, 1, label);
      assert.equal(events.at(-1).type, 'DONE', label);
      assert.deepEqual(result, views[0].data.job.result, `${label}: the same result everywhere`);
      if (job.operation === 'encode') {
        assert.deepEqual(result.latent.shape, [1, 32, job.side / 8, job.side / 8], label);
        assert.equal(job.delivery === 'URL' ? !!result.latent.url : !!result.latent.data, true, label);
        if (result.latent.url && s === 0) urls.add(result.latent.url);
      } else {
        assert.deepEqual([result.images[0].width, result.images[0].height], [job.side, job.side], label);
        if (result.images[0].url && s === 0) urls.add(result.images[0].url);
      }
    }
    // The stored log itself: exactly one terminal entry for the job id.
    const stored = (await redis.lrange(`${PREFIX}job:${job.id}:events`, 0, -1)).map((e) => JSON.parse(e).type);
    assert.equal(stored.filter((t) => TERMINAL.has(t)).length, 1, `${job.id}: one terminal entry in Redis`);
  }
  const urlJobs = jobs.filter((j) => j.delivery === 'URL').length;
  assert.equal(urls.size, urlJobs, 'one distinct result URL per URL job');
  for (const url of urls) {
    const response = await fetch(url.replace(/^http:\/\/[^/]+/, gateways[1].url));
    assert.equal(response.status, 200, url);
    await response.arrayBuffer();
  }

  // Subscribable from every survivor: the compacted log, ending with its one DONE.
  for (const job of jobs)
    for (const s of survivors) checkStream(await collect(clients[s], job.id), `jobProgress of ${job.id} on ${s}`);
  // Followed live across instances: every event in order, one terminal event.
  for (const [k, events] of (await Promise.all(live)).entries()) {
    checkStream(events, `live ${jobs[k].id}`);
    assert.equal(events[0].seq, 1, 'a live subscription from the start sees the first event');
  }
});

/** How a gateway names itself as a job's runner in Redis. */
const runnerOf = (gateway: RunningGateway) => `${hostname()}:${gateway.process.pid}`;

const smallPng = (shade: number) =>
  sharp({ create: { width: 64, height: 64, channels: 3, background: { r: shade % 256, g: 40, b: 90 } } })
    .png()
    .toBuffer()
    .then((png) => png.toString('base64'));

test('SIGTERM: a survivor finishes its run in flight, refuses new work, exits 0; its queued jobs run elsewhere', async () => {
  const big = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#305070' } })
    .png()
    .toBuffer();
  const job = await clients[0].submitEncode({ model: 'taef2', image: { base64: big.toString('base64') } });
  const others = await Promise.all(
    [1, 2, 3, 4].map(
      async (k) => (await clients[k % 2].submitEncode({ model: 'taef2', image: { base64: await smallPng(k) } })).id,
    ),
  );
  const runner = await until('the big job running', 20_000, async () => {
    const [status, name] = await redis.hmget(`${PREFIX}job:${job.id}`, 'status', 'runner');
    return status === 'RUNNING' ? name : null;
  });
  const drained = [0, 1].find((k) => runnerOf(gateways[k]) === runner);
  assert.ok(drained !== undefined, `runner ${runner} is a survivor`);
  const exit = new Promise<number | null>((resolve) => gateways[drained].process.once('exit', (code) => resolve(code)));
  gateways[drained].process.kill('SIGTERM');
  await until('the instance draining', 5000, async () => {
    const health = await fetch(`${gateways[drained].url}/healthz`).then((r) => r.json() as Promise<{ status: string }>);
    return health.status === 'draining' ? true : null;
  });
  await assert.rejects(
    clients[drained].submitEncode({ model: 'taef2', image: { base64: await smallPng(9) } }),
    (error: LatentgateError) => error.code === 'SERVICE_UNAVAILABLE',
  );
  assert.equal(await exit, 0, 'exit 0 after the drain');
  const other = 1 - drained;
  const view = await clients[other].job(job.id);
  assert.equal(view.status, 'DONE', 'the run in flight finished');
  const [runs, finishedBy] = await redis.hmget(`${PREFIX}job:${job.id}`, 'runs', 'runner');
  assert.deepEqual([runs, finishedBy], ['1', runner], 'finished by the drained instance, not run again');
  for (const id of others)
    await until(`job ${id} DONE`, 30_000, async () => ((await clients[other].job(id)).status === 'DONE' ? true : null));
});

test('Redis stopped and restarted under load: typed SERVICE_UNAVAILABLE while down, recovery after, no job lost', async (t) => {
  const alive = [0, 1].find((k) => gateways[k].process.exitCode === null)!;
  const client = clients[alive];
  const accepted: string[] = [];
  const refusals = new Map<string, number>();
  let stopLoad = false;
  let k = 0;
  const load = (async () => {
    while (!stopLoad) {
      const started = Date.now();
      try {
        accepted.push((await client.submitEncode({ model: 'taef2', image: { base64: await smallPng(k++) } })).id);
      } catch (error) {
        const code = (error as LatentgateError).code;
        refusals.set(code, (refusals.get(code) ?? 0) + 1);
      }
      assert.ok(Date.now() - started < 10_000, 'no submission hangs');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  await until('jobs accepted before the stop', 10_000, async () => (accepted.length >= 3 ? true : null));
  await server.stop();
  await until('a refusal while Redis is down', 10_000, async () => (refusals.size > 0 ? true : null));
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const health = await fetch(`${gateways[alive].url}/healthz`);
  const body = (await health.json()) as { redis: { ok: boolean; reason: string } };
  assert.equal(health.status, 503);
  assert.equal(body.redis.ok, false);
  await assert.rejects(client.job(accepted[0]), (error: LatentgateError) => error.code === 'SERVICE_UNAVAILABLE');
  await server.start();
  const back = Date.now();
  const before = accepted.length;
  await until('submissions accepted again', 30_000, async () => (accepted.length > before ? true : null));
  assert.ok(Date.now() - back < 30_000, 'recovered within 30 s');
  stopLoad = true;
  await load;
  assert.deepEqual([...refusals.keys()], ['SERVICE_UNAVAILABLE'], `refusals: ${JSON.stringify([...refusals])}`);
  t.diagnostic(`accepted ${accepted.length}, refused ${refusals.get('SERVICE_UNAVAILABLE')} while Redis was down`);
  // Every accepted job, before the stop, during it and after, ends DONE with one terminal event.
  for (const id of accepted) {
    await until(`job ${id} DONE`, 30_000, async () => ((await client.job(id)).status === 'DONE' ? true : null));
    checkStream(await collect(client, id), `job ${id} after the restart`);
  }
});
