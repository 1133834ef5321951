import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError } from '../src/errors.js';
import { CapacityLedger, type Reservation, withReservation } from '../src/routing/ledger.js';

function isCode(code: string) {
  return (e: unknown) => {
    assert.ok(e instanceof GatewayError, `expected GatewayError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const flush = () => new Promise<void>((r) => setImmediate(r));

test('headroom is subtracted from the budget; snapshot reports it', () => {
  const ledger = new CapacityLedger({ budgetBytes: 1000, headroomBytes: 200, maxQueueLength: 4, name: 'gpu0' });
  const r = ledger.tryReserve(300);
  assert.ok(r);
  assert.deepEqual(ledger.snapshot(), {
    name: 'gpu0',
    budgetBytes: 800,
    headroomBytes: 200,
    reservedBytes: 300,
    freeBytes: 500,
    queued: 0,
    queuedBytes: 0,
    running: 1,
  });
  assert.equal(ledger.tryReserve(501), null);
  r.release();
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('concurrent load: held bytes never exceed the budget and every request completes', async () => {
  const budget = 1000;
  const ledger = new CapacityLedger({ budgetBytes: budget, maxQueueLength: 1000 });
  const rand = rng(42);
  let held = 0;
  let maxHeld = 0;
  let completed = 0;
  const N = 200;
  const jobs: Promise<void>[] = [];
  for (let i = 0; i < N; i++) {
    const bytes = 1 + Math.floor(rand() * budget * 0.6);
    const holdMs = Math.floor(rand() * 4);
    jobs.push(
      withReservation(ledger, { bytes, label: `job${i}` }, async (r) => {
        assert.equal(r.bytes, bytes);
        held += bytes;
        maxHeld = Math.max(maxHeld, held);
        assert.ok(held <= budget, `held ${held} > budget ${budget}`);
        assert.ok(ledger.snapshot().reservedBytes <= budget);
        await sleep(holdMs);
        held -= bytes;
        completed++;
      }),
    );
    // Stagger some arrivals so the queue both grows and drains.
    if (rand() < 0.2) await sleep(0);
  }
  await Promise.all(jobs);
  assert.equal(completed, N);
  assert.equal(held, 0);
  assert.ok(maxHeld > budget / 2, 'load actually contended for the budget');
  assert.deepEqual(
    { ...ledger.snapshot(), name: undefined },
    {
      name: undefined,
      budgetBytes: budget,
      headroomBytes: 0,
      reservedBytes: 0,
      freeBytes: budget,
      queued: 0,
      queuedBytes: 0,
      running: 0,
    },
  );
});

test('queue full gives BUSY with a positive retryAfterSeconds', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 2 });
  const a = await ledger.reserve({ bytes: 100, expectedSeconds: 3 });
  const w1 = ledger.reserve({ bytes: 50, expectedSeconds: 2 });
  const w2 = ledger.reserve({ bytes: 60 });
  assert.equal(ledger.snapshot().queued, 2);
  assert.equal(ledger.snapshot().queuedBytes, 110);
  await assert.rejects(ledger.reserve({ bytes: 10 }), (e: unknown) => {
    isCode('BUSY')(e);
    const s = (e as GatewayError).details.retryAfterSeconds;
    assert.equal(typeof s, 'number');
    assert.ok((s as number) > 0);
    return true;
  });
  // Queue full also applies to a tiny request (FIFO: it can't bypass the waiters).
  assert.equal(ledger.tryReserve(0), null);
  a.release();
  const r1 = await w1;
  r1.release();
  (await w2).release();
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('maxQueueLength 0 never queues', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 10, maxQueueLength: 0 });
  const a = await ledger.reserve({ bytes: 10 });
  await assert.rejects(ledger.reserve({ bytes: 1 }), isCode('BUSY'));
  a.release();
  (await ledger.reserve({ bytes: 1 })).release();
});

test('a big request behind a stream of small ones is not starved', async () => {
  const budget = 100;
  const ledger = new CapacityLedger({ budgetBytes: budget, maxQueueLength: 1000 });
  const order: string[] = [];
  let bigAdmitted = false;
  let stop = false;
  let smallAdmittedAfterBigQueued = -1;
  let smallAdmissions = 0;

  // Stream of small requests that keep the device partially busy, with overlap.
  const small = async (i: number) => {
    await withReservation(ledger, { bytes: 30, label: `s${i}` }, async () => {
      smallAdmissions++;
      order.push(`s${i}`);
      await sleep(1);
    });
  };
  const stream = (async () => {
    const inflight: Promise<void>[] = [];
    for (let i = 0; !stop && i < 500; i++) {
      inflight.push(small(i));
      if (i % 3 === 2) await sleep(0);
    }
    await Promise.all(inflight);
  })();

  await sleep(3);
  const before = smallAdmissions;
  const big = withReservation(ledger, { bytes: 90, label: 'big' }, async () => {
    bigAdmitted = true;
    smallAdmittedAfterBigQueued = smallAdmissions - before;
    order.push('big');
    assert.ok(ledger.snapshot().reservedBytes <= budget);
  });
  const queuedAtBig = ledger.snapshot().queued;
  await big;
  stop = true;
  await stream;
  assert.ok(bigAdmitted);
  // Strict FIFO: only the waiters already queued (plus those running) can go before it.
  assert.ok(
    smallAdmittedAfterBigQueued <= queuedAtBig,
    `big waited for ${smallAdmittedAfterBigQueued} small admissions, queue ahead was ${queuedAtBig}`,
  );
});

test('FIFO: the head blocks later arrivals that would fit', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10 });
  const a = await ledger.reserve({ bytes: 60 });
  const big = ledger.reserve({ bytes: 80 });
  let smallDone = false;
  const small = ledger.reserve({ bytes: 10 }).then((r) => {
    smallDone = true;
    return r;
  });
  assert.equal(ledger.tryReserve(10), null);
  await flush();
  assert.equal(smallDone, false, 'small bypassed the waiting big request');
  a.release();
  const b = await big;
  const s = await small;
  assert.equal(ledger.snapshot().reservedBytes, 90);
  b.release();
  s.release();
});

test('abort while queued rejects with CANCELLED and frees the queue slot', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 1 });
  const a = await ledger.reserve({ bytes: 100 });
  const ac = new AbortController();
  const waiting = ledger.reserve({ bytes: 50, label: 'victim', signal: ac.signal });
  await assert.rejects(ledger.reserve({ bytes: 50 }), isCode('BUSY'));
  ac.abort();
  await assert.rejects(waiting, isCode('CANCELLED'));
  assert.equal(ledger.snapshot().queued, 0);
  // The slot is free again.
  const next = ledger.reserve({ bytes: 50 });
  assert.equal(ledger.snapshot().queued, 1);
  a.release();
  const r = await next;
  assert.equal(ledger.snapshot().reservedBytes, 50);
  r.release();
  // Already-aborted signal is rejected immediately.
  await assert.rejects(ledger.reserve({ bytes: 1, signal: AbortSignal.abort() }), isCode('CANCELLED'));
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('cancelling the head admits waiters behind it that fit', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10 });
  const a = await ledger.reserve({ bytes: 50 });
  const ac = new AbortController();
  const head = ledger.reserve({ bytes: 80, signal: ac.signal });
  const behind = ledger.reserve({ bytes: 40 });
  ac.abort();
  await assert.rejects(head, isCode('CANCELLED'));
  const r = await behind;
  assert.equal(ledger.snapshot().reservedBytes, 90);
  r.release();
  a.release();
});

test('double release is harmless and does not free bytes twice', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10 });
  const a = await ledger.reserve({ bytes: 60 });
  const b = await ledger.reserve({ bytes: 40 });
  a.release();
  a.release();
  assert.equal(a.released, true);
  assert.equal(ledger.snapshot().reservedBytes, 40);
  assert.equal(ledger.snapshot().running, 1);
  // Had bytes been freed twice this 100-byte request would be admitted while b still holds 40.
  assert.equal(ledger.tryReserve(100), null);
  b.release();
  b.release();
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('withReservation releases when fn throws', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10 });
  await assert.rejects(
    withReservation(ledger, { bytes: 70 }, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('over-budget and invalid requests are rejected immediately', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 1000, headroomBytes: 100, maxQueueLength: 10 });
  await assert.rejects(ledger.reserve({ bytes: 901 }), isCode('DOES_NOT_FIT'));
  assert.throws(() => ledger.tryReserve(901), isCode('DOES_NOT_FIT'));
  await assert.rejects(ledger.reserve({ bytes: -1 }), isCode('BAD_REQUEST'));
  await assert.rejects(ledger.reserve({ bytes: Number.NaN }), isCode('BAD_REQUEST'));
  assert.equal(ledger.snapshot().queued, 0);
  (await ledger.reserve({ bytes: 900 })).release();
  assert.equal(ledger.estimatedWaitSeconds(901), Infinity);
});

test('queue positions are reported and decrease to 1', async () => {
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10 });
  const held: Reservation[] = [];
  for (let i = 0; i < 4; i++) held.push(await ledger.reserve({ bytes: 25 }));
  const positions: number[][] = [[], [], []];
  const waiters = positions.map((p, i) => ledger.reserve({ bytes: 25, label: `w${i}`, onQueued: (n) => p.push(n) }));
  assert.deepEqual(positions, [[1], [2], [3]]);
  held[0].release();
  const w0 = await waiters[0];
  assert.deepEqual(positions, [[1], [2, 1], [3, 2]]);
  held[1].release();
  const w1 = await waiters[1];
  assert.deepEqual(positions, [[1], [2, 1], [3, 2, 1]]);
  held[2].release();
  const w2 = await waiters[2];
  for (const r of [held[3], w0, w1, w2]) r.release();
  assert.equal(ledger.snapshot().reservedBytes, 0);
});

test('estimatedWaitSeconds follows expected run times of running and queued work', async () => {
  let nowMs = 0;
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 10, now: () => nowMs });
  assert.equal(ledger.estimatedWaitSeconds(100), 0);
  const a = await ledger.reserve({ bytes: 60, expectedSeconds: 4 });
  const b = await ledger.reserve({ bytes: 40, expectedSeconds: 2 });
  assert.equal(ledger.estimatedWaitSeconds(30), 2); // b ends at 2 s
  assert.equal(ledger.estimatedWaitSeconds(50), 4); // needs a too
  nowMs = 1000;
  assert.equal(ledger.estimatedWaitSeconds(30), 1);
  // Queued 100-byte waiter starts at 3 s (after a) and runs 5 s; a new request waits for it.
  const q = ledger.reserve({ bytes: 100, expectedSeconds: 5 });
  assert.equal(ledger.estimatedWaitSeconds(10), 8);
  // Overdue reservations are assumed to end now.
  nowMs = 10_000;
  assert.equal(ledger.estimatedWaitSeconds(10), 5);
  // BUSY's retryAfter is derived from the same estimate.
  const full = new CapacityLedger({ budgetBytes: 10, maxQueueLength: 0, now: () => 0 });
  const f = full.tryReserve(10, { expectedSeconds: 7 })!;
  await assert.rejects(full.reserve({ bytes: 5 }), (e: unknown) => {
    isCode('BUSY')(e);
    assert.equal((e as GatewayError).details.retryAfterSeconds, 7);
    return true;
  });
  f.release();
  a.release();
  b.release();
  (await q).release();
});

test('BUSY retryAfter is the sum of the run times ahead until the queue has room, not compounded', async () => {
  const nowMs = 0;
  const ledger = new CapacityLedger({ budgetBytes: 100, maxQueueLength: 40, now: () => nowMs });
  const running = ledger.tryReserve(100, { expectedSeconds: 2 })!;
  // 40 waiters of 2 s each, one at a time: the k-th starts at 2k s.
  const waiters = Array.from({ length: 40 }, () =>
    ledger.reserve({ bytes: 100, expectedSeconds: 2 }).catch(() => null),
  );
  assert.equal(ledger.estimatedWaitSeconds(100), 82);
  // Queue full: a retry is taken once the head starts (2 s), whatever the length of the queue.
  await assert.rejects(ledger.reserve({ bytes: 100 }), (e: unknown) => {
    isCode('BUSY')(e);
    assert.equal((e as GatewayError).details.retryAfterSeconds, 2);
    return true;
  });
  running.release();
  for (const w of waiters) (await w)?.release();
});
