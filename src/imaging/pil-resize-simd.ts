/**
 * The two passes of the Pillow LANCZOS resize (src/imaging/pil-resize.ts) as WebAssembly SIMD
 * kernels, for speed: the same integer arithmetic (int32 sums of sample x fixed-point coefficient,
 * started at one half, arithmetic shift, saturation to 0..255 = Pillow's clip8), 4 to 16 samples
 * at a time instead of one. The module is assembled here from instructions, so there is no binary
 * and no toolchain; where WebAssembly SIMD is missing, the scalar TypeScript passes run instead.
 *
 * Kernels (all addresses are bytes in the instance's memory):
 *   hrow(src, vectors, firsts, lengths, groupBytes, out, outWidth): one row along x. Per output pixel,
 *     4 taps (12 bytes) per step: one load, swizzled into i16 pairs (R of taps t, t+1; G; B; 0) that
 *     i32x4.dot_i16x8_s multiplies by the coefficients split as hi * 2^11 + lo (both fit an i16);
 *     the sums recombine as (hi << 11) + lo, equal mod 2^32 to Pillow's int32 sum. `groupBytes`
 *     is the table per pixel (64 bytes per 4 taps), `lengths` the part used, `firsts` the byte
 *     offset in the row; 4 bytes are stored, the 4th overwritten by the next pixel (buffers carry
 *     padding; reads go up to 13 bytes past a window, against zero coefficients or lanes).
 *   vrows(top, stride, coefficients, tableEnd, out, length): one output row along y, 16 samples per
 *     step, two input rows at a time: their bytes interleaved and widened to i16 pairs, dotted with
 *     the pair's split coefficients (8 bytes per pair: (lo_a, lo_b), (hi_a, hi_b)) into 4 + 4 i32x4
 *     sums. An odd count reads one row past the window against zero coefficients (in memory: the
 *     output follows the rows read); `length` is the row rounded up to 16 (padding again).
 */
import type { ResizePasses, ResizePlan } from './pil-resize.js';

const I32 = 0x7f;
const V128 = 0x7b;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(byte & 0x40)) || (n === -1 && byte & 0x40)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const name = (text: string) => [...uleb(text.length), ...Buffer.from(text, 'latin1')];
const simd = (op: number, ...immediates: number[]) => [0xfd, ...uleb(op), ...immediates];

// Instructions (WebAssembly core 2.0 opcodes).
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const tee = (i: number) => [0x22, ...uleb(i)];
const i32const = (n: number) => [0x41, ...sleb(n)];
const [i32add, i32mul, i32shl, i32ltS, i32ltU] = [[0x6a], [0x6c], [0x74], [0x48], [0x49]];
const i32load = [0x28, 2, 0];
const i32store = [0x36, 2, 0];
const [block, loop, end, brIf0] = [[0x02, 0x40], [0x03, 0x40], [0x0b], [0x0d, 0]];
const v128load = simd(0x00, 0, 0);
const v128loadAt = (offset: number) => simd(0x00, 0, ...uleb(offset));
const v128const = (bytes: number[]) => simd(0x0c, ...bytes);
const i8x16swizzle = simd(0x0e);
const i32x4dotI16x8S = simd(0xba);
const i32x4shl = simd(0xab);
const v128store = simd(0x0b, 0, 0);
const i32x4splat = simd(0x11);
const v128load32splat = (offset: number) => simd(0x09, 2, ...uleb(offset));
const i32x4extractLane0 = simd(0x1b, 0);
const i8x16narrowI16x8U = simd(0x66);
const i16x8narrowI32x4S = simd(0x85);
const i16x8extendLowU8 = simd(0x89);
const i16x8extendHighU8 = simd(0x8a);
const i32x4shrS = simd(0xac);
const i32x4add = simd(0xae);

function functionBody(locals: [count: number, type: number][], code: number[]): number[] {
  const body = [...vec(locals.map(([count, type]) => [...uleb(count), type])), ...code, ...end];
  return [...uleb(body.length), ...body];
}

/** The 4th lane's zero (a swizzle index with the top bit set reads as 0). */
const Z = 0x80;
/** Taps (t, t+1) then (t+2, t+3) of a 12-byte RGB window as i16 pairs per channel, for dot products. */
const PAIRS = [
  [0, Z, 3, Z, 1, Z, 4, Z, 2, Z, 5, Z, Z, Z, Z, Z],
  [6, Z, 9, Z, 7, Z, 10, Z, 8, Z, 11, Z, Z, Z, Z, Z],
];
/** Coefficients are split as hi * 2^SPLIT + lo (lo in 0..2^SPLIT-1) so that both halves fit an i16. */
const SPLIT = 11;

