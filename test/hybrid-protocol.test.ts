/**
 * The Hybrid Inference protocol, served: requests built exactly as diffusers' client builds them
 * (huggingface/diffusers src/diffusers/utils/remote_utils.py: prepare_encode / prepare_decode, sent
 * with `requests.post(endpoint, data=..., params=..., headers=...)`), answers checked byte for byte
 * against the GraphQL mutations of the same gateway. Plus the packing functions against a literal
 * transcription of diffusers' view/permute/reshape.
 */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { packedLatentSize, packLatents, unpackLatents } from '../src/protocol/packing.ts';
import { decodeTensor, encodeTensor } from '../src/tensors/dtype.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { writeTinyKlModel } from './support/kl-model.ts';
import { relativeL2 } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';

const ENCODE =
  'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape dtype data } route { route } } }';
const DECODE =
  'mutation($input: DecodeInput!) { decode(input: $input) { images { data width height } route { route } } }';

let gateway: InProcessGateway;
let dataDir: string;
const image = (name: string) => readFileSync(join(IMAGES_DIR, name));

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'latentgate-hybrid-'));
  // The shared tiny autoencoders plus a hand-checkable AutoencoderKL ([-1, 1] pixels, sd15 scaling).
  const modelsDir = join(dataDir, 'models');
  mkdirSync(modelsDir);
  for (const id of ['taef2', 'taesana']) symlinkSync(join(MODELS_DIR, id), join(modelsDir, id), 'dir');
  writeTinyKlModel(join(modelsDir, 'tiny-sd'), { family: 'sd15' });
  gateway = await startInProcessGateway({
    MODELS_DIR: modelsDir,
    DATA_DIR: dataDir,
    DEVICE_MEMORY: '4GiB',
    MAX_IMAGE_PIXELS: '300000',
    MAX_LATENT_BYTES: '4MiB',
  });
});
after(async () => {
  await gateway?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * POST as python-requests does: its default headers (User-Agent, Accept-Encoding, Accept: * / *,
 * Connection, Content-Length) overridden by the call's `headers`; the query string as requests
 * encodes a params dict (lists repeated, bools True/False). Written out by hand, not with the
 * gateway's own helpers.
 */
function pythonPost(
  path: string,
  query: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
  method = 'POST',
): Promise<Answer> {
  const url = new URL(`${gateway.url}${path}${query ? `?${query}` : ''}`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method,
        headers: {
          'User-Agent': 'python-requests/2.32.3',
          'Accept-Encoding': 'gzip, deflate',
          Accept: '*/*',
          Connection: 'keep-alive',
          'Content-Length': String(body.length),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(Buffer.from(body));
  });
}

/**
 * prepare_decode's params, in its order: image_format, output_type, partial_postprocess, shape, dtype, then scaling.
 */
function decodeQuery(
  shape: number[],
  dtype: string,
  o: { imageFormat?: string; outputType?: string; partial?: boolean; extra?: string } = {},
): string {
  const parts = [
    `image_format=${o.imageFormat ?? 'jpg'}`,
    `output_type=${o.outputType ?? 'pil'}`,
    `partial_postprocess=${o.partial ? 'True' : 'False'}`,
    ...shape.map((d) => `shape=${d}`),
    `dtype=${dtype}`,
  ];
  return [...parts, ...(o.extra ? [o.extra] : [])].join('&');
}

/** prepare_decode's headers. */
function decodeHeaders(accept: string): Record<string, string> {
  return { 'Content-Type': 'tensor/binary', Accept: accept };
}

async function graphqlEncode(model: string, png: Buffer, extra: Record<string, unknown> = {}) {
  const response = await gateway.graphql(ENCODE, {
    input: { model, image: { base64: png.toString('base64') }, ...extra },
  });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return {
    shape: response.data.encode.latent.shape as number[],
    bytes: Buffer.from(response.data.encode.latent.data, 'base64'),
  };
}

async function graphqlDecodePng(latent: Buffer, shape: number[]): Promise<Buffer> {
  const response = await gateway.graphql(DECODE, {
    input: {
      model: 'taef2',
      latent: { tensor: { data: latent.toString('base64'), shape, dtype: 'FLOAT32' } },
      format: 'PNG',
    },
  });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  return Buffer.from(response.data.decode.images[0].data, 'base64');
}

async function rawPixels(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes).removeAlpha().raw().toBuffer();
}

let astronaut: { shape: number[]; bytes: Buffer } | undefined;
async function astronautLatent() {
  astronaut ??= await graphqlEncode('taef2', image('astronaut.png'));
  return astronaut;
}

describe('packing (Flux `_pack_latents` / `_unpack_latents`)', () => {
  /** torch's permute of a contiguous tensor, literally. */
  function permute(data: Float32Array, shape: number[], order: number[]): Float32Array {
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
    const outShape = order.map((o) => shape[o]);
    const out = new Float32Array(data.length);
    const index = new Array(outShape.length).fill(0);
    for (let n = 0; n < out.length; n++) {
      let source = 0;
      for (let d = 0; d < order.length; d++) source += index[d] * strides[order[d]];
      out[n] = data[source];
      for (let d = outShape.length - 1; d >= 0; d--) {
        if (++index[d] < outShape[d]) break;
        index[d] = 0;
      }
    }
    return out;
  }

  test('pack is view(B, C, h/2, 2, w/2, 2).permute(0, 2, 4, 1, 3, 5); unpack inverts it', () => {
    const [b, c, h, w] = [2, 16, 6, 10];
    const data = Float32Array.from({ length: b * c * h * w }, (_, i) => i * 0.5 - 7);
    const packed = packLatents(data, [b, c, h, w]);
    assert.deepEqual(packed.shape, [b, (h / 2) * (w / 2), c * 4]);
    assert.deepEqual(packed.data, permute(data, [b, c, h / 2, 2, w / 2, 2], [0, 2, 4, 1, 3, 5]));
    // _unpack_latents: view(B, h/2, w/2, C, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(B, C, h, w)
    const unpacked = unpackLatents(packed.data, packed.shape, h * 8, w * 8, 8);
    assert.deepEqual(unpacked.dims, [b, c, h, w]);
    assert.deepEqual(unpacked.data, permute(packed.data, [b, h / 2, w / 2, c, 2, 2], [0, 3, 1, 4, 2, 5]));
    assert.deepEqual(unpacked.data, data);
  });

  test('FLUX.1 at 1024x1024 is [1, 4096, 64]; sizes follow 2 * (H // 16)', () => {
    assert.deepEqual(packedLatentSize(1024, 1024, 8), { latentHeight: 128, latentWidth: 128 });
    assert.deepEqual(packedLatentSize(1000, 1208, 8), { latentHeight: 124, latentWidth: 150 });
    const packed = packLatents(new Float32Array(16 * 128 * 128), [1, 16, 128, 128]);
    assert.deepEqual(packed.shape, [1, 4096, 64]);
    assert.throws(() => unpackLatents(packed.data, packed.shape, 1024, 1040, 8), /tokens/);
    assert.throws(() => packLatents(new Float32Array(3 * 3), [1, 1, 3, 3]), /even/);
  });
});

describe('encode as remote_encode sends it', () => {
  test('PNG body, no parameters, no headers: the raw latent, byte for byte the GraphQL latent', async () => {
    for (const [model, name] of [
      ['taef2', 'astronaut.png'],
      ['taesana', 'coffee.png'],
    ] as const) {
      const reference = await graphqlEncode(model, image(name));
      const answer = await pythonPost(`/v1/vae/${model}/encode`, '', image(name));
      assert.equal(answer.status, 200, answer.body.toString());
      assert.equal(answer.headers['content-type'], 'tensor/binary');
      assert.deepEqual(JSON.parse(answer.headers.shape as string), reference.shape);
      assert.equal(answer.headers.dtype, 'float32');
      assert.ok(answer.body.equals(reference.bytes), `${model}: latent bytes differ`);
    }
  });

  test('scaling_factor and shift_factor (FLUX values) give (z - shift) * scale, as GraphQL does', async () => {
    const reference = await graphqlEncode('taef2', image('astronaut.png'), {
      scalingFactor: 0.3611,
      shiftFactor: 0.1159,
    });
    const answer = await pythonPost(
      '/v1/vae/taef2/encode',
      'scaling_factor=0.3611&shift_factor=0.1159',
      image('astronaut.png'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    assert.ok(answer.body.equals(reference.bytes));
  });

  test('a tensor body with one shape parameter per dimension; the answer keeps its dtype', async () => {
    const { shape, bytes } = await astronautLatent();
    const pixels = await rawPixels(image('astronaut.png'));
    const [h, w] = [512, 512];
    const tensor = new Float32Array(3 * h * w);
    // VaeImageProcessor's [-1, 1]
    for (let i = 0; i < h * w; i++)
      for (let c = 0; c < 3; c++) tensor[c * h * w + i] = (pixels[i * 3 + c] / 255) * 2 - 1;
    const reference = decodeTensor(bytes, 'float32');
    for (const dtype of ['float32', 'bfloat16'] as const) {
      const answer = await pythonPost(
        '/v1/vae/taef2/encode',
        `shape=1&shape=3&shape=${h}&shape=${w}&dtype=${dtype}`,
        encodeTensor(tensor, dtype),
      );
      assert.equal(answer.status, 200, answer.body.toString());
      assert.equal(answer.headers.dtype, dtype);
      assert.deepEqual(JSON.parse(answer.headers.shape as string), shape);
      const values = decodeTensor(answer.body, dtype);
      if (dtype === 'float32') {
        // (u / 255) * 2 - 1 and back is not always the same float as u / 255: close, not equal.
        let max = 0;
        for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] - reference[i]));
        assert.ok(max < 1e-4, `max abs diff ${max}`);
      } else {
        // bfloat16 input pixels and output latent: 8 bits of mantissa each way.
        assert.ok(relativeL2(values, reference) < 0.01, `relative L2 ${relativeL2(values, reference)}`);
      }
    }
  });
});

