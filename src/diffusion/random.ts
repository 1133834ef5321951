/**
 * A random generator that reproduces `torch.Generator("cpu").manual_seed(seed)` followed by
 * `torch.randn(shape, generator=g, dtype=torch.float32)`, value for value, so a seed means the same
 * noise here as in a diffusers run on a CPU generator.
 *
 * What torch does (ATen: core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp, core/TransformationHelper.h,
 * core/DistributionsHelper.h, native/cpu/DistributionTemplates.h):
 * - mt19937 seeded with the low 32 bits of the 64-bit seed (`init_with_uint32`).
 * - float uniforms take 24 bits of one 32-bit draw; double uniforms 53 bits of a 64-bit draw made of two
 *   32-bit draws (first one high).
 * - float32 tensors of >= 16 elements: fill every element with a float uniform, then Box-Muller in blocks
 *   of 16 (element j pairs with j + 8: u1 = 1 - data[j] for the radius, data[j + 8] for the angle); when the
 *   size is not a multiple of 16 the last 16 elements are drawn again and transformed again.
 * - smaller tensors: one double Box-Muller pair per two elements, the second value cached in the
 *   generator and returned by the next scalar draw (the cache survives across calls, reset by seeding).
 * The large-tensor transform is the one x86 builds of torch run (AVX2, see boxMuller16); ARM builds use
 * libm there and differ from it in the last bit of some values.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.js';
import { bitsFloat, f32, floatBits, fma32 } from './numeric.js';

/** Largest seed torch's `manual_seed` accepts (it takes any uint64). */
export const MAX_SEED = (1n << 64n) - 1n;

/**
 * A request's seed: an integer from 0 to 2^64 - 1 (what `manual_seed` takes), given as a number that
 * is a safe integer or as a decimal string (GraphQL Int stops at 2^31, JSON numbers at 2^53).
 */
export function parseSeed(value: number | string | bigint): bigint {
  let seed: bigint | undefined;
  if (typeof value === 'bigint') seed = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) seed = BigInt(value);
  else if (typeof value === 'string' && /^\d{1,20}$/.test(value.trim())) seed = BigInt(value.trim());
  if (seed === undefined || seed < 0n || seed > MAX_SEED) {
    throw new GatewayError(
      'BAD_REQUEST',
      `seed must be an integer from 0 to 18446744073709551615 (2^64 - 1), ` +
        `as a number or a decimal string; got ${String(value)}`,
      { seed: String(value) },
    );
  }
  return seed;
}

/** A fresh seed for a request that gave none (returned with the result, so the run can be repeated). */
export function drawSeed(): bigint {
  return randomBytes(8).readBigUInt64LE();
}

const MT_N = 624;
const MT_M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

class MersenneTwister {
  private readonly state = new Uint32Array(MT_N);
  private index = MT_N;

