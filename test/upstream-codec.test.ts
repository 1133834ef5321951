/**
 * The upstream codec (src/upstream/codec.ts) on its own: the requests it builds and the answers it
 * accepts, checked against the Hybrid Inference protocol as the README describes it (raw
 * little-endian tensors with `shape` and `dtype`, parameters written as python-requests writes them,
 * PNG for 8-bit images), with the answers built here by hand.
 */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import type { Nchw } from '../src/gpu/tensor.ts';
import { decodeTensor, encodeTensor } from '../src/tensors/dtype.ts';
import type { PixelRange } from '../src/tensors/pixel-range.ts';
import {
  buildRequest,
  type CodecModel,
  decodeRequest,
  encodeRequest,
  maxResponseBytes,
  ProtocolMismatch,
  readDecodeResponse,
  readEncodeResponse,
  readResponse,
} from '../src/upstream/codec.ts';

const ENDPOINT = 'http://upstream.test/v1/vae/m/encode';
const tae: CodecModel = { id: 'tae', latentChannels: 4, downscaleFactor: 8, family: { inputRange: 'zero-one' } };
const kl: CodecModel = { id: 'kl', latentChannels: 4, downscaleFactor: 8, family: { inputRange: 'minus-one-one' } };

/** Deterministic 8-bit values that use the whole range. */
function bytes(count: number, seed = 1): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (i * 37 + seed * 101 + (i >> 4) * 13) % 256;
  return out;
}

/** 8-bit planar pixels as the model takes them: [0, 1] or [-1, 1]. */
function toRange(values: Uint8Array, range: PixelRange): Float32Array {
  return Float32Array.from(values, (u) => (range === 'zero-one' ? u / 255 : u / 127.5 - 1));
}

function tensor(dims: Nchw['dims'], data?: Float32Array): Nchw {
  const count = dims[0] * dims[1] * dims[2] * dims[3];
  return { dims, data: data ?? Float32Array.from({ length: count }, (_, i) => Math.sin(i) * 0.75) };
}

/** The headers of a tensor answer, as a protocol server sends them. */
function tensorAnswer(shape: unknown, dtype: string | null): Headers {
  const headers = new Headers({ 'content-type': 'tensor/binary' });
  if (shape !== null) headers.set('shape', typeof shape === 'string' ? shape : JSON.stringify(shape));
  if (dtype !== null) headers.set('dtype', dtype);
  return headers;
}

function assertClose(actual: Float32Array, expected: ArrayLike<number>, tolerance: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tolerance,
      `${label}: element ${i} is ${actual[i]}, not ${expected[i]}`,
    );
}

