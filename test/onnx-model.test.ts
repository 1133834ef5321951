/** The AutoencoderKL path: ONNX files in optimum's layout plus model.json, through an in-process gateway. */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { decodeTensor } from '../src/tensors/dtype.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { writeTinyKlModel } from './support/kl-model.ts';

let gateway: InProcessGateway;
let modelsDir: string;
const WIDTH = 48;
const HEIGHT = 32;
let png: Buffer;
let pixels: Buffer;

before(async () => {
  modelsDir = mkdtempSync(join(tmpdir(), 'latentgate-kl-'));
  writeTinyKlModel(join(modelsDir, 'tiny-sd'), { family: 'sd15' });
  writeTinyKlModel(join(modelsDir, 'tiny-flux'), { family: 'flux1', latentChannels: 4 });
  pixels = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 5) * 11) % 256;
  png = await sharp(pixels, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
    .png()
    .toBuffer();
  gateway = await startInProcessGateway({ MODELS_DIR: modelsDir });
});
after(async () => {
  await gateway?.stop();
  rmSync(modelsDir, { recursive: true, force: true });
});

/** The latent by hand: 8x8 patch means of the [-1, 1] image; channel 3 is the grey mean. */
function expectedLatent(): Float32Array {
  const [h, w] = [HEIGHT / 8, WIDTH / 8];
  const out = new Float32Array(4 * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sums = [0, 0, 0];
      for (let dy = 0; dy < 8; dy++)
        for (let dx = 0; dx < 8; dx++)
          for (let c = 0; c < 3; c++) sums[c] += (pixels[((y * 8 + dy) * WIDTH + x * 8 + dx) * 3 + c] / 255) * 2 - 1;
      for (let c = 0; c < 3; c++) out[(c * h + y) * w + x] = sums[c] / 64;
      out[(3 * h + y) * w + x] = (sums[0] + sums[1] + sums[2]) / 192;
    }
  }
  return out;
}

test('models lists the ONNX models with their family conventions', async () => {
  const { data } = await gateway.graphql(
    '{ models { id family format latentChannels scalingFactor shiftFactor inputRange operations } }',
  );
  const sd = data.models.find((m: { id: string }) => m.id === 'tiny-sd');
  assert.deepEqual(sd, {
    id: 'tiny-sd',
    family: 'sd15',
    format: 'onnx',
    latentChannels: 4,
    scalingFactor: 0.18215,
    shiftFactor: 0,
    inputRange: 'minus-one-one',
    operations: ['ENCODE', 'DECODE'],
  });
  const flux = data.models.find((m: { id: string }) => m.id === 'tiny-flux');
  assert.equal(flux.scalingFactor, 0.3611);
  assert.equal(flux.shiftFactor, 0.1159);
});

test('encode takes [-1, 1] input, keeps the mean channels and applies the family scaling and shift', async () => {
  for (const [model, scale, shift] of [
    ['tiny-sd', 0.18215, 0],
    ['tiny-flux', 0.3611, 0.1159],
  ] as const) {
    const response = await gateway.graphql(
      'mutation($i: EncodeInput!) { encode(input: $i) { latent { shape data } scalingFactor shiftFactor } }',
      {
        i: { model, image: { base64: png.toString('base64') } },
      },
    );
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.deepEqual(response.data.encode.latent.shape, [1, 4, HEIGHT / 8, WIDTH / 8]);
    const latent = decodeTensor(Buffer.from(response.data.encode.latent.data, 'base64'), 'float32');
    const expected = expectedLatent().map((z) => (z - shift) * scale);
    for (let i = 0; i < expected.length; i++)
      assert.ok(Math.abs(latent[i] - expected[i]) < 1e-5, `${model} element ${i}: ${latent[i]} vs ${expected[i]}`);
  }
});

test('decode reverses the scaling and maps [-1, 1] output back to 8-bit pixels', async () => {
  const scaled = expectedLatent().map((z) => z * 0.18215);
  const response = await gateway.graphql(
    'mutation($i: DecodeInput!) { decode(input: $i) { images { width height data } } }',
    {
      i: {
        model: 'tiny-sd',
        latent: {
          tensor: { data: Buffer.from(scaled.buffer).toString('base64'), shape: [1, 4, HEIGHT / 8, WIDTH / 8] },
        },
      },
    },
  );
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const [image] = response.data.decode.images;
  assert.equal(image.width, WIDTH);
  const { data } = await sharp(Buffer.from(image.data, 'base64')).raw().toBuffer({ resolveWithObject: true });
  // Each decoded pixel is its 8x8 patch's mean colour.
  const latent = expectedLatent();
  const [h, w] = [HEIGHT / 8, WIDTH / 8];
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      for (let c = 0; c < 3; c++) {
        const want = Math.round(((latent[(c * h + (y >> 3)) * w + (x >> 3)] + 1) / 2) * 255);
        assert.ok(Math.abs(data[(y * WIDTH + x) * 3 + c] - want) <= 1, `pixel ${x},${y},${c}`);
      }
    }
  }
});
