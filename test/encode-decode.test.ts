/** Encode and decode through GraphQL against the PyTorch references, on an in-process gateway. */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeTensor } from '../src/tensors/dtype.ts';
import { parseSafetensors, readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { clampUnit, imageToPlanar, maxAbsDiff, psnr } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR, REFERENCE_DIR } from './support/paths.ts';

const ENCODE = `mutation Encode($input: EncodeInput!) {
  encode(input: $input) {
    model width height originalWidth originalHeight resized scalingFactor shiftFactor
    latent { shape dtype data url sha256 byteLength expiresAt }
    route { route target reason bytes estimates { whole { bytes calibrated } } }
  }
}`;
const DECODE = `mutation Decode($input: DecodeInput!) {
  decode(input: $input) {
    model images { format mimeType width height data url sha256 byteLength }
    route { route bytes }
  }
}`;

let gateway: InProcessGateway;

before(async () => {
  gateway = await startInProcessGateway({ MODELS_DIR, DEVICE_MEMORY: '4GiB' });
});
after(async () => gateway?.stop());

function image(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(IMAGES_DIR, name)));
}

async function reference(model: string, name: string) {
  return (await readSafetensors(join(REFERENCE_DIR, model, `${name}.safetensors`))).tensors;
}

async function encodeBase64(model: string, name: string, extra: Record<string, unknown> = {}) {
  const response = await gateway.graphql(ENCODE, {
    input: { model, image: { base64: Buffer.from(image(name)).toString('base64') }, ...extra },
  });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return response.data.encode;
}

describe('encode matches PyTorch', () => {
  for (const [model, name] of [
    ['taef2', 'astronaut'],
    ['taef2', 'coffee'],
    ['taesana', 'astronaut'],
  ] as const) {
    test(`${model} ${name}`, async () => {
      const result = await encodeBase64(model, `${name}.png`);
      const expected = (await reference(model, name)).get('latent')!;
      assert.deepEqual(result.latent.shape, expected.shape);
      assert.equal(result.latent.dtype, 'FLOAT32');
      assert.equal(result.resized, false);
      assert.equal(result.route.route, 'LOCAL');
      assert.ok(result.route.estimates.whole.bytes > 0);
      const latent = decodeTensor(Buffer.from(result.latent.data, 'base64'), 'float32');
      const diff = maxAbsDiff(latent, tensorToFloat32(expected));
      assert.ok(diff <= 1e-3, `max abs diff ${diff} > 1e-3`);
    });
  }

  test('upload through a GraphQL multipart request gives the same latent as base64', async () => {
    const upload = await gateway.upload(
      ENCODE,
      { input: { model: 'taef2', image: { upload: null } } },
      'variables.input.image.upload',
      image('coffee.png'),
      'coffee.png',
    );
    assert.equal(upload.errors, undefined, JSON.stringify(upload.errors));
    const inline = await encodeBase64('taef2', 'coffee.png');
    assert.equal(upload.data.encode.latent.sha256, inline.latent.sha256);
  });

  test('float16 and bfloat16 latents carry the same values at their precision', async () => {
    const full = decodeTensor(
      Buffer.from((await encodeBase64('taef2', 'astronaut.png')).latent.data, 'base64'),
      'float32',
    );
    for (const [dtype, tolerance] of [
      ['float16', 2e-3],
      ['bfloat16', 2e-2],
    ] as const) {
      const result = await encodeBase64('taef2', 'astronaut.png', { dtype: dtype.toUpperCase() });
      const bytes = Buffer.from(result.latent.data, 'base64');
      assert.equal(bytes.length, full.length * 2);
      const values = decodeTensor(bytes, dtype);
      for (let i = 0; i < full.length; i++)
        assert.ok(Math.abs(values[i] - full[i]) <= tolerance * Math.max(1, Math.abs(full[i])), `${dtype} element ${i}`);
    }
  });

  test('scaling and shift are applied as (z - shift) * scale', async () => {
    const plain = decodeTensor(
      Buffer.from((await encodeBase64('taef2', 'astronaut.png')).latent.data, 'base64'),
      'float32',
    );
    const result = await encodeBase64('taef2', 'astronaut.png', { scalingFactor: 0.5, shiftFactor: 0.25 });
    assert.equal(result.scalingFactor, 0.5);
    assert.equal(result.shiftFactor, 0.25);
    const scaled = decodeTensor(Buffer.from(result.latent.data, 'base64'), 'float32');
    assert.ok(
      maxAbsDiff(
        scaled,
        plain.map((z) => (z - 0.25) * 0.5),
      ) < 1e-6,
    );
  });

  test('sizes that are not a multiple of the factor are resized down, and the result says so', async () => {
    const result = await encodeBase64('taef2', 'chelsea.png'); // 451x300
    assert.equal(result.originalWidth, 451);
    assert.equal(result.originalHeight, 300);
    assert.equal(result.width, 448);
    assert.equal(result.height, 296);
    assert.equal(result.resized, true);
    assert.deepEqual(result.latent.shape, [1, 32, 37, 56]);
  });
});