function mismatch(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof ProtocolMismatch, `expected a ProtocolMismatch, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('encodeRequest', () => {
  for (const model of [tae, kl]) {
    const range = model.family.inputRange;
    test(`an 8-bit image in ${range} goes as a lossless PNG with no parameters or headers`, async () => {
      const [width, height] = [24, 16];
      const planar = bytes(3 * width * height);
      const request = await encodeRequest(ENDPOINT, model, tensor([1, 3, height, width], toRange(planar, range)));
      assert.equal(request.url, ENDPOINT);
      assert.equal(request.method, 'POST');
      assert.equal(request.headers, undefined);
      const body = Buffer.from(request.body!);
      assert.equal(body.subarray(1, 4).toString('latin1'), 'PNG');
      const { data, info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height, info.channels], [width, height, 3]);
      // Interleaved RGB in the file, planar CHW in the tensor.
      const plane = width * height;
      for (let i = 0; i < plane; i++)
        for (let c = 0; c < 3; c++) assert.equal(data[i * 3 + c], planar[c * plane + i], `pixel ${i} channel ${c}`);
    });
  }

  test('values that are not 8-bit go as a float32 tensor in [-1, 1] with shape and dtype', async () => {
    const input = tensor(
      [1, 3, 8, 16],
      Float32Array.from({ length: 3 * 8 * 16 }, (_, i) => (i % 97) / 96.5),
    );
    const request = await encodeRequest(ENDPOINT, tae, input);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, `${ENDPOINT}?shape=1&shape=3&shape=8&shape=16&dtype=float32`);
    const sent = decodeTensor(request.body!, 'float32');
    // The tiny autoencoders' [0, 1] pixels are sent in diffusers' [-1, 1] convention.
    assertClose(
      sent,
      input.data.map((v) => v * 2 - 1),
      1e-6,
      'zero-one',
    );
    const minusOneOne = await encodeRequest(ENDPOINT, kl, input);
    assert.deepEqual(
      Buffer.from(minusOneOne.body!),
      encodeTensor(input.data, 'float32'),
      'minus-one-one is sent as is',
    );
  });

  test('a batch, a channel count other than 3, or values out of range go as a tensor too', async () => {
    const pixels = (count: number) => toRange(bytes(count), 'zero-one');
    const outOfRange = pixels(3 * 8 * 8);
    outOfRange[5] = 256 / 255;
    for (const [label, input] of [
      ['batch of 2', tensor([2, 3, 8, 8], pixels(2 * 3 * 8 * 8))],
      ['4 channels', tensor([1, 4, 8, 8], pixels(4 * 8 * 8))],
      ['a value over 1', tensor([1, 3, 8, 8], outOfRange)],
    ] as const) {
      const request = await encodeRequest(ENDPOINT, tae, input);
      const [b, c, h, w] = input.dims;
      assert.equal(request.url, `${ENDPOINT}?shape=${b}&shape=${c}&shape=${h}&shape=${w}&dtype=float32`, label);
      assert.equal(request.body!.length, input.data.length * 4, label);
    }
  });

  test('parameters are appended to a URL that already has a query', async () => {
    const request = await encodeRequest(`${ENDPOINT}?token=abc`, kl, tensor([1, 3, 8, 8]));
    assert.equal(request.url, `${ENDPOINT}?token=abc&shape=1&shape=3&shape=8&shape=8&dtype=float32`);
  });
});

describe('decodeRequest', () => {
  test("prepare_decode's parameters in its order, tensor/binary both ways, the latent as float32 bytes", () => {
    const latent = tensor([2, 4, 3, 5]);
    const url = ENDPOINT.replace('encode', 'decode');
    const request = decodeRequest(url, latent);
    assert.equal(request.method, 'POST');
    assert.equal(
      request.url,
      `${url}?image_format=png&output_type=pt&partial_postprocess=True&shape=2&shape=4&shape=3&shape=5&dtype=float32`,
    );
    assert.deepEqual(request.headers, { 'Content-Type': 'tensor/binary', Accept: 'tensor/binary' });
    // No scaling parameters: the latent is already unscaled, and the answer comes back as it is sent.
    assert.ok(!/scaling|shift/.test(request.url));
    assert.deepEqual(decodeTensor(request.body!, 'float32'), latent.data);
    assert.match(decodeRequest(`${url}?a=1`, latent).url, /\?a=1&image_format=png&/);
  });
});

describe('buildRequest', () => {
  test('picks the encode or decode request by operation', async () => {
    const image = tensor([1, 3, 8, 8]);
    assert.deepEqual(await buildRequest('encode', ENDPOINT, kl, image), await encodeRequest(ENDPOINT, kl, image));
    const latent = tensor([1, 4, 2, 2]);
    assert.deepEqual(await buildRequest('decode', ENDPOINT, kl, latent), decodeRequest(ENDPOINT, latent));
  });
});

describe('readEncodeResponse', () => {
  const image = tensor([1, 3, 32, 48]);
  const shape = [1, 4, 4, 6];

  test('a float32 latent of the expected shape comes back as it was sent', () => {
    const values = Float32Array.from({ length: 4 * 4 * 6 }, (_, i) => i / 7 - 3);
    const latent = readEncodeResponse(kl, image, tensorAnswer(shape, 'float32'), encodeTensor(values, 'float32'));
    assert.deepEqual(latent.dims, shape);
    assert.deepEqual(latent.data, values);
  });

  test('float16 and bfloat16 latents are widened to float32', () => {
    // Values both formats hold exactly.
    const values = Float32Array.from({ length: 4 * 4 * 6 }, (_, i) => (i % 16) * 0.25 - 2);
    for (const dtype of ['float16', 'bfloat16'] as const) {
      const latent = readEncodeResponse(tae, image, tensorAnswer(shape, dtype), encodeTensor(values, dtype));
      assert.deepEqual(latent.data, values, dtype);
    }
  });

  test('the expected latent size rounds a size that is not a multiple of the factor down, per batch item', () => {
    const odd = tensor([2, 3, 36, 50]);
    const expected = [2, 4, 4, 6];
    const values = new Float32Array(2 * 4 * 4 * 6).fill(0.5);
    const latent = readEncodeResponse(kl, odd, tensorAnswer(expected, 'float32'), encodeTensor(values, 'float32'));
    assert.deepEqual(latent.dims, expected);
  });

  test('answers that do not say what was asked for are ProtocolMismatch errors that say why', () => {
    const body = encodeTensor(new Float32Array(4 * 4 * 6), 'float32');
    const read =
      (headers: Headers, bytes: Uint8Array = body) =>
      () =>
        readEncodeResponse(kl, image, headers, bytes);
    assert.throws(read(tensorAnswer(null, 'float32')), mismatch(/the shape header is missing/));
    for (const bad of ['1,4,4,6', '[]', '[1,0,4,6]', '[1,4,4.5,6]', '{"shape":[1]}', '"[1,4,4,6]"'])
      assert.throws(read(tensorAnswer(bad, 'float32')), mismatch(/the shape header is ".*", not a JSON list/), bad);
    assert.throws(read(tensorAnswer(shape, null)), mismatch(/the dtype header is missing/));
    assert.throws(read(tensorAnswer(shape, 'int8')), mismatch(/the dtype header is "int8"; expected float16/));
    assert.throws(
      read(tensorAnswer(shape, 'float32'), body.subarray(0, body.length - 4)),
      mismatch(/the body is 380 bytes, but shape \[1,4,4,6\] of float32 needs 384/),
    );
    assert.throws(
      read(tensorAnswer(shape, 'uint8'), new Uint8Array(4 * 4 * 6)),
      mismatch(/the latent came back as uint8/),
    );
    assert.throws(
      read(tensorAnswer([1, 16, 4, 6], 'float32'), encodeTensor(new Float32Array(16 * 4 * 6), 'float32')),
      mismatch(/the latent has shape \[1,16,4,6\]; expected \[1,4,4,6\]/),
    );
  });
});

describe('readDecodeResponse', () => {
  const latent = tensor([2, 4, 2, 3]);
  const [height, width] = [16, 24];
  const plane = height * width;

  for (const model of [tae, kl]) {
    const range = model.family.inputRange;
    test(`uint8 NHWC pixels (partial_postprocess=True) become float NCHW in ${range}`, () => {
      const nhwc = bytes(2 * plane * 3, 7);
      const pixels = readDecodeResponse(model, latent, tensorAnswer([2, height, width, 3], 'uint8'), nhwc);
      assert.deepEqual(pixels.dims, [2, 3, height, width]);
      const planar = new Uint8Array(nhwc.length);
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < plane; i++)
          for (let c = 0; c < 3; c++) planar[(b * 3 + c) * plane + i] = nhwc[(b * plane + i) * 3 + c];
      assertClose(pixels.data, toRange(planar, range), 1e-6, range);
    });

    test(`float NCHW pixels in [-1, 1] (an endpoint that ignores partial_postprocess) become ${range}`, () => {
      const wire = Float32Array.from({ length: 2 * 3 * plane }, (_, i) => ((i % 9) - 4) / 4);
      for (const dtype of ['float32', 'float16'] as const) {
        const pixels = readDecodeResponse(
          model,
          latent,
          tensorAnswer([2, 3, height, width], dtype),
          encodeTensor(wire, dtype),
        );
        assert.deepEqual(pixels.dims, [2, 3, height, width]);
        const expected = range === 'zero-one' ? wire.map((v) => (v + 1) / 2) : wire;
        assertClose(pixels.data, expected, 0, `${range} ${dtype}`);
      }
    });
  }

  test('a shape other than the latent times the factor, or the wrong layout, is a ProtocolMismatch', () => {
    assert.throws(
      () =>
        readDecodeResponse(tae, latent, tensorAnswer([2, 3, height, width], 'uint8'), new Uint8Array(2 * 3 * plane)),
      mismatch(/the image tensor has shape \[2,3,16,24\]; expected \[2,16,24,3\] \(uint8 NHWC\)/),
    );
    assert.throws(
      () =>
        readDecodeResponse(
          tae,
          latent,
          tensorAnswer([2, height, width, 3], 'float32'),
          encodeTensor(new Float32Array(2 * 3 * plane), 'float32'),
        ),
      mismatch(/the image tensor has shape \[2,16,24,3\]; expected \[2,3,16,24\] \(float NCHW\)/),
    );
    assert.throws(
      () =>
        readDecodeResponse(
          kl,
          latent,
          tensorAnswer([1, 3, height, width], 'float32'),
          encodeTensor(new Float32Array(3 * plane), 'float32'),
        ),
      mismatch(/expected \[2,3,16,24\]/),
    );
    assert.throws(
      () => readDecodeResponse(kl, latent, tensorAnswer([2, height, width, 3], 'uint8'), new Uint8Array(10)),
      mismatch(/the body is 10 bytes, but shape \[2,16,24,3\] of uint8 needs 2304/),
    );
  });
});

describe('readResponse', () => {
  test('reads an encode or a decode answer by operation', () => {
    const image = tensor([1, 3, 16, 16]);
    const values = Float32Array.from({ length: 4 * 2 * 2 }, (_, i) => i - 8);
    const headers = tensorAnswer([1, 4, 2, 2], 'float32');
    const body = encodeTensor(values, 'float32');
    assert.deepEqual(readResponse('encode', kl, image, headers, body), readEncodeResponse(kl, image, headers, body));
    const latent = tensor([1, 4, 2, 2]);
    const pixels = bytes(16 * 16 * 3);
    const decoded = tensorAnswer([1, 16, 16, 3], 'uint8');
    assert.deepEqual(
      readResponse('decode', kl, latent, decoded, pixels),
      readDecodeResponse(kl, latent, decoded, pixels),
    );
    assert.throws(() => readResponse('encode', kl, image, decoded, pixels), ProtocolMismatch);
  });
});

describe('round trips', () => {
  test(
    'what encodeRequest sends as a tensor is what a protocol server ' + 'reads back from shape, dtype and body',
    async () => {
      const input = tensor([2, 3, 8, 8]);
      const request = await encodeRequest(ENDPOINT, kl, input);
      const query = new URL(request.url).searchParams;
      const shape = query.getAll('shape').map(Number);
      assert.deepEqual(shape, input.dims);
      assert.equal(query.get('dtype'), 'float32');
      assert.deepEqual(decodeTensor(request.body!, 'float32'), input.data);
    },
  );

  test('a decoded image in 8-bit pixels survives a uint8 answer and comes back in the model range', () => {
    for (const model of [tae, kl]) {
      const range = model.family.inputRange;
      const latent = tensor([1, 4, 1, 2]);
      const planar = bytes(3 * 8 * 16, 3);
      const nhwc = new Uint8Array(planar.length);
      for (let i = 0; i < 8 * 16; i++) for (let c = 0; c < 3; c++) nhwc[i * 3 + c] = planar[c * 8 * 16 + i];
      const pixels = readDecodeResponse(model, latent, tensorAnswer([1, 8, 16, 3], 'uint8'), nhwc);
      assertClose(pixels.data, toRange(planar, range), 1e-6, range);
    }
  });
});

describe('maxResponseBytes', () => {
  test('the expected answer as float32 (sizes rounded up) plus 64 KiB of slack', () => {
    // encode 1x3x36x50 at factor 8: a 4x5x7 latent of at most float32.
    assert.equal(maxResponseBytes('encode', kl, tensor([1, 3, 36, 50])), 4 * 5 * 7 * 4 + 65536);
    // decode 2x4x2x3: two 3x16x24 images of at most float32.
    assert.equal(maxResponseBytes('decode', kl, tensor([2, 4, 2, 3])), 2 * 3 * 16 * 24 * 4 + 65536);
  });

  test('every answer the reader accepts fits', () => {
    const latent = tensor([2, 4, 2, 3]);
    const floatImage = encodeTensor(new Float32Array(2 * 3 * 16 * 24), 'float32');
    assert.ok(floatImage.length <= maxResponseBytes('decode', kl, latent));
    const image = tensor([1, 3, 32, 48]);
    const floatLatent = encodeTensor(new Float32Array(4 * 4 * 6), 'float32');
    assert.ok(floatLatent.length <= maxResponseBytes('encode', kl, image));
  });
});
