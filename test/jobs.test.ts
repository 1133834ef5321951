/**
 * Jobs against a real gateway with a small device budget: the least at which a 1536x1536 taef2
 * encode runs TILED with 320+ px tiles (about 49 tiles + 1 whole-map stage, long enough to cancel
 * mid-run even on a slow machine); a 512x512 encode then has to wait for it. Followed over SSE and
 * WebSocket with the typed client.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type JobEvent, LatentgateClient, type Transport } from '../src/client/client.ts';
import type { ImageSource } from '../src/client/generated/graphql.ts';
import { tiledBudget } from './support/budget.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';

let gateway: InProcessGateway;
let client: LatentgateClient;
let huge: Buffer;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-jobs-'));

before(async () => {
  const { deviceMemory } = await tiledBudget(MODELS_DIR, 'taef2', 1536, 1536, 320);
  [gateway, huge] = await Promise.all([
    startInProcessGateway({ MODELS_DIR, DATA_DIR: dataDir, DEVICE_MEMORY: deviceMemory, DEVICE_HEADROOM: '0' }),
    sharp(image('astronaut-1024.png')).resize(1536, 1536).png({ compressionLevel: 1 }).toBuffer(),
  ]);
  client = new LatentgateClient(gateway.url);
});
after(async () => {
  await client?.close();
  await gateway?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const image = (name: string) => readFileSync(join(IMAGES_DIR, name));
const file = (bytes: Uint8Array, name: string) => new File([new Uint8Array(bytes)], name);

async function device(): Promise<{ reservedBytes: number; queued: number; running: number; budgetBytes: number }> {
  return (await (await fetch(`${gateway.url}/healthz`)).json()).device;
}

/** The job's whole event log, read with job(id). */
async function fullLog(
  id: string,
): Promise<{ seq: number; type: string; status: string; position?: number | null; done?: number; total?: number }[]> {
  const response = await gateway.graphql(
    `query($id: ID!) { job(id: $id) { events { seq type status ` +
      `... on JobQueuedEvent { position } ... on JobRunningEvent { done total } } } }`,
    { id },
  );
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data.job.events;
}

const TERMINAL = new Set(['DONE', 'FAILED', 'CANCELLED']);

/** The grammar of a job's log: QUEUED ROUTED? (QUEUED)* RUNNING* then exactly one terminal event, seq 1..n. */
function checkLog(log: Awaited<ReturnType<typeof fullLog>>, label: string): void {
  const types = log.map((e) => e.type).join(' ');
  assert.deepEqual(
    log.map((e) => e.seq),
    log.map((_, i) => i + 1),
    `${label}: seq ${types}`,
  );
  assert.match(types, /^QUEUED( ROUTED( QUEUED)*( RUNNING)*)? (DONE|FAILED|CANCELLED)$/, label);
  assert.equal(log[0].position, null, `${label}: the first QUEUED has no position`);
  assert.equal(log.filter((e) => TERMINAL.has(e.type)).length, 1, `${label}: one terminal event`);
  const running = log.filter((e) => e.type === 'RUNNING');
  running.forEach((e, i) => {
    assert.equal(e.total, running[0].total, label);
    if (i === 0) assert.equal(e.done, 0, `${label}: RUNNING starts at 0`);
    else assert.equal(e.done, running[i - 1].done! + 1, `${label}: progress steps by one`);
  });
  if (log.at(-1)!.type === 'DONE') {
    assert.ok(running.length > 0, `${label}: DONE after RUNNING`);
    assert.equal(running.at(-1)!.done, running.at(-1)!.total, `${label}: all steps done`);
  }
}

/** What a subscriber got: increasing seq, each event as in the log, ending with the log's terminal event. */
function checkStream(stream: JobEvent[], log: Awaited<ReturnType<typeof fullLog>>, label: string): void {
  for (let i = 1; i < stream.length; i++) assert.ok(stream[i].seq > stream[i - 1].seq, `${label}: seq increases`);
  for (const event of stream)
    assert.equal(event.type, log[event.seq - 1].type, `${label}: event ${event.seq} as logged`);
  assert.equal(stream.filter((e) => TERMINAL.has(e.type)).length, 1, `${label}: one terminal event`);
  assert.equal(stream.at(-1)!.seq, log.length, `${label}: ends with the terminal event`);
}

