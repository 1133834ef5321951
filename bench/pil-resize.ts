/**
 * The Pillow-exact LANCZOS resize (src/imaging/pil-resize.ts, pure TypeScript) against sharp's
 * own lanczos3 resize of the same raw RGB, 2048x2048 → 2040x2040 (a rounding-down resize of the
 * kind the encode path does). Runs interleaved so both see the same machine; reports medians and
 * the ratio (issue 9's target: at most 1.5x sharp).
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
  const times = { pil: [] as number[], sharp: [] as number[] };
  for (let i = 0; i < rounds + 1; i++) {
    let start = performance.now();
    pilLanczosResize(image, to, to);
    const pil = performance.now() - start;
    start = performance.now();
    await viaSharp();
    const viaSharpMs = performance.now() - start;
    if (i === 0) continue; // warm-up: JIT and libvips caches
    times.pil.push(pil);
    times.sharp.push(viaSharpMs);
  }
  const pilMs = median(times.pil);
  const sharpMs = median(times.sharp);
  return {
    benchmark: 'pil-resize',
    from: `${from}x${from}`,
    to: `${to}x${to}`,
    sharpThreads: sharp.concurrency(),
    pilLanczosMs: Number(pilMs.toFixed(1)),
    sharpLanczos3Ms: Number(sharpMs.toFixed(1)),
    ratio: Number((pilMs / sharpMs).toFixed(2)),
  };
}