/** `groups` > 0: every pixel's taps fit that many groups of 4 (the rest zero), unrolled; 0: a loop to `lengths`. */
function horizontalKernel(half: number, shift: number, groups: number): number[] {
  const [src, vectors, firsts, lengths, tapBytes, out, outWidth, x, p, k, kEnd, lo, hi, v01, v23] = Array.from(
    { length: 15 },
    (_, i) => i,
  );
  const entry = (table: number) => [...get(table), ...get(x), ...i32const(2), ...i32shl, ...i32add, ...i32load];
  // sum += dot(taps 0, 1 as pairs, their halves) + dot(taps 2, 3 as pairs, theirs)
  const half2 = (sum: number, offset: number) => [
    ...[...get(sum), ...get(v01), ...get(k), ...v128loadAt(offset), ...i32x4dotI16x8S, ...i32x4add],
    ...[...get(v23), ...get(k), ...v128loadAt(offset + 16), ...i32x4dotI16x8S, ...i32x4add, ...set(sum)],
  ];
  const group = (at: number, offset: number) => [
    ...[...get(p), ...v128loadAt(at), ...tee(v01), ...v128const(PAIRS[0]), ...i8x16swizzle],
    ...[...get(v01), ...v128const(PAIRS[1]), ...i8x16swizzle, ...set(v23), ...set(v01)],
    ...half2(lo, offset),
    ...half2(hi, offset + 32),
  ];
  const groupLoop = [
    ...loop,
    ...group(0, 0),
    ...[...get(p), ...i32const(12), ...i32add, ...set(p)],
    ...[...get(k), ...i32const(64), ...i32add, ...tee(k), ...get(kEnd), ...i32ltU, ...brIf0],
    ...end,
  ];
  return functionBody(
    [
      [4, I32],
      [4, V128],
    ],
    [
      ...block,
      ...loop,
      ...[...i32const(half), ...i32x4splat, ...set(lo), ...i32const(0), ...i32x4splat, ...set(hi)],
      ...[...get(vectors), ...get(x), ...get(tapBytes), ...i32mul, ...i32add],
      ...(groups ? set(k) : [...tee(k), ...entry(lengths), ...i32add, ...set(kEnd)]),
      ...[...get(src), ...entry(firsts), ...i32add, ...set(p)],
      ...(groups ? Array.from({ length: groups }, (_, g) => group(12 * g, 64 * g)).flat() : groupLoop),
      ...[...get(out), ...get(x), ...i32const(3), ...i32mul, ...i32add],
      ...[...get(hi), ...i32const(SPLIT), ...i32x4shl, ...get(lo), ...i32x4add],
      ...[...i32const(shift), ...i32x4shrS, ...tee(lo), ...get(lo), ...i16x8narrowI32x4S],
      ...[...tee(lo), ...get(lo), ...i8x16narrowI16x8U, ...i32x4extractLane0, ...i32store],
      ...[...get(x), ...i32const(1), ...i32add, ...tee(x), ...get(outWidth), ...i32ltS, ...brIf0],
      ...end,
      ...end,
    ],
  );
}

/** Bytes of rows a and b interleaved (a0 b0 a1 b1 ...): low and high halves. */
const UNPACK = [
  Array.from({ length: 16 }, (_, i) => (i >> 1) + (i & 1) * 16),
  Array.from({ length: 16 }, (_, i) => 8 + (i >> 1) + (i & 1) * 16),
];

