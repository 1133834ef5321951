import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bfloat16BitsToFloat,
  decodeTensor,
  encodeTensor,
  floatToBfloat16Bits,
  floatToHalfBits,
  halfBitsToFloat,
} from '../src/tensors/dtype.ts';
import { parseSafetensors, SafetensorsError, serializeSafetensors } from '../src/tensors/safetensors.ts';

test('float16 encodes known values bit-exactly, with rounding to nearest even', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001],
    [6.103515625e-5, 0x0400],
    [0.333251953125, 0x3555],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
  ];
  for (const [value, bits] of cases) assert.equal(floatToHalfBits(value), bits, `${value}`);
  assert.ok(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN))));
  for (let bits = 0; bits < 0x7c00; bits += 7) assert.equal(floatToHalfBits(halfBitsToFloat(bits)), bits);
});

test('array codecs agree with the per-value conversions, from aligned and unaligned bytes', () => {
  const values = new Float32Array(4096);
  const bits = new Uint32Array(values.buffer);
  // Normal, subnormal, overflowing, infinite and NaN floats of either sign.
  for (let i = 0; i < bits.length; i++) bits[i] = (Math.imul(i, 0x9e3779b1) ^ (i << 7)) >>> 0;
  values.set([0, -0, 1, 65504, 65520, 2 ** -25, Infinity, -Infinity], 0);
  for (const [dtype, toBits, fromBits] of [
    ['float16', floatToHalfBits, halfBitsToFloat],
    ['bfloat16', floatToBfloat16Bits, bfloat16BitsToFloat],
  ] as const) {
    const bytes = encodeTensor(values, dtype);
    const halves = new Uint16Array(bytes.buffer, bytes.byteOffset, values.length);
    for (let i = 0; i < values.length; i++) assert.equal(halves[i], toBits(values[i]), `${dtype} ${values[i]}`);
    const expected = Float32Array.from(halves, fromBits);
    assert.deepEqual(decodeTensor(bytes, dtype), expected);
    const unaligned = Buffer.concat([Buffer.from([1]), bytes]).subarray(1);
    assert.deepEqual(decodeTensor(unaligned, dtype), expected);
  }
  const unaligned = Buffer.concat([Buffer.from([1]), encodeTensor(values, 'float32')]).subarray(1);
  assert.deepEqual(new Uint32Array(decodeTensor(unaligned, 'float32').buffer), bits);
});

test('bfloat16 keeps the float32 exponent and rounds the mantissa', () => {
  assert.equal(floatToBfloat16Bits(1), 0x3f80);
  assert.equal(floatToBfloat16Bits(-3.5), 0xc060);
  assert.equal(bfloat16BitsToFloat(0x4049), 3.140625);
  assert.equal(floatToBfloat16Bits(3e38), 0x7f62);
  assert.ok(Number.isNaN(bfloat16BitsToFloat(floatToBfloat16Bits(NaN))));
});

test('tensor codecs round-trip every dtype, little-endian', () => {
  const values = new Float32Array([0, 1.5, -2.25, 100, 255]);
  for (const dtype of ['float32', 'float16', 'bfloat16'] as const)
    assert.deepEqual([...decodeTensor(encodeTensor(values, dtype), dtype)], [...values]);
  const bytes = new Float32Array([0, 1, 128, 255]);
  assert.deepEqual([...decodeTensor(encodeTensor(bytes, 'uint8'), 'uint8')], [...bytes]);
  assert.deepEqual([...encodeTensor(new Float32Array([1]), 'float32')], [0, 0, 0x80, 0x3f]);
  assert.deepEqual([...encodeTensor(new Float32Array([1]), 'float16')], [0x00, 0x3c]);
});

test('safetensors: write, read back, and refuse malformed files', () => {
  const file = serializeSafetensors(
    {
      a: { dtype: 'float16', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      b: { dtype: 'uint8', shape: [3], data: new Uint8Array([7, 8, 9]) },
    },
    { note: 'x' },
  );
  const headerLength = Number(file.readBigUInt64LE(0));
  assert.equal((8 + headerLength) % 8, 0);
  const parsed = parseSafetensors(file);
  assert.deepEqual(parsed.metadata, { note: 'x' });
  assert.deepEqual([...decodeTensor(parsed.tensors.get('a')!.bytes, 'float16')], [1, 2, 3, 4]);
  assert.deepEqual([...parsed.tensors.get('b')!.bytes], [7, 8, 9]);
  assert.throws(() => parseSafetensors(file.subarray(0, file.length - 1)), SafetensorsError);
  assert.throws(() => parseSafetensors(new Uint8Array(4)), SafetensorsError);
  assert.throws(
    () => serializeSafetensors({ a: { dtype: 'float32', shape: [3], data: new Uint8Array(4) } }),
    /4 bytes do not match/,
  );
});
