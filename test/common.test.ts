/** The small shared helpers: expiring entries with tombstones, the moving average, size-limited bodies. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ewma } from '../src/common/ewma.ts';
import { ExpiringMap } from '../src/common/expiring-map.ts';
import { readLimitedBody } from '../src/protocol/body.ts';
import { MemoryResultStore } from '../src/storage/result-store.ts';

describe('ExpiringMap', () => {
  test('found until it expires, then expired for one more TTL, then unknown', () => {
    let now = 0;
    const map = new ExpiringMap<{ until: number | null }>(
      1000,
      (v) => v.until,
      () => now,
    );
    map.set('a', { until: 1000 });
    map.set('forever', { until: null });
    assert.equal(map.lookup('a').status, 'found');
    now = 999;
    assert.equal(map.lookup('a').status, 'found');
    now = 1000;
    assert.equal(map.lookup('a').status, 'expired');
    now = 1999;
    assert.equal(map.lookup('a').status, 'expired');
    now = 2000;
    assert.equal(map.lookup('a').status, 'unknown');
    assert.deepEqual(map.lookup('forever'), { status: 'found', value: { until: null } });
    assert.deepEqual([...map.values()], [{ until: null }]);
    map.close();
  });

  test('the memory result store keeps results for the TTL', async () => {
    let now = 5000;
    const store = new MemoryResultStore(2, () => now);
    const { id, expiresAt } = await store.put({ kind: 'image', bytes: new Uint8Array([1]), contentType: 'image/png' });
    assert.equal(expiresAt, 7000);
    assert.equal((await store.get(id)).status, 'found');
    now = 7000;
    assert.equal((await store.get(id)).status, 'expired');
    now = 9000;
    assert.equal((await store.get(id)).status, 'unknown');
    await store.close();
  });
});

test('ewma: the first sample as it is, then each new one weighted', () => {
  assert.equal(ewma(undefined, 4), 4);
  assert.equal(ewma(null, 4), 4);
  assert.equal(ewma(10, 20, 0.3), 13);
  assert.equal(ewma(10, 20), 13);
});

describe('readLimitedBody', () => {
  const tooLarge = (bytes: number | null) => new RangeError(bytes === null ? 'over' : `declared ${bytes}`);
  async function* chunks(...sizes: number[]) {
    for (const size of sizes) yield new Uint8Array(size).fill(size);
  }

  test('reads a body up to the limit, chunk by chunk or from a web stream', async () => {
    const body = await readLimitedBody(chunks(3, 2), 5, 5, tooLarge);
    assert.deepEqual([...body], [3, 3, 3, 2, 2]);
    const web = new Response(new Uint8Array([1, 2, 3])).body as unknown as AsyncIterable<Uint8Array>;
    assert.deepEqual([...(await readLimitedBody(web, 3, null, tooLarge))], [1, 2, 3]);
    assert.equal((await readLimitedBody(null, 0, null, tooLarge)).length, 0);
  });

  test('refuses a declared length over the limit before reading, and a body that passes it while reading', async () => {
    let read = false;
    async function* untouched() {
      read = true;
      yield new Uint8Array(1);
    }
    await assert.rejects(readLimitedBody(untouched(), 5, 6, tooLarge), /declared 6/);
    assert.equal(read, false);
    // A body longer than it declared (or declaring nothing) stops at the limit.
    await assert.rejects(readLimitedBody(chunks(3, 3), 5, 4, tooLarge), /over/);
    await assert.rejects(readLimitedBody(chunks(3, 3), 5, null, tooLarge), /over/);
  });
});