describe('decode as remote_decode sends it', () => {
  test('output_type=pil, image_format=png, Accept: image/png: the PNG GraphQL returns', async () => {
    const { shape, bytes } = await astronautLatent();
    const reference = await graphqlDecodePng(bytes, shape);
    // remote_decode's default do_scaling=True arrives as do_scaling=True when no scaling_factor is given.
    const answer = await pythonPost(
      '/v1/vae/taef2/decode',
      decodeQuery(shape, 'float32', { imageFormat: 'png', extra: 'do_scaling=True' }),
      bytes,
      decodeHeaders('image/png'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.headers['content-type'], 'image/png');
    assert.ok(answer.body.equals(reference), 'PNG bytes differ');
    assert.ok((await rawPixels(answer.body)).equals(await rawPixels(reference)));
  });

  test('the client default, image_format=jpg with Accept: image/jpeg, is a JPEG', async () => {
    const { shape, bytes } = await astronautLatent();
    const answer = await pythonPost(
      '/v1/vae/taef2/decode',
      decodeQuery(shape, 'float32'),
      bytes,
      decodeHeaders('image/jpeg'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.headers['content-type'], 'image/jpeg');
    assert.deepEqual([...answer.body.subarray(0, 2)], [0xff, 0xd8]);
    assert.equal((await sharp(answer.body).metadata()).width, 512);
  });

  test('output_type=pt, partial_postprocess=True: uint8 NHWC, the PNG pixels exactly', async () => {
    const { shape, bytes } = await astronautLatent();
    const pixels = await rawPixels(await graphqlDecodePng(bytes, shape));
    const answer = await pythonPost(
      '/v1/vae/taef2/decode',
      decodeQuery(shape, 'float32', { outputType: 'pt', partial: true }),
      bytes,
      decodeHeaders('tensor/binary'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    assert.equal(answer.headers['content-type'], 'tensor/binary');
    assert.equal(answer.headers.dtype, 'uint8');
    assert.deepEqual(JSON.parse(answer.headers.shape as string), [1, 512, 512, 3]);
    assert.ok(answer.body.equals(pixels), 'uint8 pixels differ from the PNG');
  });

  test('output_type=pt: float NCHW in [-1, 1], in the dtype sent', async () => {
    const { shape, bytes } = await astronautLatent();
    const pixels = await rawPixels(await graphqlDecodePng(bytes, shape));
    const half = encodeTensor(decodeTensor(bytes, 'float32'), 'float16');
    for (const [dtype, body] of [
      ['float32', bytes],
      ['float16', half],
    ] as const) {
      const answer = await pythonPost(
        '/v1/vae/taef2/decode',
        decodeQuery(shape, dtype, { outputType: 'pt' }),
        body,
        decodeHeaders('tensor/binary'),
      );
      assert.equal(answer.status, 200, answer.body.toString());
      assert.equal(answer.headers.dtype, dtype);
      assert.deepEqual(JSON.parse(answer.headers.shape as string), [1, 3, 512, 512]);
      const values = decodeTensor(answer.body, dtype);
      // VaeImageProcessor.postprocess: (x / 2 + 0.5).clamp(0, 1) * 255, rounded.
      let worst = 0;
      const plane = 512 * 512;
      for (let i = 0; i < plane; i++) {
        for (let c = 0; c < 3; c++) {
          const v = Math.round(Math.min(1, Math.max(0, values[c * plane + i] / 2 + 0.5)) * 255);
          worst = Math.max(worst, Math.abs(v - pixels[i * 3 + c]));
        }
      }
      assert.ok(worst <= (dtype === 'float32' ? 1 : 2), `${dtype}: a pixel is off by ${worst}`);
    }
  });

  test('a packed latent with height and width decodes like the unpacked one', async () => {
    const { shape, bytes } = await astronautLatent();
    const reference = await graphqlDecodePng(bytes, shape);
    const packed = packLatents(decodeTensor(bytes, 'float32'), shape as [number, number, number, number]);
    assert.deepEqual(packed.shape, [1, 32 * 32, 128]);
    const query = decodeQuery(packed.shape, 'float32', { imageFormat: 'png', extra: 'height=512&width=512' });
    const answer = await pythonPost(
      '/v1/vae/taef2/decode',
      query,
      encodeTensor(packed.data, 'float32'),
      decodeHeaders('image/png'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    assert.ok(answer.body.equals(reference), 'packed decode differs');
  });

  test('scaling_factor and shift_factor undo (z - shift) * scale', async () => {
    const { shape, bytes } = await astronautLatent();
    const reference = await rawPixels(await graphqlDecodePng(bytes, shape));
    const scaled = decodeTensor(bytes, 'float32').map((z) => (z - 0.1159) * 0.3611);
    const answer = await pythonPost(
      '/v1/vae/taef2/decode',
      decodeQuery(shape, 'float32', { imageFormat: 'png', extra: 'scaling_factor=0.3611&shift_factor=0.1159' }),
      encodeTensor(scaled, 'float32'),
      decodeHeaders('image/png'),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    const pixels = await rawPixels(answer.body);
    let worst = 0;
    for (let i = 0; i < pixels.length; i++) worst = Math.max(worst, Math.abs(pixels[i] - reference[i]));
    assert.ok(worst <= 1, `a pixel is off by ${worst}`);
  });
});

test(
  'an AutoencoderKL ([-1, 1] pixels): raw latent without parameters, ' +
    'do_scaling=True uses its 0.18215, float output unmapped',
  async () => {
    const [width, height] = [48, 32];
    const pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 5) * 11) % 256;
    const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .png()
      .toBuffer();
    const reference = await graphqlEncode('tiny-sd', png, { scalingFactor: 1, shiftFactor: 0 });
    const encoded = await pythonPost('/v1/vae/tiny-sd/encode', '', png);
    assert.equal(encoded.status, 200, encoded.body.toString());
    assert.ok(encoded.body.equals(reference.bytes), 'raw latent differs');
    const z = decodeTensor(encoded.body, 'float32');
    const scaled = encodeTensor(
      z.map((v) => v * 0.18215),
      'float32',
    );
    const decoded = await pythonPost(
      '/v1/vae/tiny-sd/decode',
      decodeQuery([1, 4, height / 8, width / 8], 'float32', { outputType: 'pt', extra: 'do_scaling=True' }),
      scaled,
      decodeHeaders('tensor/binary'),
    );
    assert.equal(decoded.status, 200, decoded.body.toString());
    assert.deepEqual(JSON.parse(decoded.headers.shape as string), [1, 3, height, width]);
    // The tiny decoder copies latent channels 0..2 to RGB, 8x nearest: its [-1, 1] output is the latent itself.
    const out = decodeTensor(decoded.body, 'float32');
    const [h, w] = [height / 8, width / 8];
    let worst = 0;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
          worst = Math.max(worst, Math.abs(out[(c * height + y) * width + x] - z[(c * h + (y >> 3)) * w + (x >> 3)]));
    assert.ok(worst < 1e-5, `off by ${worst}`);
  },
);

describe('errors are JSON {"error": ...} with the gateway status', () => {
  async function expectError(answer: Promise<Answer>, status: number, code: string, mentions: RegExp) {
    const { status: got, headers, body } = await answer;
    assert.equal(got, status, body.toString());
    assert.match(String(headers['content-type']), /application\/json/);
    const parsed = JSON.parse(body.toString()) as { error: string; code: string };
    assert.equal(parsed.code, code);
    assert.match(parsed.error, mentions);
  }

  test('each bad request names what was wrong', async () => {
    const { shape, bytes } = await astronautLatent();
    const tensor = decodeHeaders('tensor/binary');
    await expectError(
      pythonPost('/v1/vae/taef2/decode', decodeQuery(shape, 'float32'), bytes.subarray(1), tensor),
      400,
      'LATENT_SHAPE_MISMATCH',
      /needs 524288 bytes/,
    );
    await expectError(
      pythonPost('/v1/vae/nope/decode', decodeQuery(shape, 'float32'), bytes, tensor),
      404,
      'UNKNOWN_MODEL',
      /unknown model "nope"/,
    );
    await expectError(
      pythonPost('/v1/vae/taesana/decode', decodeQuery(shape, 'float32'), bytes, tensor),
      400,
      'UNSUPPORTED_OPERATION',
      /supports: encode/,
    );
    await expectError(
      pythonPost(
        '/v1/vae/taef2/decode',
        decodeQuery([1, 32, 256, 129], 'float32'),
        // Refused from the shape alone, whatever the body.
        Buffer.alloc(8),
        tensor,
      ),
      413,
      'LATENT_TOO_LARGE',
      /latent \[1,32,256,129\] is 4227072 bytes; the limit is 4194304 bytes/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/decode', decodeQuery([1, 1024, 128], 'float32'), bytes, tensor),
      400,
      'LATENT_SHAPE_MISMATCH',
      /height and width/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/decode', decodeQuery([1, 4, 128, 256], 'float32'), bytes, tensor),
      400,
      'LATENT_CHANNELS_MISMATCH',
      /4 channels.*takes 32/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/decode', decodeQuery(shape, 'float64'), bytes, tensor),
      400,
      'UNSUPPORTED_DTYPE',
      /float64/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/decode', decodeQuery(shape, 'float32', { outputType: 'mp4' }), bytes, tensor),
      400,
      'BAD_REQUEST',
      /mp4.*allowed: pil, pt/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/encode', '', Buffer.from('not an image')),
      400,
      'INVALID_IMAGE',
      /PNG, JPEG or WebP/,
    );
    // The same limits as GraphQL: this gateway takes at most 300000 pixels.
    await expectError(
      pythonPost('/v1/vae/taef2/encode', '', image('astronaut-1024.png')),
      413,
      'IMAGE_TOO_LARGE',
      /limit is 300000/,
    );
    await expectError(
      pythonPost('/v1/vae/taef2/encode', '', Buffer.alloc(0), {}, 'GET'),
      400,
      'BAD_REQUEST',
      /takes POST/,
    );
  });

  test('nothing stays reserved', async () => {
    const health = (await (await fetch(`${gateway.url}/healthz`)).json()) as {
      device: { reservedBytes: number; running: number };
    };
    assert.equal(health.device.reservedBytes, 0);
    assert.equal(health.device.running, 0);
  });
});
