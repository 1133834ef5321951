/**
 * Image bytes → RGB as diffusers' `load_image` gets them from Pillow (9.x): each file here is built
 * from known samples (test/support/image-files.ts), and each expectation follows from the format
 * specification plus Pillow's documented conversion (`convert("RGB")`, `exif_transpose`).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { GatewayError } from '../src/errors.ts';
import { readImage } from '../src/imaging/images.ts';
import {
  encodeFlatJpeg,
  encodePng,
  PNG_COLOR,
  type PngSpec,
  pngHeaderOnly,
  withoutAdobeSegment,
} from './support/image-files.ts';
import { IMAGES_DIR } from './support/paths.ts';

const LIMITS = { maxImageBytes: 16 << 20, maxImagePixels: 4096 * 4096 };

async function rgbOf(bytes: Uint8Array, colourManagement?: 'NONE' | 'SRGB') {
  const image = await readImage(bytes, LIMITS, { colourManagement });
  return { ...image, rgb: [...image.pixels] };
}

async function pngRgb(spec: PngSpec) {
  return (await rgbOf(encodePng(spec))).rgb;
}

describe('PNG layouts become RGB as Pillow converts them', () => {
  test('8-bit gray is repeated into R, G and B', async () => {
    const rgb = await pngRgb({ width: 2, height: 1, colorType: PNG_COLOR.gray, bitDepth: 8, samples: [10, 200] });
    assert.deepEqual(rgb, [10, 10, 10, 200, 200, 200]);
  });

  test('gray below 8 bits is scaled to 0..255 (1-bit: 0/255, 2-bit: x85, 4-bit: x17)', async () => {
    for (const [bitDepth, samples, expected] of [
      [1, [0, 1], [0, 255]],
      [2, [1, 2], [85, 170]],
      [4, [1, 15], [17, 255]],
    ] as const) {
      const rgb = await pngRgb({ width: 2, height: 1, colorType: PNG_COLOR.gray, bitDepth, samples });
      assert.deepEqual(
        rgb,
        expected.flatMap((v) => [v, v, v]),
        `${bitDepth}-bit`,
      );
    }
  });

  test('gray + alpha: the alpha is dropped, gray repeated', async () => {
    const rgb = await pngRgb({
      width: 2,
      height: 1,
      colorType: PNG_COLOR.grayAlpha,
      bitDepth: 8,
      samples: [10, 0, 200, 128],
    });
    assert.deepEqual(rgb, [10, 10, 10, 200, 200, 200]);
  });

  test('gray with a tRNS key colour: the samples as stored', async () => {
    const rgb = await pngRgb({
      width: 2,
      height: 1,
      colorType: PNG_COLOR.gray,
      bitDepth: 8,
      samples: [10, 200],
      transparency: [10],
    });
    assert.deepEqual(rgb, [10, 10, 10, 200, 200, 200]);
  });

  test('palette: each index looked up in PLTE, with or without tRNS alpha (alpha dropped)', async () => {
    const palette: [number, number, number][] = [
      [1, 2, 3],
      [250, 100, 50],
      [7, 8, 9],
    ];
    const base = { width: 3, height: 1, colorType: PNG_COLOR.palette, samples: [2, 0, 1], palette } as const;
    const expected = [7, 8, 9, 1, 2, 3, 250, 100, 50];
    assert.deepEqual(await pngRgb({ ...base, bitDepth: 8 }), expected);
    assert.deepEqual(await pngRgb({ ...base, bitDepth: 8, transparency: [0, 128, 255] }), expected);
    assert.deepEqual(await pngRgb({ ...base, bitDepth: 2 }), expected);
  });

  test('RGBA: alpha dropped, not composited (a transparent pixel keeps its colour)', async () => {
    const rgb = await pngRgb({
      width: 2,
      height: 1,
      colorType: PNG_COLOR.rgba,
      bitDepth: 8,
      samples: [200, 100, 50, 0, 1, 2, 3, 255],
    });
    assert.deepEqual(rgb, [200, 100, 50, 1, 2, 3]);
  });

  test('16-bit RGB, RGBA and gray + alpha keep each sample’s high byte (no rounding)', async () => {
    const rgb16 = await pngRgb({
      width: 2,
      height: 1,
      colorType: PNG_COLOR.rgb,
      bitDepth: 16,
      samples: [0x12ff, 0x8080, 0xff00, 0x00ff, 0x0100, 0xffff],
    });
    assert.deepEqual(rgb16, [0x12, 0x80, 0xff, 0x00, 0x01, 0xff]);
    const rgba16 = await pngRgb({
      width: 1,
      height: 1,
      colorType: PNG_COLOR.rgba,
      bitDepth: 16,
      samples: [0x12ff, 0x34ff, 0x56ff, 0],
    });
    assert.deepEqual(rgba16, [0x12, 0x34, 0x56]);
    const grayAlpha16 = await pngRgb({
      width: 2,
      height: 1,
      colorType: PNG_COLOR.grayAlpha,
      bitDepth: 16,
      samples: [0x12ff, 5, 0x00c8, 0xffff],
    });
    assert.deepEqual(grayAlpha16, [0x12, 0x12, 0x12, 0, 0, 0]);
  });

  test('16-bit gray: Pillow opens it as 32-bit "I" and clips to 0..255 (values above 255 are white)', async () => {
    const rgb = await pngRgb({
      width: 3,
      height: 1,
      colorType: PNG_COLOR.gray,
      bitDepth: 16,
      samples: [0x12ff, 200, 255],
    });
    assert.deepEqual(rgb, [255, 255, 255, 200, 200, 200, 255, 255, 255]);
  });
});

describe('CMYK JPEG', () => {
  // Four flat 8x8 blocks; the samples stored are known exactly (all-ones quantisation, DC only).
  const stored = [
    [0, 0, 0, 0],
    [255, 0, 0, 0],
    [0, 127, 255, 191],
    [245, 235, 225, 215],
  ];
  /** Pillow: "CMYK;I" (ink = 255 - stored, always), then cmyk2rgb with MULDIV255. */
  const pillow = (s: number[]) => {
    const [c, m, y, k] = s.map((v) => 255 - v);
    const nk = 255 - k;
    const muldiv = (a: number) => {
      const t = a * nk + 128;
      return ((t >> 8) + t) >> 8;
    };
    return [c, m, y].map((v) => Math.max(0, nk - muldiv(v)));
  };

  for (const adobe of [true, false]) {
    test(`inverted samples and Pillow's cmyk2rgb, ${adobe ? 'with' : 'without'} an Adobe APP14 segment`, async () => {
      const jpeg = encodeFlatJpeg(2, stored, adobe);
      const image = await rgbOf(jpeg);
      assert.equal(image.width, 16);
      assert.equal(image.height, 16);
      stored.forEach((block, i) => {
        const x = (i % 2) * 8 + 3;
        const y = Math.floor(i / 2) * 8 + 5;
        const at = (y * 16 + x) * 3;
        assert.deepEqual(image.rgb.slice(at, at + 3), pillow(block), `block ${i} (${block})`);
      });
    });
  }

  test('the helper strips the APP14 segment (so the case above is really without it)', () => {
    const jpeg = encodeFlatJpeg(1, [[1, 2, 3, 4]], true);
    assert.equal(withoutAdobeSegment(jpeg).length, jpeg.length - 16);
    assert.throws(() => withoutAdobeSegment(encodeFlatJpeg(1, [[1, 2, 3, 4]], false)));
  });
});

