/**
 * The shipped entry point, end to end: `bin/latentgate.js serve` as its own process, configured by
 * the environment, serving GraphQL (JSON and multipart), result URLs, the Hybrid Inference protocol
 * and /healthz, and closing cleanly on SIGTERM. The other gateway tests run the same services in
 * their own process (test/support/in-process.ts); this one, the CLI, playground and Redis tests
 * keep the real process covered.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const ENCODE = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape dtype data url sha256 } } }';
const DECODE = 'mutation($input: DecodeInput!) { decode(input: $input) { images { width height mimeType } } }';

let gateway: RunningGateway;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-smoke-'));
const coffee = new Uint8Array(readFileSync(join(IMAGES_DIR, 'coffee.png')));

before(async () => {
  gateway = await startGateway({ MODELS_DIR, DATA_DIR: dataDir, DEVICE_MEMORY: '4GiB' });
});
after(async () => {
  await gateway?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

test('serve starts, says where it listens and what it serves', async () => {
  assert.match(gateway.output(), /listening on http:\/\/127\.0\.0\.1:\d+\/graphql; models: taef2, taesana/);
  const health = await fetch(`${gateway.url}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
});

test('encode (multipart upload and base64) and decode by latent URL over GraphQL, and the URL itself', async () => {
  const uploaded = await gateway.upload(
    ENCODE,
    { input: { model: 'taef2', image: { upload: null }, delivery: 'URL' } },
    'variables.input.image.upload',
    coffee,
    'coffee.png',
  );
  assert.equal(uploaded.errors, undefined, JSON.stringify(uploaded.errors));
  const { latent } = uploaded.data.encode;
  assert.deepEqual(latent.shape, [1, 32, 50, 75]);
  assert.ok(latent.url.startsWith(`${gateway.url}/v1/latents/`), latent.url);

  const inline = await gateway.graphql(ENCODE, {
    input: { model: 'taef2', image: { base64: Buffer.from(coffee).toString('base64') } },
  });
  assert.equal(inline.errors, undefined, JSON.stringify(inline.errors));
  assert.equal(inline.data.encode.latent.sha256, latent.sha256);

  const raw = await fetch(latent.url);
  assert.equal(raw.status, 200);
  assert.equal(raw.headers.get('shape'), JSON.stringify(latent.shape));
  assert.deepEqual(Buffer.from(await raw.arrayBuffer()), Buffer.from(inline.data.encode.latent.data, 'base64'));

  const decoded = await gateway.graphql(DECODE, { input: { model: 'taef2', latent: { url: latent.url } } });
  assert.equal(decoded.errors, undefined, JSON.stringify(decoded.errors));
  assert.deepEqual(decoded.data.decode.images, [{ width: 600, height: 400, mimeType: 'image/png' }]);
});

test('the Hybrid Inference encode endpoint answers with the same latent', async () => {
  const inline = await gateway.graphql(ENCODE, {
    input: { model: 'taef2', image: { base64: Buffer.from(coffee).toString('base64') } },
  });
  const answer = await fetch(`${gateway.url}/v1/vae/taef2/encode`, { method: 'POST', body: coffee });
  assert.equal(answer.status, 200);
  assert.equal(answer.headers.get('content-type'), 'tensor/binary');
  assert.equal(answer.headers.get('shape'), '[1,32,50,75]');
  assert.equal(Buffer.from(await answer.arrayBuffer()).toString('base64'), inline.data.encode.latent.data);
});

test('SIGTERM closes the gateway and the process exits with 0', async () => {
  const exited = new Promise<number | null>((resolve) => gateway.process.once('exit', (code) => resolve(code)));
  gateway.process.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(gateway.output(), /SIGTERM: draining/);
});
