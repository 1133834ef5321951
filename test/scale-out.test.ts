/**
 * Three real gateway processes on one real Redis (a key prefix of this run's own): jobs submitted
 * through any of them run wherever there is room, one instance is killed with SIGKILL while it runs
 * jobs, and every job still ends exactly once, DONE, readable and subscribable from every survivor.
 *
 * JOB_LOCK_MS / JOB_STALLED_INTERVAL_MS are short so the dead instance's jobs run again within ~2 s;
 * DEVICE_MEMORY (288 MiB) holds one 256² taef2 run and a small one at most, so jobs wait in the queue,
 * and runs a 1024² encode TILED (256 px tiles: a few seconds, long enough to cancel mid-run).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { type JobEvent, LatentgateClient } from '../src/client/client.ts';
import { MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PREFIX = `latentgate-test:scale-out:${randomUUID().slice(0, 8)}:`;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-scale-out-'));
const redis = new Redis(REDIS_URL);
let gateways: RunningGateway[] = [];
let clients: LatentgateClient[] = [];

before(async () => {
  const env = {
    MODELS_DIR,
    DATA_DIR: dataDir,
    REDIS_URL,
    REDIS_PREFIX: PREFIX,
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
  // The killed one has exited already (by signal, so without an exit code stop() would wait for).
  await Promise.all(gateways.filter((g) => g.process.signalCode === null).map((g) => g.stop()));
  // This run's keys only (its own prefix), never the shared database.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
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
  const victimRunner = `${(await import('node:os')).hostname()}:${victim.process.pid}`;
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
