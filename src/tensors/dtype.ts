/**
 * Tensor element types, the one list of them, and their byte codecs (always little-endian).
 * Latents travel and networks compute in the float types; uint8 is decoded pixels.
 */
export const FLOAT_DTYPES = ['float32', 'float16', 'bfloat16'] as const;
export type FloatDType = (typeof FLOAT_DTYPES)[number];

export const DTYPES = [...FLOAT_DTYPES, 'uint8'] as const;
export type DType = (typeof DTYPES)[number];

export const BYTES_PER_ELEMENT: Record<DType, number> = { float32: 4, float16: 2, bfloat16: 2, uint8: 1 };

export function isDType(value: string): value is DType {
  return (DTYPES as readonly string[]).includes(value);
}

export function isFloatDType(value: string): value is FloatDType {
  return (FLOAT_DTYPES as readonly string[]).includes(value);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half, round-to-nearest-even, with overflow to ±Inf and subnormals. */
export function floatToHalfBits(value: number): number {
  f32[0] = value;
  return halfFromFloatBits(u32[0]);
}

/** The same, from the float32's bit pattern. */
function halfFromFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Every half's float, made on first use (256 KiB): decoding is then one lookup per value. */
let halfTable: Float32Array | null = null;
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) halfTable[h] = halfBitsToFloat(h);
  }
  return halfTable;
}

export function floatToBfloat16Bits(value: number): number {
  f32[0] = value;
  return bfloat16FromFloatBits(u32[0]);
}

function bfloat16FromFloatBits(x: number): number {
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40; // keep NaN a NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bfloat16BitsToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Encodes float32 values into little-endian bytes of the given dtype. uint8 values must already be
 * in 0..255. float32 on a little-endian host is a view of `values` (its memory already is the wire
 * format), not a copy.
 */
export function encodeTensor(values: Float32Array, dtype: DType): Buffer {
  if (LITTLE_ENDIAN_HOST && dtype !== 'uint8') {
    if (dtype === 'float32') return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    // Work on the bit patterns (as int32: small integers are fast); a float32 array is 4-byte aligned.
    const bits = new Int32Array(values.buffer, values.byteOffset, values.length);
    const out = new Uint16Array(values.length);
    if (dtype === 'float16') for (let i = 0; i < bits.length; i++) out[i] = halfFromFloatBits(bits[i]);
    else for (let i = 0; i < bits.length; i++) out[i] = bfloat16FromFloatBits(bits[i]);
    return Buffer.from(out.buffer);
  }
  const out = Buffer.allocUnsafe(values.length * BYTES_PER_ELEMENT[dtype]);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i], i * 4);
      break;
    case 'float16':
      for (let i = 0; i < values.length; i++) out.writeUInt16LE(floatToHalfBits(values[i]), i * 2);
      break;
    case 'bfloat16':
      for (let i = 0; i < values.length; i++) out.writeUInt16LE(floatToBfloat16Bits(values[i]), i * 2);
      break;
    case 'uint8':
      for (let i = 0; i < values.length; i++) out[i] = values[i];
      break;
  }
  return out;
}

/** Decodes little-endian bytes of the given dtype into float32 values (a new array). The caller checks the length. */
export function decodeTensor(bytes: Uint8Array, dtype: DType): Float32Array {
  const count = bytes.length / BYTES_PER_ELEMENT[dtype];
  if (LITTLE_ENDIAN_HOST && dtype === 'float32')
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN_HOST && dtype !== 'uint8') {
    // 16-bit values in place when aligned, else from one aligned copy.
    const aligned = bytes.byteOffset % 2 === 0 ? bytes : new Uint8Array(bytes);
    const halves = new Uint16Array(aligned.buffer, aligned.byteOffset, count);
    if (dtype === 'float16') {
      const table = halfToFloatTable();
      for (let i = 0; i < count; i++) out[i] = table[halves[i]];
    } else {
      const wide = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) wide[i] = halves[i] << 16;
    }
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'float32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'float16':
      for (let i = 0; i < count; i++) out[i] = halfBitsToFloat(view.getUint16(i * 2, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < count; i++) out[i] = bfloat16BitsToFloat(view.getUint16(i * 2, true));
      break;
    case 'uint8':
      for (let i = 0; i < count; i++) out[i] = bytes[i];
      break;
  }
  return out;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