describe('decode matches PyTorch', () => {
  test('taef2 decode of the reference latent is within 45 dB of the reference decode', async () => {
    const ref = await reference('taef2', 'astronaut');
    const latent = ref.get('latent')!;
    const response = await gateway.graphql(DECODE, {
      input: {
        model: 'taef2',
        latent: {
          tensor: { data: Buffer.from(latent.bytes).toString('base64'), shape: latent.shape, dtype: 'FLOAT32' },
        },
      },
    });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const [decoded] = response.data.decode.images;
    assert.equal(decoded.mimeType, 'image/png');
    const ours = await imageToPlanar(Buffer.from(decoded.data, 'base64'));
    assert.equal(ours.width, 512);
    const db = psnr(ours.data, clampUnit(tensorToFloat32(ref.get('decoded')!)));
    assert.ok(db >= 45, `PSNR ${db.toFixed(2)} dB < 45 dB`);
  });

  test('round trip through URL delivery: latent URL → decode → image URL', async () => {
    const encoded = await encodeBase64('taef2', 'coffee.png', { delivery: 'URL' });
    assert.equal(encoded.latent.data, null);
    assert.match(encoded.latent.url, /\/v1\/latents\/[0-9a-f-]{36}$/);
    assert.ok(new Date(encoded.latent.expiresAt).getTime() > Date.now());

    const raw = await fetch(encoded.latent.url);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('shape'), JSON.stringify(encoded.latent.shape));
    assert.equal(raw.headers.get('dtype'), 'float32');
    const rawBytes = new Uint8Array(await raw.arrayBuffer());
    assert.equal(rawBytes.length, encoded.latent.byteLength);

    const st = await fetch(`${encoded.latent.url}?format=safetensors`);
    const parsed = parseSafetensors(new Uint8Array(await st.arrayBuffer())).tensors.get('latent')!;
    assert.deepEqual(parsed.shape, encoded.latent.shape);
    assert.deepEqual(Buffer.from(parsed.bytes), Buffer.from(rawBytes));

    const response = await gateway.graphql(DECODE, {
      input: { model: 'taef2', latent: { url: encoded.latent.url }, delivery: 'URL', format: 'WEBP' },
    });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const [img] = response.data.decode.images;
    const fetched = await fetch(img.url);
    assert.equal(fetched.headers.get('content-type'), 'image/webp');
    const decoded = await imageToPlanar(new Uint8Array(await fetched.arrayBuffer()));
    const original = await imageToPlanar(image('coffee.png'));
    const db = psnr(decoded.data, original.data);
    // The reference round trip of this image is 29.6 dB; WebP at quality 95 costs a little.
    assert.ok(db > 27, `round trip PSNR ${db.toFixed(2)} dB`);
  });

  test('round trip through base64 delivery matches the reference round trip', async () => {
    const encoded = await encodeBase64('taef2', 'astronaut.png');
    const response = await gateway.graphql(DECODE, {
      input: { model: 'taef2', latent: { tensor: { data: encoded.latent.data, shape: encoded.latent.shape } } },
    });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    const decoded = await imageToPlanar(Buffer.from(response.data.decode.images[0].data, 'base64'));
    const referencePng = await imageToPlanar(readFileSync(join(REFERENCE_DIR, 'taef2', 'astronaut.decoded.png')));
    const db = psnr(decoded.data, referencePng.data);
    assert.ok(db >= 45, `PSNR against the reference decode ${db.toFixed(2)} dB`);
  });
});