function verticalKernel(half: number, shift: number): number[] {
  const [top, stride, coefficients, tableEnd, out, length, i, t, p, a, b, w, cl, ch] = Array.from(
    { length: 14 },
    (_, index) => index,
  );
  const [lo, hi] = [
    [14, 15, 16, 17],
    [18, 19, 20, 21],
  ];
  // Two rows at a time: (a, b) samples as i16 pairs, dot (lo_a, lo_b) and (hi_a, hi_b).
  const accumulate = (j: number) => [
    ...[...get(lo[j]), ...get(w), ...get(cl), ...i32x4dotI16x8S, ...i32x4add, ...set(lo[j])],
    ...[...get(hi[j]), ...get(w), ...get(ch), ...i32x4dotI16x8S, ...i32x4add, ...set(hi[j])],
  ];
  const interleaved = (j: number) => [
    ...[...get(a), ...get(b), ...simd(0x0d, ...UNPACK[j >> 1]), ...(j & 1 ? i16x8extendHighU8 : i16x8extendLowU8)],
    ...set(w),
    ...accumulate(j),
  ];
  const total = (j: number) => [...get(hi[j]), ...i32const(SPLIT), ...i32x4shl, ...get(lo[j]), ...i32x4add];
  const shifted = (j: number) => [...total(j), ...i32const(shift), ...i32x4shrS];
  return functionBody(
    [
      [3, I32],
      [13, V128],
    ],
    [
      ...block,
      ...loop,
      ...[...i32const(half), ...i32x4splat, ...tee(lo[0]), ...tee(lo[1]), ...tee(lo[2]), ...set(lo[3])],
      ...[...i32const(0), ...i32x4splat, ...tee(hi[0]), ...tee(hi[1]), ...tee(hi[2]), ...set(hi[3])],
      ...[...get(coefficients), ...set(t), ...get(top), ...get(i), ...i32add, ...set(p)],
      ...loop,
      ...[...get(t), ...v128load32splat(0), ...set(cl), ...get(t), ...v128load32splat(4), ...set(ch)],
      ...[...get(p), ...v128load, ...set(a), ...get(p), ...get(stride), ...i32add, ...v128load, ...set(b)],
      ...[0, 1, 2, 3].flatMap(interleaved),
      ...[...get(p), ...get(stride), ...i32const(1), ...i32shl, ...i32add, ...set(p)],
      ...[...get(t), ...i32const(8), ...i32add, ...tee(t), ...get(tableEnd), ...i32ltU, ...brIf0],
      ...end,
      ...[...get(out), ...get(i), ...i32add],
      ...[...shifted(0), ...shifted(1), ...i16x8narrowI32x4S, ...shifted(2), ...shifted(3), ...i16x8narrowI32x4S],
      ...[...i8x16narrowI16x8U, ...v128store],
      ...[...get(i), ...i32const(16), ...i32add, ...tee(i), ...get(length), ...i32ltS, ...brIf0],
      ...end,
      ...end,
    ],
  );
}

/** Horizontal kernels without a loop over taps, for windows of up to 4, 8, 12 taps. */
const UNROLLED = [1, 2, 3];

function assemble(precisionBits: number): Uint8Array<ArrayBuffer> {
  const half = 1 << (precisionBits - 1);
  const params = (n: number) => [0x60, ...vec(Array.from({ length: n }, () => [I32])), 0];
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([params(7), params(6)])),
    ...section(2, vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([[0], [1], ...UNROLLED.map(() => [0])])),
    ...section(
      7,
      vec([
        [...name('hrow'), 0x00, 0],
        [...name('vrows'), 0x00, 1],
        ...UNROLLED.map((groups, i) => [...name(`hrow${groups}`), 0x00, 2 + i]),
      ]),
    ),
    ...section(
      10,
      vec([
        horizontalKernel(half, precisionBits, 0),
        verticalKernel(half, precisionBits),
        ...UNROLLED.map((groups) => horizontalKernel(half, precisionBits, groups)),
      ]),
    ),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

function module(precisionBits: number): WebAssembly.Module | null {
  if (compiled === undefined) {
    const bytes = assemble(precisionBits);
    compiled = WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  }
  return compiled;
}

type HorizontalKernel = (
  src: number,
  vectors: number,
  firsts: number,
  lengths: number,
  groupBytes: number,
  out: number,
  width: number,
) => void;

interface Kernels {
  [unrolled: `hrow${number}`]: HorizontalKernel | undefined;
  hrow(src: number, vectors: number, firsts: number, lengths: number, tapBytes: number, out: number, w: number): void;
  vrows(top: number, stride: number, coefficients: number, count: number, out: number, length: number): void;
}

interface Workspace {
  memory: WebAssembly.Memory;
  kernels: Kernels;
}

/**
 * Larger memories are not kept between resizes: 64 MiB covers a 2048x2048 resize (~40 MB), and what is
 * kept is held for good, outside any request's accounting.
 */
const KEEP_BYTES = 64 * 1024 * 1024;
/** A memory no resize is using, kept because a fresh one costs a page fault per 4 KiB touched. */
let idle: Workspace | null = null;

function lease(compiledModule: WebAssembly.Module, bytes: number): Workspace | null {
  const pages = Math.ceil(bytes / 65536);
  const reused = idle;
  idle = null;
  try {
    if (reused) {
      const have = reused.memory.buffer.byteLength / 65536;
      if (have < pages) reused.memory.grow(pages - have);
      return reused;
    }
    const memory = new WebAssembly.Memory({ initial: pages });
    const kernels = new WebAssembly.Instance(compiledModule, { env: { memory } }).exports as unknown as Kernels;
    return { memory, kernels };
  } catch {
    return null;
  }
}

function release(workspace: Workspace): void {
  if (workspace.memory.buffer.byteLength <= KEEP_BYTES) idle = workspace;
}

/**
 * The plan's passes on the SIMD kernels, over a memory of their own while they run: resizes that
 * interleave (they yield) never share one, and the result is a copy, after which the memory (about
 * three images' worth) waits for the next resize (one is kept, up to KEEP_BYTES). Null without
 * WebAssembly SIMD.
 */