/** Follows a job in the background; `until` waits for an event. */
function watch(id: string, transport: Transport) {
  const events: JobEvent[] = [];
  const waiters = new Set<() => boolean>();
  const done = client.follow(id, {
    transport,
    onEvent: (event) => {
      events.push(event);
      for (const check of waiters) if (check()) waiters.delete(check);
    },
  });
  done.catch(() => {});
  const until = (predicate: (e: JobEvent) => boolean, what: string, timeoutMs = 30_000) =>
    new Promise<JobEvent>((resolve, reject) => {
      const check = () => {
        const found = events.find(predicate);
        if (found) resolve(found);
        return Boolean(found);
      };
      if (check()) return;
      waiters.add(check);
      setTimeout(
        () => reject(new Error(`job ${id}: no ${what} in 30 s; got ${events.map((e) => e.type).join(' ')}`)),
        timeoutMs,
      ).unref();
    });
  return { events, done, until };
}

async function smallPng(size: number): Promise<Buffer> {
  return sharp(image('astronaut.png')).resize(size, size).png().toBuffer();
}

describe('jobs', () => {
  test('concurrent jobs: events in order, exactly one terminal event each, over SSE and WebSocket', async () => {
    const latent = (channels: number, side: number) => ({
      data: Buffer.from(new Float32Array(channels * side * side).map((_, i) => Math.sin(i / 7)).buffer).toString(
        'base64',
      ),
      shape: [1, channels, side, side],
      dtype: 'FLOAT32' as const,
    });
    const submissions = [
      {
        expect: 'DONE',
        transport: 'sse',
        submit: async () =>
          client.submitEncode({ model: 'taef2', image: { upload: file(await smallPng(128), 'a.png') } }),
      },
      {
        expect: 'DONE',
        transport: 'ws',
        submit: async () =>
          client.submitEncode({
            model: 'taef2',
            image: { upload: file(await smallPng(256), 'b.png') },
            dtype: 'FLOAT16',
          }),
      },
      {
        expect: 'DONE',
        transport: 'ws',
        submit: () =>
          client.submitEncode({
            model: 'taef2',
            image: { upload: file(image('astronaut.png'), 'c.png') },
            delivery: 'URL',
          }),
      },
      {
        expect: 'DONE',
        transport: 'sse',
        submit: () => client.submitDecode({ model: 'taef2', latent: { tensor: latent(32, 16) } }),
      },
      {
        expect: 'INVALID_IMAGE',
        transport: 'ws',
        submit: () =>
          client.submitEncode({
            model: 'taef2',
            image: { base64: Buffer.from('not an image at all').toString('base64') },
          }),
      },
      {
        expect: 'LATENT_CHANNELS_MISMATCH',
        transport: 'sse',
        submit: () => client.submitDecode({ model: 'taef2', latent: { tensor: latent(4, 16) } }),
      },
      {
        expect: 'NOT_FOUND',
        transport: 'ws',
        submit: () =>
          client.submitDecode({
            model: 'taef2',
            latent: { url: `${gateway.url}/v1/latents/00000000-0000-4000-8000-000000000000` },
          }),
      },
    ] as const;
    const runs = await Promise.all(
      submissions.map(async (s) => {
        const job = await s.submit();
        assert.equal(job.status, 'QUEUED');
        return { ...s, job, stream: await client.jobProgress(job.id, s.transport)[Symbol.asyncIterator]() };
      }),
    );
    const streams = await Promise.all(
      runs.map(async (run) => {
        const events: JobEvent[] = [];
        for (let next = await run.stream.next(); !next.done; next = await run.stream.next()) events.push(next.value);
        return events;
      }),
    );
    for (const [i, run] of runs.entries()) {
      const label = `job ${i} (${run.transport}, expects ${run.expect})`;
      const log = await fullLog(run.job.id);
      checkLog(log, label);
      checkStream(streams[i], log, label);
      const end = streams[i].at(-1)!;
      if (run.expect === 'DONE') {
        assert.equal(end.__typename, 'JobDoneEvent', `${label}: ${JSON.stringify(end)}`);
      } else {
        assert.equal(end.__typename, 'JobFailedEvent', label);
        if (end.__typename === 'JobFailedEvent')
          assert.equal(end.error.code, run.expect, `${label}: ${end.error.message}`);
      }
    }
    const done = (i: number) => streams[i].at(-1) as Extract<JobEvent, { __typename: 'JobDoneEvent' }>;
    const small = done(0).result;
    assert.equal(small.__typename, 'EncodeResult');
    if (small.__typename === 'EncodeResult') assert.deepEqual(small.latent.shape, [1, 32, 16, 16]);
    const half = done(1).result;
    if (half.__typename === 'EncodeResult') assert.equal(half.latent.dtype, 'FLOAT16');
    const byUrl = done(2).result;
    if (byUrl.__typename === 'EncodeResult') assert.match(byUrl.latent.url!, /\/v1\/latents\//);
    const decoded = done(3).result;
    assert.equal(decoded.__typename, 'DecodeResult');
    if (decoded.__typename === 'DecodeResult')
      assert.deepEqual([decoded.images[0].width, decoded.images[0].height], [128, 128]);
    // The job query agrees with the stream.
    const snapshot = await client.job(runs[3].job.id);
    assert.equal(snapshot.status, 'DONE');
    assert.equal(snapshot.result?.__typename, 'DecodeResult');
    const failed = await client.job(runs[4].job.id);
    assert.deepEqual([failed.status, failed.error?.code], ['FAILED', 'INVALID_IMAGE']);
    assert.deepEqual(await device().then((d) => [d.reservedBytes, d.queued, d.running]), [0, 0, 0]);
  });

  test('a late subscriber gets the current state first, then every later event', async () => {
    const job = await client.submitEncode({
      model: 'taef2',
      image: { upload: file(image('astronaut-1024.png'), 'big.png') },
    });
    // Wait until the run is a few tiles in.
    let progress = 0;
    for (let i = 0; i < 600 && progress < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      progress = (await client.job(job.id)).progress?.done ?? 0;
    }
    assert.ok(progress >= 3, `the job never got 3 tiles in (at ${progress})`);
    const [sse, ws] = await Promise.all(
      (['sse', 'ws'] as const).map(async (transport) => {
        const events: JobEvent[] = [];
        for await (const event of client.jobProgress(job.id, transport)) events.push(event);
        return events;
      }),
    );
    const log = await fullLog(job.id);
    checkLog(log, 'late job');
    for (const [label, stream] of [
      ['SSE', sse],
      ['WebSocket', ws],
    ] as const) {
      checkStream(stream, log, `late ${label}`);
      // First the state: the route and the progress so far, not the superseded progress events...
      assert.deepEqual(
        stream.slice(0, 3).map((e) => e.type),
        ['QUEUED', 'ROUTED', 'RUNNING'],
        label,
      );
      const first = stream[2];
      assert.ok(
        first.__typename === 'JobRunningEvent' && first.done >= 3,
        `${label}: state first (${JSON.stringify(first)})`,
      );
      // ...then every event after it, none lost.
      assert.deepEqual(
        stream.slice(2).map((e) => e.seq),
        log.slice(first.seq - 1).map((e) => e.seq),
        `${label}: live events`,
      );
      assert.equal(stream.at(-1)!.__typename, 'JobDoneEvent');
    }
    // After the end: the state and the terminal event, then the stream completes.
    const afterEnd: JobEvent[] = [];
    for await (const event of client.jobProgress(job.id)) afterEnd.push(event);
    assert.deepEqual(
      afterEnd.map((e) => e.type),
      ['QUEUED', 'ROUTED', 'RUNNING', 'DONE'],
    );
    assert.deepEqual(
      afterEnd.map((e) => e.seq),
      [1, 2, log.length - 1, log.length],
    );
  });

  test(
    'cancelling frees capacity: a queued job leaves the queue; ' +
      'a running one stops mid-run and the job queued behind it runs',
    async (t) => {
      const big = await client.submitEncode({ model: 'taef2', image: { upload: file(huge, 'huge.png') } });
      const a = watch(big.id, 'sse');
      const routed = (await a.until((e) => e.type === 'ROUTED', 'ROUTED')) as Extract<
        JobEvent,
        { __typename: 'JobRoutedEvent' }
      >;
      assert.equal(routed.route.route, 'TILED');
      await a.until((e) => e.__typename === 'JobRunningEvent' && e.done >= 1, 'first tile');

      const second = await client.submitEncode({
        model: 'taef2',
        image: { upload: file(image('astronaut.png'), 'second.png') },
      });
      const b = watch(second.id, 'ws');
      await b.until((e) => e.__typename === 'JobQueuedEvent' && e.position === 1, 'QUEUED #1');
      const third = await client.submitEncode({
        model: 'taef2',
        image: { upload: file(image('astronaut.png'), 'third.png') },
      });
      const c = watch(third.id, 'sse');
      await c.until((e) => e.__typename === 'JobQueuedEvent' && e.position === 2, 'QUEUED #2');
      let state = await device();
      assert.deepEqual([state.reservedBytes, state.queued, state.running], [routed.route.bytes, 2, 1]);

      // A queued job leaves the ledger's queue; it never runs.
      const cancelledQueued = await client.cancelJob(third.id);
      assert.equal(cancelledQueued.cancelRequested, true);
      assert.equal((await c.done).__typename, 'JobCancelledEvent');
      assert.ok(!c.events.some((e) => e.type === 'RUNNING'), 'the queued job never ran');
      state = await device();
      assert.deepEqual([state.reservedBytes, state.queued], [routed.route.bytes, 1]);

      // The running job stops at the next tile and releases its reservation before its CANCELLED event.
      await client.cancelJob(big.id);
      const end = await a.done;
      assert.equal(end.__typename, 'JobCancelledEvent');
      const lastProgress = a.events.filter((e) => e.__typename === 'JobRunningEvent').at(-1) as Extract<
        JobEvent,
        { __typename: 'JobRunningEvent' }
      >;
      assert.ok(lastProgress.done < lastProgress.total, `stopped mid-run (${lastProgress.done}/${lastProgress.total})`);
      t.diagnostic(`cancelled after ${lastProgress.done}/${lastProgress.total} steps`);
      const bRouted = b.events.find((e) => e.__typename === 'JobRoutedEvent') as Extract<
        JobEvent,
        { __typename: 'JobRoutedEvent' }
      >;
      state = await device();
      assert.ok(
        state.reservedBytes === 0 || state.reservedBytes === bRouted.route.bytes,
        `only the next job may hold memory now (${state.reservedBytes} bytes reserved)`,
      );

      // The job queued behind it is admitted and runs to the end.
      const bEnd = await b.done;
      assert.equal(bEnd.__typename, 'JobDoneEvent');
      assert.ok(b.events.some((e) => e.type === 'RUNNING'));
      state = await device();
      assert.deepEqual([state.reservedBytes, state.queued, state.running], [0, 0, 0]);
      assert.equal((await client.job(big.id)).status, 'CANCELLED');
      assert.equal((await client.job(third.id)).status, 'CANCELLED');
      for (const id of [big.id, second.id, third.id]) checkLog(await fullLog(id), id);
    },
  );

  test('unknown jobs and bad submissions are GraphQL errors with codes', async () => {
    await assert.rejects(client.job('no-such-job'), (e: any) => e.code === 'NOT_FOUND');
    await assert.rejects(client.cancelJob('no-such-job'), (e: any) => e.code === 'NOT_FOUND');
    for (const transport of ['sse', 'ws'] as const) {
      await assert.rejects(
        (async () => {
          for await (const _ of client.jobProgress('no-such-job', transport));
        })(),
        (e: any) => e.code === 'NOT_FOUND',
        transport,
      );
    }
    await assert.rejects(
      client.submitEncode({ model: 'nope', image: { base64: 'AAAA' } }),
      (e: any) => e.code === 'UNKNOWN_MODEL',
    );
    await assert.rejects(
      client.submitDecode({ model: 'taesana', latent: { url: 'x' } }),
      (e: any) => e.code === 'UNSUPPORTED_OPERATION',
    );
    await assert.rejects(
      client.submitEncode({ model: 'taef2', image: {} as ImageSource }),
      (e: any) => e.code === 'BAD_REQUEST',
    );
  });
});
