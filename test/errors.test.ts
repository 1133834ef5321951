/** Every bad input gets a typed, actionable error, and the server keeps serving after each. */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';

const ENCODE = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape data url } } }';
const DECODE = 'mutation($input: DecodeInput!) { decode(input: $input) { images { width } } }';

let gateway: InProcessGateway;
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const coffee = () => new Uint8Array(readFileSync(join(IMAGES_DIR, 'coffee.png')));

before(async () => {
  gateway = await startInProcessGateway({
    MODELS_DIR,
    MAX_IMAGE_PIXELS: '300000',
    MAX_IMAGE_BYTES: '600000',
    MAX_LATENT_BYTES: '1MiB',
    RESULT_TTL_SECONDS: '1',
  });
});
after(async () => gateway?.stop());

async function expectError(query: string, input: Record<string, unknown>, code: string, mentions: RegExp) {
  const response = await gateway.graphql(query, { input });
  assert.ok(response.errors?.length, `expected ${code}, got data ${JSON.stringify(response.data)?.slice(0, 200)}`);
  const [error] = response.errors!;
  assert.equal(error.extensions?.code, code, `${error.message} ${JSON.stringify(error.extensions)}`);
  assert.match(error.message, mentions);
  const health = await fetch(`${gateway.url}/healthz`);
  assert.equal(health.status, 200, 'server stopped serving');
  return error;
}