export function simdPasses(plan: ResizePlan, precisionBits: number): ResizePasses | null {
  const compiledModule = module(precisionBits);
  if (!compiledModule) return null;
  const { source, width, height, horizontal, vertical, rowFrom, rowTo } = plan;
  const stride = width * 3;
  let used = 0;
  const allocate = (bytes: number) => {
    const at = used;
    used += (bytes + 64 + 63) & ~63; // room for the kernels' over-reads (up to 40 bytes) and over-writes
    return at;
  };
  const src = allocate(source.pixels.length);
  const narrowed = horizontal ? allocate(stride * (rowTo - rowFrom)) : src;
  const output = vertical ? allocate(stride * height) : narrowed;
  const groupBytes = horizontal ? Math.ceil(horizontal.taps / 4) * 64 : 0;
  const h = horizontal && {
    axis: horizontal,
    groupBytes,
    vectors: allocate(width * groupBytes),
    firsts: allocate(width * 4),
    lengths: allocate(width * 4),
    /** Groups of 4 taps the widest window needs. */
    groups: Math.ceil(Math.max(...horizontal.count) / 4),
  };
  const pairBytes = vertical ? Math.ceil(vertical.taps / 2) * 8 : 0;
  const v = vertical && { axis: vertical, coefficients: allocate(height * pairBytes) };
  const workspace = lease(compiledModule, used);
  if (!workspace) return null; // more than a WebAssembly memory holds (4 GiB): the scalar passes use plain arrays
  const { memory, kernels } = workspace;
  const bytes = new Uint8Array(memory.buffer);
  const words = new Int32Array(memory.buffer);
  const halves = new Int16Array(memory.buffer);
  bytes.set(source.pixels, src);
  // A reused memory holds the last resize's tables: unused taps and lanes must read as 0 again.
  if (h) bytes.fill(0, h.vectors, h.vectors + width * groupBytes);
  if (v) bytes.fill(0, v.coefficients, v.coefficients + height * pairBytes);
  if (v) {
    // Per pair of rows (a, b): the i16 pair (lo_a, lo_b), then (hi_a, hi_b); a missing b gets 0.
    const { taps, count, coefficients } = v.axis;
    for (let y = 0; y < height; y++) {
      for (let t = 0; t < count[y]; t++) {
        const c = coefficients[y * taps + t];
        const at = (v.coefficients + y * pairBytes + (t >> 1) * 8) / 2 + (t & 1);
        halves[at] = c & ((1 << SPLIT) - 1);
        halves[at + 2] = c >> SPLIT;
      }
    }
  }
  if (h) {
    const { taps, first, count, coefficients } = h.axis;
    for (let x = 0; x < width; x++) {
      words[h.firsts / 4 + x] = first[x] * 3;
      words[h.lengths / 4 + x] = Math.ceil(count[x] / 4) * 64;
      // Per 4 taps: (lo0, lo1) and (lo2, lo3) for each of R, G, B, then the same for the high halves.
      for (let t = 0; t < count[x]; t++) {
        const c = coefficients[x * taps + t];
        const at = (h.vectors + x * h.groupBytes + (t >> 2) * 64 + ((t >> 1) & 1) * 16) / 2 + (t & 1);
        for (let lane = 0; lane < 6; lane += 2) {
          halves[at + lane] = c & ((1 << SPLIT) - 1);
          halves[at + 16 + lane] = c >> SPLIT;
        }
      }
    }
  }
  const inStride = source.width * 3;
  let result: Uint8Array | undefined;
  const rowLength = (stride + 15) & ~15;
  return {
    horizontal(from, to) {
      if (!h) return;
      const hrow = kernels[`hrow${h.groups}`] ?? kernels.hrow;
      for (let y = from; y < to; y++) {
        hrow(
          src + y * inStride,
          h.vectors,
          h.firsts,
          h.lengths,
          h.groupBytes,
          narrowed + (y - rowFrom) * stride,
          width,
        );
      }
    },
    vertical(from, to) {
      if (!v) return;
      const { first, count } = v.axis;
      const base = horizontal ? rowFrom : 0;
      for (let y = from; y < to; y++) {
        const top = narrowed + (first[y] - base) * stride;
        const table = v.coefficients + y * pairBytes;
        kernels.vrows(top, stride, table, table + Math.ceil(count[y] / 2) * 8, output + y * stride, rowLength);
      }
    },
    // A copy, so that the memory can serve the next resize (its pages already faulted in).
    result() {
      if (!result) {
        result = bytes.slice(output, output + stride * height);
        release(workspace);
      }
      return result;
    },
  };
}