describe('EXIF orientation is applied as ImageOps.exif_transpose does', () => {
  // Stored 3x2:  a b c / d e f  (gray levels), each orientation's upright image per EXIF 2.3.
  const [a, b, c, d, e, f] = [10, 20, 30, 40, 50, 60];
  const cases: [number, number, number, number[]][] = [
    [1, 3, 2, [a, b, c, d, e, f]],
    [2, 3, 2, [c, b, a, f, e, d]],
    [3, 3, 2, [f, e, d, c, b, a]],
    [4, 3, 2, [d, e, f, a, b, c]],
    [5, 2, 3, [a, d, b, e, c, f]],
    [6, 2, 3, [d, a, e, b, f, c]],
    [7, 2, 3, [f, c, e, b, d, a]],
    [8, 2, 3, [c, f, b, e, a, d]],
  ];
  for (const [orientation, width, height, gray] of cases) {
    test(`orientation ${orientation}`, async () => {
      const png = encodePng({
        width: 3,
        height: 2,
        colorType: PNG_COLOR.gray,
        bitDepth: 8,
        samples: [a, b, c, d, e, f],
        exifOrientation: orientation,
      });
      const image = await rgbOf(png);
      assert.equal(image.orientation, orientation);
      assert.deepEqual([image.width, image.height], [width, height]);
      assert.deepEqual(
        image.rgb,
        gray.flatMap((v) => [v, v, v]),
      );
    });
  }
});

describe('ICC profiles', () => {
  const coffee = () => new Uint8Array(readFileSync(join(IMAGES_DIR, 'coffee.png')));
  const adobe = () => new Uint8Array(readFileSync(join(IMAGES_DIR, 'coffee-adobergb.png')));

  test('by default the stored values are read, whatever profile is attached', async () => {
    assert.equal((await sharp(adobe()).metadata()).hasProfile, true);
    const tagged = await readImage(adobe(), LIMITS);
    const plain = await readImage(coffee(), LIMITS);
    assert.deepEqual([tagged.width, tagged.height], [plain.width, plain.height]);
    assert.ok(Buffer.from(tagged.pixels).equals(Buffer.from(plain.pixels)), 'same samples as the untagged file');
  });

  test('colour management SRGB converts through the profile (Adobe RGB → sRGB changes the values)', async () => {
    const managed = await readImage(adobe(), LIMITS, { colourManagement: 'SRGB' });
    const stored = await readImage(adobe(), LIMITS);
    let changed = 0;
    for (let i = 0; i < stored.pixels.length; i++) if (managed.pixels[i] !== stored.pixels[i]) changed++;
    assert.ok(changed > stored.pixels.length / 4, `only ${changed} samples changed`);
  });
});

describe('limits', () => {
  test('a header declaring more pixels than sharp allows is IMAGE_TOO_LARGE, not INVALID_IMAGE', async () => {
    await assert.rejects(readImage(pngHeaderOnly(30000, 30000), LIMITS), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.code, 'IMAGE_TOO_LARGE');
      assert.match(error.message, /30000x30000 = 900000000 pixels; the limit is 16777216/);
      return true;
    });
  });

  test('a header over the configured limit but under sharp’s is IMAGE_TOO_LARGE too', async () => {
    await assert.rejects(readImage(pngHeaderOnly(5000, 4000), LIMITS), { code: 'IMAGE_TOO_LARGE' });
  });
});