  constructor(seed32: number) {
    const s = this.state;
    s[0] = seed32 >>> 0;
    for (let i = 1; i < MT_N; i++) {
      const prev = s[i - 1] ^ (s[i - 1] >>> 30);
      // 1812433253 * prev + i in uint32 arithmetic (Math.imul keeps the low 32 bits exactly).
      s[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  next(): number {
    if (this.index >= MT_N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < MT_N; i++) {
      const y = (s[i] & UPPER_MASK) | (s[(i + 1) % MT_N] & LOWER_MASK);
      s[i] = s[(i + MT_M) % MT_N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}

const TWO_POW_24 = 2 ** 24;
const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;

export class TorchGenerator {
  private engine!: MersenneTwister;
  private cachedNormal: number | undefined;
  private seedValue!: bigint;

  /** Seeds like `torch.Generator("cpu").manual_seed(seed)`: any integer in [0, 2^64). */
  constructor(seed: bigint | number) {
    this.manualSeed(seed);
  }

  manualSeed(seed: bigint | number): this {
    const value = BigInt(seed);
    if (value < 0n || value > MAX_SEED) throw new RangeError(`a seed is an integer from 0 to 2^64 - 1; got ${seed}`);
    this.seedValue = value;
    this.engine = new MersenneTwister(Number(value & 0xffffffffn));
    this.cachedNormal = undefined;
    return this;
  }

  get seed(): bigint {
    return this.seedValue;
  }

  /** torch's float uniform in [0, 1): 24 bits of one 32-bit draw. */
  private uniformFloat(): number {
    return (this.engine.next() & 0xffffff) / TWO_POW_24;
  }

  /** torch's double uniform in [0, 1): 53 bits of two 32-bit draws (the first is the high word). */
  private uniformDouble(): number {
    const hi = this.engine.next();
    const lo = this.engine.next();
    return ((hi & 0x1fffff) * TWO_POW_32 + lo) / TWO_POW_53;
  }

  /** One standard normal from the scalar path (`normal_distribution<double>`), with its cached twin. */
  private scalarNormal(): number {
    if (this.cachedNormal !== undefined) {
      const cached = this.cachedNormal;
      this.cachedNormal = undefined;
      return cached;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log1p(-u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `torch.randn(shape, generator=this, dtype=torch.float32)`, C-contiguous. */
  randn(shape: readonly number[]): Float32Array {
    const size = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(size);
    if (size < 16) {
      for (let i = 0; i < size; i++) out[i] = this.scalarNormal();
      return out;
    }
    for (let i = 0; i < size; i++) out[i] = this.uniformFloat();
    for (let i = 0; i + 16 <= size; i += 16) boxMuller16(out, i);
    if (size % 16 !== 0) {
      const start = size - 16;
      for (let i = 0; i < 16; i++) out[start + i] = this.uniformFloat();
      boxMuller16(out, start);
    }
    return out;
  }
}

/**
 * `normal_fill_16_AVX2`: torch's x86 builds run the 16-value Box-Muller with avx_mathfun's cephes
 * polynomials (log256_ps, sincos256_ps) in float32, not libm, and the compiler fuses each multiply that
 * feeds an add into one FMA. Emulating that op for op in float32 gives torch's bits (libm's float
 * log/sin/cos differ in the last bit for ~40% of values).
 */
function boxMuller16(data: Float32Array, offset: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - data[offset + j]);
    const u2 = data[offset + j + 8];
    const radius = f32(Math.sqrt(f32(-2 * logCephes(u1))));
    const theta = f32(TWO_PI_F32 * u2);
    const [sin, cos] = sinCosCephes(theta);
    data[offset + j] = f32(radius * cos);
    data[offset + j + 8] = f32(radius * sin);
  }
}

/** `_mm256_set1_ps(2.0f * c10::pi<double>)`: the double product rounded to float. */
const TWO_PI_F32 = f32(2 * Math.PI);
const SQRTHF = f32(Math.SQRT1_2);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f32);
const LOG_Q1 = f32(-2.1219444e-4);
const LOG_Q2 = f32(0.693359375);
const MIN_NORM_POS = bitsFloat(0x00800000);

/** avx_mathfun `log256_ps` for one lane (x > 0). */
function logCephes(input: number): number {
  let x = Math.max(input, MIN_NORM_POS);
  const bits = floatBits(x);
  x = bitsFloat((bits & ~0x7f800000) | floatBits(0.5));
  let e = f32(f32((bits >>> 23) - 0x7f) + 1);
  const below = x < SQRTHF;
  const tmp = below ? x : 0;
  x = f32(x - 1);
  if (below) e = f32(e - 1);
  x = f32(x + tmp);
  const z = f32(x * x);
  let y = LOG_P[0];
  for (let k = 1; k < LOG_P.length; k++) y = fma32(y, x, LOG_P[k]);
  y = f32(y * x);
  y = fma32(y, z, f32(e * LOG_Q1));
  y = fma32(-z, 0.5, y);
  x = f32(x + y);
  return fma32(e, LOG_Q2, x);
}

const FOPI = f32(1.27323954473516);
const DP1 = f32(-0.78515625);
const DP2 = f32(-2.4187564849853516e-4);
const DP3 = f32(-3.774894977445941e-8);
const SINCOF = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COSCOF = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);

/** avx_mathfun `sincos256_ps` for one lane: [sin, cos]. */
function sinCosCephes(input: number): [number, number] {
  const negative = input < 0;
  let x = Math.abs(input);
  let j = Math.trunc(f32(x * FOPI));
  j = (j + 1) & ~1;
  const y = j;
  const sinSwap = (j & 4) !== 0;
  const polySin = (j & 2) === 0;
  const cosNegative = (~(j - 2) & 4) !== 0;
  x = fma32(y, DP1, x);
  x = fma32(y, DP2, x);
  x = fma32(y, DP3, x);
  const z = f32(x * x);
  let c = COSCOF[0];
  c = fma32(c, z, COSCOF[1]);
  c = fma32(c, z, COSCOF[2]);
  c = f32(c * z);
  c = fma32(c, z, -f32(z * 0.5));
  c = f32(c + 1);
  let s = SINCOF[0];
  s = fma32(s, z, SINCOF[1]);
  s = fma32(s, z, SINCOF[2]);
  s = f32(s * z);
  s = fma32(s, x, x);
  let sin = polySin ? s : c;
  let cos = polySin ? c : s;
  if (negative !== sinSwap) sin = -sin;
  if (cosNegative) cos = -cos;
  return [sin, cos];
}
