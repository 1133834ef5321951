/** The Pillow LANCZOS resampler against Pillow 9.4's own output (shared/fixtures/reference/pil-lanczos). */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { lanczosCoefficients, pilLanczosResize, pilLanczosResizeYielding } from '../src/imaging/pil-resize.ts';
import { simdPasses } from '../src/imaging/pil-resize-simd.ts';
import { IMAGES_DIR, REFERENCE_DIR } from './support/paths.ts';

async function rawRgb(path: string) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

for (const simd of [true, false]) {
  describe(`pilLanczosResize is bit-identical to Pillow (${simd ? 'WebAssembly SIMD' : 'scalar'} passes)`, () => {
    // chelsea is 451x300: both sides down, one side only (Pillow skips the other pass), a strong reduction.
    for (const size of ['448x296', '440x296', '448x300', '451x296', '224x152']) {
      test(`chelsea 451x300 → ${size}`, async () => {
        const [width, height] = size.split('x').map(Number);
        const source = await rawRgb(join(IMAGES_DIR, 'chelsea.png'));
        const expected = await rawRgb(join(REFERENCE_DIR, 'pil-lanczos', `chelsea-${size}.png`));
        const out = pilLanczosResize(source, width, height, { simd });
        assert.deepEqual([out.width, out.height], [width, height]);
        let differing = 0;
        let maxDiff = 0;
        for (let i = 0; i < out.pixels.length; i++) {
          const d = Math.abs(out.pixels[i] - expected.pixels[i]);
          if (d > 0) differing++;
          maxDiff = Math.max(maxDiff, d);
        }
        assert.equal(differing, 0, `${differing} samples differ, max abs ${maxDiff}`);
      });
    }
  });
}

describe('both engines agree', () => {
  test('on noise, over sizes that exercise row padding, over- and under-shoot and upscaling', () => {
    for (const [w, h, ow, oh] of [
      [37, 23, 16, 8],
      [101, 67, 99, 66],
      [17, 9, 40, 21],
      [64, 64, 61, 64],
      [5, 3, 1, 1],
      [4, 3, 3, 2],
      [60, 20, 40, 15],
      [90, 31, 64, 30],
    ]) {
      const pixels = new Uint8Array(w * h * 3);
      for (let i = 0; i < pixels.length; i++) pixels[i] = Math.imul(i + w, 2654435761) >>> 24;
      const image = { pixels, width: w, height: h };
      const simd = pilLanczosResize(image, ow, oh, { simd: true });
      const scalar = pilLanczosResize(image, ow, oh, { simd: false });
      assert.ok(Buffer.from(simd.pixels).equals(Buffer.from(scalar.pixels)), `${w}x${h} → ${ow}x${oh}`);
    }
  });
});

describe('the SIMD passes’ reused memory', () => {
  test('the kernels assemble (else the SIMD tests above quietly run the scalar passes)', () => {
    const axis = lanczosCoefficients(64, 61);
    const source = { pixels: new Uint8Array(64 * 64 * 3), width: 64, height: 64 };
    const plan = { source, width: 61, height: 61, horizontal: axis, vertical: axis, rowFrom: 0, rowTo: 64 };
    const passes = simdPasses(plan, 22);
    assert.ok(passes);
    passes.result();
  });

  test('a result stays intact after later resizes, interleaved ones too', async () => {
    const noise = (w: number, h: number, seed: number) => {
      const pixels = new Uint8Array(w * h * 3);
      for (let i = 0; i < pixels.length; i++) pixels[i] = Math.imul(i + seed, 2654435761) >>> 24;
      return { pixels, width: w, height: h };
    };
    const first = pilLanczosResize(noise(300, 200, 1), 290, 190);
    const kept = first.pixels.slice();
    const [a, b] = await Promise.all([
      pilLanczosResizeYielding(noise(900, 700, 2), 880, 690),
      pilLanczosResizeYielding(noise(120, 80, 3), 111, 77),
    ]);
    const c = pilLanczosResize(noise(300, 200, 4), 290, 190);
    assert.ok(Buffer.from(first.pixels).equals(Buffer.from(kept)));
    assert.ok(
      Buffer.from(a.pixels).equals(Buffer.from(pilLanczosResize(noise(900, 700, 2), 880, 690, { simd: false }).pixels)),
    );
    assert.ok(
      Buffer.from(b.pixels).equals(Buffer.from(pilLanczosResize(noise(120, 80, 3), 111, 77, { simd: false }).pixels)),
    );
    assert.ok(
      Buffer.from(c.pixels).equals(Buffer.from(pilLanczosResize(noise(300, 200, 4), 290, 190, { simd: false }).pixels)),
    );
  });
});

describe('coefficients', () => {
  test('each output’s fixed-point taps sum to one (2^22) within rounding, and stay inside the input', () => {
    for (const [inSize, outSize] of [
      [451, 448],
      [300, 152],
      [2048, 2040],
      [10, 30],
    ]) {
      const { taps, first, count, coefficients } = lanczosCoefficients(inSize, outSize);
      for (let i = 0; i < outSize; i++) {
        let sum = 0;
        for (let t = 0; t < count[i]; t++) sum += coefficients[i * taps + t];
        assert.ok(Math.abs(sum - 2 ** 22) <= taps, `${inSize}→${outSize} output ${i}: sum ${sum}`);
        assert.ok(first[i] >= 0 && first[i] + count[i] <= inSize && count[i] <= taps);
      }
    }
  });

  test('a flat image stays flat through both passes', () => {
    const pixels = new Uint8Array(37 * 23 * 3).fill(77);
    for (const simd of [true, false]) {
      const out = pilLanczosResize({ pixels, width: 37, height: 23 }, 16, 8, { simd });
      assert.ok(out.pixels.every((v) => v === 77));
    }
  });
});

describe('the yielding resize (the one the encode path uses)', () => {
  test('gives the same bytes and lets the event loop run while it works', async () => {
    const width = 1000;
    const height = 700;
    const pixels = new Uint8Array(width * height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.imul(i, 2654435761) >>> 24;
    const image = { pixels, width, height };
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const yielded = await pilLanczosResizeYielding(image, 992, 696);
    clearInterval(ticker);
    const direct = pilLanczosResize(image, 992, 696);
    assert.ok(Buffer.from(yielded.pixels).equals(Buffer.from(direct.pixels)));
    assert.ok(turns > 2, `the event loop ran only ${turns} times`);
  });
});