describe('typed errors', () => {
  test('unknown model names the available ones', async () => {
    const error = await expectError(
      ENCODE,
      { model: 'sdxl-turbo', image: { base64: b64(coffee()) } },
      'UNKNOWN_MODEL',
      /sdxl-turbo.*available: taef2, taesana/,
    );
    assert.deepEqual(error.extensions!.available, ['taef2', 'taesana']);
  });

  test('an operation the model lacks names what it supports', async () => {
    await expectError(
      DECODE,
      { model: 'taesana', latent: { tensor: { data: b64(new Uint8Array(32 * 4 * 4)), shape: [1, 32, 1, 1] } } },
      'UNSUPPORTED_OPERATION',
      /taesana.*decode.*supports: encode/,
    );
  });

  test('bytes that are not an image', async () => {
    await expectError(
      ENCODE,
      { model: 'taef2', image: { base64: b64(new TextEncoder().encode('definitely not a png file')) } },
      'INVALID_IMAGE',
      /PNG, JPEG or WebP/,
    );
  });

  test('an image in a format that is not accepted', async () => {
    const gif = await sharp({ create: { width: 16, height: 16, channels: 3, background: 'red' } })
      .gif()
      .toBuffer();
    await expectError(ENCODE, { model: 'taef2', image: { base64: b64(gif) } }, 'INVALID_IMAGE', /found gif/);
  });

  test('a truncated PNG', async () => {
    const png = coffee();
    await expectError(
      ENCODE,
      { model: 'taef2', image: { base64: b64(png.subarray(0, png.length / 2)) } },
      'INVALID_IMAGE',
      /could not be decoded|not a PNG/,
    );
  });

  test('an image over the pixel limit', async () => {
    const big = await sharp({ create: { width: 640, height: 640, channels: 3, background: 'blue' } })
      .png()
      .toBuffer();
    const error = await expectError(
      ENCODE,
      { model: 'taef2', image: { base64: b64(big) } },
      'IMAGE_TOO_LARGE',
      /640x640 = 409600 pixels; the limit is 300000/,
    );
    assert.equal(error.extensions!.maxPixels, 300000);
  });

  test('an image over the byte limit', async () => {
    const big = new Uint8Array(readFileSync(join(IMAGES_DIR, 'astronaut-1024.png')));
    await expectError(
      ENCODE,
      { model: 'taef2', image: { base64: b64(big) } },
      'IMAGE_TOO_LARGE',
      /limit is 600000 bytes|600000-byte limit/,
    );
  });

  test('both or neither image inputs', async () => {
    for (const image of [{}, { base64: b64(coffee()), upload: null }])
      await expectError(ENCODE, { model: 'taef2', image }, 'BAD_REQUEST', /exactly one key.*"ImageSource"/i);
  });

  test('both or neither latent inputs', async () => {
    const tensor = { data: b64(new Uint8Array(32 * 4)), shape: [1, 32, 1, 1] };
    for (const latent of [{}, { tensor, url: `${gateway.url}/v1/latents/00000000-0000-0000-0000-000000000000` }])
      await expectError(DECODE, { model: 'taef2', latent }, 'BAD_REQUEST', /exactly one key.*"LatentSource"/i);
  });

  test('request errors (variables, validation, syntax) are BAD_REQUEST with the HTTP status Yoga gives', async () => {
    const requests = [
      { status: 400, body: { query: ENCODE, variables: { input: { model: 'taef2', image: {} } } } },
      { status: 400, body: { query: 'mutation { encode(input: { model: "taef2", image: {} }) { model } }' } },
      { status: 400, body: { query: 'mutation { encode(' } },
    ];
    for (const { status, body } of requests) {
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
        body: JSON.stringify(body),
      });
      const { data, errors } = await response.json();
      assert.equal(response.status, status, body.query);
      assert.equal(data, undefined, 'a request error has no data');
      assert.equal(errors[0].extensions?.code, 'BAD_REQUEST', JSON.stringify(errors));
    }
  });

  test('a subscription over SSE with variables that do not coerce is BAD_REQUEST too', async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription($id: ID!) { jobProgress(id: $id) { seq } }', variables: {} }),
    });
    const events = await response.text();
    assert.equal(response.status, 400);
    const next = /event: next\ndata: (.*)\n/.exec(events);
    assert.ok(next, events);
    const { errors } = JSON.parse(next[1]);
    assert.match(errors[0].message, /"\$id" of required type "ID!" was not provided/);
    assert.equal(errors[0].extensions?.code, 'BAD_REQUEST', next[1]);
  });

  test('base64 that is not base64', async () => {
    await expectError(ENCODE, { model: 'taef2', image: { base64: 'not*base64!' } }, 'BAD_REQUEST', /not valid base64/);
  });

  test('latent bytes that do not match shape and dtype', async () => {
    const error = await expectError(
      DECODE,
      {
        model: 'taef2',
        latent: { tensor: { data: b64(new Uint8Array(100)), shape: [1, 32, 4, 4], dtype: 'FLOAT16' } },
      },
      'LATENT_SHAPE_MISMATCH',
      /100 bytes, but shape \[1,32,4,4\] of float16 needs 1024 bytes/,
    );
    assert.equal(error.extensions!.expectedBytes, 1024);
  });

  test('a latent over the size limits', async () => {
    const error = await expectError(
      DECODE,
      { model: 'taef2', latent: { tensor: { data: b64(new Uint8Array(1_200_000)), shape: [1, 32, 100, 375] } } },
      'LATENT_TOO_LARGE',
      /more than the 1048576-byte limit/,
    );
    assert.equal(error.extensions!.maxBytes, 1048576);
    await expectError(
      DECODE,
      { model: 'taef2', latent: { tensor: { data: b64(new Uint8Array(17 * 32 * 4)), shape: [17, 32, 1, 1] } } },
      'LATENT_TOO_LARGE',
      /latent batch is 17; the limit is 16/,
    );
  });

  test('a latent that is not 4-D', async () => {
    await expectError(
      DECODE,
      { model: 'taef2', latent: { tensor: { data: b64(new Uint8Array(32 * 16 * 4)), shape: [32, 4, 4] } } },
      'LATENT_SHAPE_MISMATCH',
      /4 positive integers/,
    );
  });

  test('a latent with the wrong channel count', async () => {
    await expectError(
      DECODE,
      { model: 'taef2', latent: { tensor: { data: b64(new Uint8Array(16 * 4 * 4 * 4)), shape: [1, 16, 4, 4] } } },
      'LATENT_CHANNELS_MISMATCH',
      /16 channels; model "taef2" takes 32/,
    );
  });

  test('a dtype the schema does not offer', async () => {
    const response = await gateway.graphql(DECODE, {
      input: { model: 'taef2', latent: { tensor: { data: '', shape: [1, 32, 1, 1], dtype: 'INT8' } } },
    });
    assert.match(response.errors![0].message, /INT8.*LatentDType|LatentDType.*INT8/);
  });

  test('unknown, foreign and expired latent URLs', async () => {
    await expectError(
      DECODE,
      { model: 'taef2', latent: { url: `${gateway.url}/v1/latents/00000000-0000-0000-0000-000000000000` } },
      'NOT_FOUND',
      /no latent/,
    );
    await expectError(
      DECODE,
      { model: 'taef2', latent: { url: 'http://example.com/v1/latents/00000000-0000-0000-0000-000000000000' } },
      'INVALID_URL',
      /not a latent URL of this gateway/,
    );
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: 'green' } })
      .png()
      .toBuffer();
    const encoded = await gateway.graphql(ENCODE, {
      input: { model: 'taef2', image: { base64: b64(small) }, delivery: 'URL' },
    });
    const url = encoded.data.encode.latent.url;
    assert.equal((await fetch(url)).status, 200);
    await new Promise((r) => setTimeout(r, 1600));
    const gone = await fetch(url);
    assert.equal(gone.status, 410);
    assert.equal((await gone.json()).code, 'EXPIRED');
    await expectError(DECODE, { model: 'taef2', latent: { url } }, 'EXPIRED', /expired/);
    assert.equal((await fetch(`${gateway.url}/v1/latents/not-an-id`)).status, 404);
  });

  test('still serves real work after all of the above', async () => {
    const response = await gateway.graphql(ENCODE, { input: { model: 'taef2', image: { base64: b64(coffee()) } } });
    assert.equal(response.errors, undefined, JSON.stringify(response.errors));
    assert.deepEqual(response.data.encode.latent.shape, [1, 32, 50, 75]);
  });
});
