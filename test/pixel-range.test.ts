import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  convertRange,
  type PixelRange,
  planarToRgb,
  planarToRgbExact,
  rgbToPlanar,
  toUnitClamped,
} from '../src/tensors/pixel-range.ts';

const RANGES: PixelRange[] = ['zero-one', 'minus-one-one'];
// Every 8-bit value once per channel, on a 16x16 image: pixel i is (i, 255 - i, i * 7 mod 256).
const WIDTH = 16;
const HEIGHT = 16;
const RGB = new Uint8Array(3 * WIDTH * HEIGHT).map((_, k) => {
  const i = Math.floor(k / 3);
  return [i, 255 - i, (i * 7) % 256][k % 3];
});

test('8-bit → planar float matches u / 255 and u / 127.5 - 1 in float32, channel by channel', () => {
  const plane = WIDTH * HEIGHT;
  for (const range of RANGES) {
    const planar = rgbToPlanar(RGB, WIDTH, HEIGHT, range);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        const u = RGB[i * 3 + c];
        assert.equal(planar[c * plane + i], Math.fround(range === 'zero-one' ? u / 255 : u / 127.5 - 1));
      }
    }
    // The same from the bytes as floats (a decoded uint8 tensor), and into part of a larger array.
    const batch = new Float32Array(2 * 3 * plane);
    rgbToPlanar(Float32Array.from(RGB), WIDTH, HEIGHT, range, batch.subarray(3 * plane));
    assert.deepEqual(batch.subarray(3 * plane), planar);
  }
});

test('planar float → 8-bit gives the bytes back, clamps out-of-range values and rounds', () => {
  for (const range of RANGES) {
    const planar = rgbToPlanar(RGB, WIDTH, HEIGHT, range);
    assert.deepEqual(planarToRgb(planar, WIDTH, HEIGHT, range), RGB);
    assert.deepEqual(planarToRgbExact(planar, WIDTH, HEIGHT, range), RGB);
    // [value in [0, 1], byte]: clamped below and above, 127.5 rounds up, 0.4 and 254.4 round down, NaN is 0.
    const cases: [number, number][] = [
      [-5, 0],
      [2, 255],
      [0.5, 128],
      [0.4 / 255, 0],
      [1 - 0.6 / 255, 254],
      [Number.NaN, 0],
    ];
    const inRange = cases.map(([v]) => (range === 'zero-one' ? v : v * 2 - 1));
    const odd = new Float32Array([...inRange, ...inRange, ...inRange]);
    const rgb = planarToRgb(odd, cases.length, 1, range);
    assert.deepEqual(
      [...rgb],
      cases.flatMap(([, byte]) => [byte, byte, byte]),
    );
    assert.equal(planarToRgbExact(odd, cases.length, 1, range), null);
  }
});

test('float ranges convert both ways exactly, and clamp to [0, 1]', () => {
  const values = new Float32Array([-1, -0.25, 0, 0.5, 1, 1.5]);
  assert.equal(convertRange(values, 'zero-one', 'zero-one'), values);
  assert.deepEqual([...convertRange(values, 'minus-one-one', 'zero-one')], [0, 0.375, 0.5, 0.75, 1, 1.25]);
  assert.deepEqual([...convertRange(values, 'zero-one', 'minus-one-one')], [-3, -1.5, -1, 0, 1, 2]);
  const back = convertRange(convertRange(values, 'minus-one-one', 'zero-one'), 'zero-one', 'minus-one-one');
  assert.deepEqual(back, values);
  assert.deepEqual([...toUnitClamped(values, 'zero-one')], [0, 0, 0, 0.5, 1, 1]);
  assert.deepEqual([...toUnitClamped(values, 'minus-one-one')], [0, 0.375, 0.5, 0.75, 1, 1]);
});
