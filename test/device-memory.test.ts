import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deviceMemory, parseNvidiaSmiTotal } from '../src/gpu/device-memory.ts';

test('nvidia-smi memory.total in MiB becomes bytes, per device', () => {
  assert.equal(parseNvidiaSmiTotal('81559\n'), 81559 * 2 ** 20);
  assert.equal(parseNvidiaSmiTotal('24564\n10240\n', 1), 10240 * 2 ** 20);
  assert.equal(parseNvidiaSmiTotal('[N/A]\n'), null);
  assert.equal(parseNvidiaSmiTotal(''), null);
});

test('the CPU device uses the configured budget and says so', async () => {
  assert.deepEqual(await deviceMemory('cpu', 123456789), { bytes: 123456789, source: 'DEVICE_MEMORY (CPU)' });
});
