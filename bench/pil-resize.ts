/**
 * The Pillow-exact LANCZOS resize (src/imaging/pil-resize.ts: WebAssembly SIMD passes, and the
 * scalar TypeScript ones) against sharp's own lanczos3 resize of the same raw RGB, 2048x2048 →
 * 2040x2040 (a rounding-down resize of the kind the encode path does). Runs interleaved so all see
 * the same machine; reports medians and the ratios (issue 9's target: at most 1.5x sharp).
 */
import sharp from 'sharp';
import { pilLanczosResize } from '../src/imaging/pil-resize.ts';
import { IMAGES_DIR, median } from './support.ts';

export async function pilResize(rounds = 9, from = 2048, to = 2040) {
  const { data } = await sharp(`${IMAGES_DIR}/astronaut-1024.png`)
    .removeAlpha()
    .resize(from, from)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const image = { pixels: new Uint8Array(data), width: from, height: from };
  const viaSharp = () =>
    sharp(image.pixels, { raw: { width: from, height: from, channels: 3 } })
      .resize(to, to, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
  const times = { simd: [] as number[], scalar: [] as number[], sharp: [] as number[] };
  const timed = async (fn: () => unknown) => {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  };
  for (let i = 0; i < rounds + 1; i++) {
    const simd = await timed(() => pilLanczosResize(image, to, to, { simd: true }));
    const scalar = await timed(() => pilLanczosResize(image, to, to, { simd: false }));
    const viaSharpMs = await timed(viaSharp);
    if (i === 0) continue; // warm-up: JIT and libvips caches
    times.simd.push(simd);
    times.scalar.push(scalar);
    times.sharp.push(viaSharpMs);
  }
  const [simdMs, scalarMs, sharpMs] = [median(times.simd), median(times.scalar), median(times.sharp)];
  return {
    benchmark: 'pil-resize',
    from: `${from}x${from}`,
    to: `${to}x${to}`,
    sharpThreads: sharp.concurrency(),
    pilLanczosSimdMs: Number(simdMs.toFixed(1)),
    pilLanczosScalarMs: Number(scalarMs.toFixed(1)),
    sharpLanczos3Ms: Number(sharpMs.toFixed(1)),
    ratio: Number((simdMs / sharpMs).toFixed(2)),
    scalarRatio: Number((scalarMs / sharpMs).toFixed(2)),
  };
}
