/**
 * The handful of numpy / torch numerics the schedulers lean on, reproduced with their rounding, so
 * timesteps come out exactly as diffusers computes them (numpy's round-half-to-even, the length and
 * values of a float `arange`, `linspace` with its exact last point, `interp`; torch's float32 linspace
 * and cumprod).
 */
export const f32 = Math.fround;

/** numpy `round` / `rint`: halves go to the even neighbour (812.5 → 812, where Math.round gives 813). */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction < 0.5) return floor;
  if (fraction > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** numpy `arange(start, stop, step)` over doubles: length ceil((stop - start) / step), values start + i*delta. */
export function arange(start: number, stop: number, step: number): number[] {
  const length = Math.max(Math.ceil((stop - start) / step), 0);
  // numpy fills from the first two values, so its stride is (start + step) - start, not step itself.
  const delta = start + step - start;
  return Array.from({ length }, (_, i) => (i === 0 ? start : start + i * delta));
}

/** numpy `linspace(start, stop, num, endpoint)` in float64. */
export function linspace(start: number, stop: number, num: number, endpoint = true): number[] {
  const div = endpoint ? num - 1 : num;
  const step = div > 0 ? (stop - start) / div : Number.NaN;
  const values = Array.from({ length: num }, (_, i) => (div > 0 ? i * step + start : start));
  if (endpoint && num > 1) values[num - 1] = stop;
  return values;
}

/** numpy `interp(x, xp, fp)` for xp = 0, 1, ..., fp.length - 1 (clamped at both ends). */
export function interpOnIndexGrid(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  if (x === j) return fp[j];
  const slope = fp[j + 1] - fp[j];
  return slope * (x - j) + fp[j];
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on an x86 (AVX2) CPU: float arithmetic, filled from
 * the start below the halfway index and from the end above it. The vectorised loop (two 8-lane vectors
 * per iteration) starts each vector at such a base and adds k*step; the tail runs the scalar formula;
 * the compiler fuses each multiply-add (this reproduces SD 1.5's stored betas bit for bit).
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const lanes = 8;
  const a = f32(start);
  const b = f32(end);
  const step = f32(f32(b - a) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const at = (i: number) => (i < halfway ? fma32(step, i, a) : fma32(-step, steps - i - 1, b));
  const out = new Float32Array(steps);
  const vectorised = steps - (steps % (2 * lanes));
  for (let base = 0; base < vectorised; base += lanes) {
    const first = at(base);
    for (let k = 0; k < lanes; k++) out[base + k] = k === 0 ? first : fma32(k, step, first);
  }
  for (let i = vectorised; i < steps; i++) out[i] = at(i);
  return out;
}

/** Single-rounding float32 fused multiply-add of float32 inputs (a*b is exact in a double). */
export function fma32(a: number, b: number, c: number): number {
  const product = a * b;
  const sum = product + c;
  // TwoSum: the double sum's rounding error, so a double-rounding tie can be broken the right way.
  const bb = sum - product;
  const error = product - (sum - bb) + (c - bb);
  const rounded = f32(sum);
  if (error === 0 || rounded === sum) return rounded;
  const neighbour = nextFloat(rounded, sum > rounded ? 1 : -1);
  if (sum * 2 !== rounded + neighbour) return rounded; // not a float midpoint: one rounding already
  return error > 0 === neighbour > rounded ? neighbour : rounded;
}

function nextFloat(x: number, direction: 1 | -1): number {
  if (x === 0) return direction * bitsFloat(1);
  const bits = floatBits(x);
  return bitsFloat(x > 0 === direction > 0 ? bits + 1 : bits - 1);
}

const bitsView = new DataView(new ArrayBuffer(4));
export function floatBits(x: number): number {
  bitsView.setFloat32(0, x);
  return bitsView.getUint32(0);
}
export function bitsFloat(bits: number): number {
  bitsView.setUint32(0, bits >>> 0);
  return bitsView.getFloat32(0);
}

/**
 * torch's float32 `exp` in its AVX2 vectorised loop: SLEEF's expf (u10) with fused multiply-adds.
 * It is off by one ulp from the correctly rounded value for some inputs, which matters where the
 * result is multiplied by thousands (LCM's guidance embedding). `vectorised` false gives libm's value,
 * as torch's scalar tail loop does.
 */
export function torchExpF32(d: number, vectorised = true): number {
  if (!vectorised) return f32(Math.exp(d));
  if (d < -104) return 0;
  if (d > 100) return Number.POSITIVE_INFINITY;
  const q = roundHalfEven(f32(d * f32(Math.LOG2E)));
  let s = fma32(q, f32(-0.693145751953125), d);
  s = fma32(q, f32(-1.428606765330187e-6), s);
  let u = f32(0.00019852761761285365);
  for (const c of SLEEF_EXPF_COEFFICIENTS) u = fma32(u, s, c);
  u = f32(1 + fma32(f32(s * s), u, s));
  return f32(u * 2 ** q);
}
const SLEEF_EXPF_COEFFICIENTS = [
  0.0013930435525253415, 0.008333360776305199, 0.041666485369205475, 0.1666666716337204, 0.5,
].map(f32);
