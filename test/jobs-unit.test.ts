/** The job model without a server: event log, subscriptions, cancellation and the TTL. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError, throwIfCancelled } from '../src/errors.ts';
import { compactLog, type JobEvent, type JobResult } from '../src/jobs/events.ts';
import { JobManager } from '../src/jobs/manager.ts';
import type { ExecuteHooks, Plan } from '../src/routing/router.ts';

const PLAN = { route: 'TILED', bytes: 1 } as unknown as Plan;
const RESULT = { latent: {} } as unknown as JobResult;

async function collect(iterable: AsyncIterable<JobEvent>): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

/** A run driven step by step from the test. */
function steppedRun() {
  let hooks: ExecuteHooks | undefined;
  let settle: { resolve: (r: JobResult) => void; reject: (e: unknown) => void } | undefined;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const run = (h: ExecuteHooks) =>
    new Promise<JobResult>((resolve, reject) => {
      hooks = h;
      settle = { resolve, reject };
      markStarted();
    });
  return {
    run,
    started,
    hooks: () => hooks!,
    finish: (r: JobResult) => settle!.resolve(r),
    fail: (e: unknown) => settle!.reject(e),
  };
}

describe('job events', () => {
  test('a subscriber from the start sees every event in order, ending with exactly one terminal event', async () => {
    const jobs = new JobManager(60);
    const step = steppedRun();
    const job = jobs.submit('encode', 'taef2', step.run);
    const seen = collect(job.subscribe());
    await step.started;
    const h = step.hooks();
    h.onRouted!(PLAN);
    h.onQueued!(2);
    h.onQueued!(1);
    h.onStarted!(3);
    for (let i = 1; i <= 3; i++) h.onProgress!(i, 3);
    step.finish(RESULT);
    const events = await seen;
    assert.deepEqual(
      events.map((e) => e.type),
      ['QUEUED', 'ROUTED', 'QUEUED', 'QUEUED', 'RUNNING', 'RUNNING', 'RUNNING', 'RUNNING', 'DONE'],
    );
    assert.deepEqual(
      events.map((e) => e.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(job.status, 'DONE');
    assert.equal(job.result, RESULT);
    // Nothing is recorded after the terminal event.
    h.onProgress!(3, 3);
    assert.equal(job.events.length, 9);
    jobs.close();
  });

  test('a late subscriber gets the current state first (compacted log), then the live events', async () => {
    const jobs = new JobManager(60);
    const step = steppedRun();
    const job = jobs.submit('encode', 'taef2', step.run);
    await step.started;
    const h = step.hooks();
    h.onRouted!(PLAN);
    h.onQueued!(1);
    h.onStarted!(4);
    h.onProgress!(1, 4);
    h.onProgress!(2, 4);
    const late = job.subscribe();
    const first = await late.next();
    assert.equal(first.value!.type, 'ROUTED');
    const second = await late.next();
    assert.deepEqual([second.value!.type, (second.value as any).position], ['QUEUED', 1]);
    const third = await late.next();
    assert.deepEqual([third.value!.type, (third.value as any).done], ['RUNNING', 2]);
    h.onProgress!(3, 4);
    assert.equal((await late.next()).value!.seq, 7);
    step.fail(new GatewayError('INVALID_IMAGE', 'bad'));
    const end = await late.next();
    assert.equal(end.value!.type, 'FAILED');
    assert.deepEqual((end.value as any).error, { code: 'INVALID_IMAGE', message: 'bad', retryAfterSeconds: null });
    assert.equal((await late.next()).done, true);
    // After the end, a subscriber gets the state and the terminal event, and the stream ends.
    const after = await collect(job.subscribe());
    assert.deepEqual(
      after.map((e) => e.type),
      ['ROUTED', 'QUEUED', 'RUNNING', 'FAILED'],
    );
    assert.deepEqual(compactLog(job.events), after);
    jobs.close();
  });

  test('cancel aborts the run; the CANCELLED event comes when the run has stopped, once', async () => {
    const jobs = new JobManager(60);
    const step = steppedRun();
    const job = jobs.submit('decode', 'taef2', step.run);
    const seen = collect(job.subscribe());
    await step.started;
    step.hooks().onStarted!(5);
    assert.equal(jobs.cancel(job.id), job);
    assert.equal(step.hooks().signal!.aborted, true);
    assert.equal(job.status, 'RUNNING', 'still running until the run stops');
    assert.equal(job.cancelRequested, true);
    step.fail(new GatewayError('CANCELLED', 'the run was cancelled between tiles'));
    const events = await seen;
    assert.deepEqual(
      events.map((e) => e.type),
      ['QUEUED', 'RUNNING', 'CANCELLED'],
    );
    assert.equal(job.status, 'CANCELLED');
    // Cancelling a finished job changes nothing.
    jobs.cancel(job.id);
    assert.equal(job.events.length, 3);
    jobs.close();
  });

  test('cancel aborts with a typed CANCELLED reason, which a run throws as it is', async () => {
    const jobs = new JobManager(60);
    const step = steppedRun();
    const job = jobs.submit('encode', 'taef2', step.run);
    const seen = collect(job.subscribe());
    await step.started;
    jobs.cancel(job.id);
    const signal = step.hooks().signal!;
    assert.throws(
      () => throwIfCancelled(signal, 'unused'),
      (e: unknown) => e === signal.reason && e instanceof GatewayError && e.code === 'CANCELLED',
    );
    step.fail(signal.reason);
    const end = (await seen).at(-1)!;
    assert.deepEqual([end.type, (end as any).reason], ['CANCELLED', (signal.reason as GatewayError).message]);
    jobs.close();
  });

  test('an unsubscribing client is removed at once', async () => {
    const jobs = new JobManager(60);
    const step = steppedRun();
    const job = jobs.submit('encode', 'taef2', step.run);
    const sub = job.subscribe();
    assert.equal((await sub.next()).value!.type, 'QUEUED');
    await sub.return!();
    await step.started;
    step.hooks().onRouted!(PLAN);
    assert.equal((await sub.next()).done, true);
    step.finish(RESULT);
    jobs.close();
  });

  test('an unexpected error fails the job as INTERNAL without leaking its message', async () => {
    const jobs = new JobManager(60);
    const originalError = console.error;
    console.error = () => {};
    try {
      const job = jobs.submit('encode', 'taef2', async () => {
        throw new Error('secret path /etc/x');
      });
      const events = await collect(job.subscribe());
      const end = events.at(-1)!;
      assert.equal(end.type, 'FAILED');
      assert.equal((end as any).error.code, 'INTERNAL');
      assert.doesNotMatch((end as any).error.message, /secret/);
    } finally {
      console.error = originalError;
      jobs.close();
    }
  });
});

describe('job TTL', () => {
  test('finished jobs are kept for the TTL, then EXPIRED, then unknown', async () => {
    let now = 1_000_000;
    const jobs = new JobManager(10, () => now);
    const job = jobs.submit('encode', 'taef2', async () => RESULT);
    await collect(job.subscribe());
    assert.equal(job.status, 'DONE');
    assert.equal(job.expiresAt!.getTime(), now + 10_000);
    now += 9_999;
    assert.equal(jobs.get(job.id), job);
    now += 1;
    assert.throws(
      () => jobs.get(job.id),
      (e: GatewayError) => e.code === 'EXPIRED',
    );
    now += 10_000;
    assert.throws(
      () => jobs.get(job.id),
      (e: GatewayError) => e.code === 'NOT_FOUND',
    );
    jobs.close();
  });

  test('a running job never expires', async () => {
    let now = 0;
    const jobs = new JobManager(1, () => now);
    const step = steppedRun();
    const job = jobs.submit('encode', 'taef2', step.run);
    await step.started;
    now += 3_600_000;
    assert.equal(jobs.get(job.id), job);
    step.finish(RESULT);
    await collect(job.subscribe());
    now += 1_000;
    assert.throws(
      () => jobs.get(job.id),
      (e: GatewayError) => e.code === 'EXPIRED',
    );
    jobs.close();
  });
});
