/**
 * The pixel rules end to end, over a real gateway: an Adobe RGB-tagged photo and an odd-sized one
 * encode to diffusers' latents (PyTorch references made from Pillow-read, Pillow-resized pixels),
 * through GraphQL and the Hybrid Inference endpoint, and both say which resize ran.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeTensor } from '../src/tensors/dtype.ts';
import { readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { runCli } from './support/cli.ts';
import { maxAbsDiff } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR, REFERENCE_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const ENCODE = `mutation Encode($input: EncodeInput!) {
  encode(input: $input) {
    width height originalWidth originalHeight resized
    resize { method from { width height } to { width height } }
    latent { shape data sha256 }
  }
}`;
// Other references match to ~5e-5; before this change the tagged image was 1.65 away and chelsea 4.5% (relative L2).
const TOLERANCE = 1e-4;

let gateway: RunningGateway;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-pixels-'));

before(async () => {
  gateway = await startGateway({ MODELS_DIR, DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '4GiB' });
});
after(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const image = (name: string) => readFileSync(join(IMAGES_DIR, name));

async function reference(name: string): Promise<Float32Array> {
  const tensors = (await readSafetensors(join(REFERENCE_DIR, 'taef2', `${name}.safetensors`))).tensors;
  return tensorToFloat32(tensors.get('latent')!);
}

async function encode(name: string, extra: Record<string, unknown> = {}) {
  const response = await gateway.graphql(ENCODE, {
    input: {
      model: 'taef2',
      image: { base64: image(name).toString('base64') },
      scalingFactor: 1,
      shiftFactor: 0,
      ...extra,
    },
  });
  assert.equal(response.errors, undefined, JSON.stringify(response.errors));
  const result = response.data.encode;
  return { ...result, values: decodeTensor(Buffer.from(result.latent.data, 'base64'), 'float32') };
}

async function hybridEncode(name: string, query = '') {
  const response = await fetch(`${gateway.url}/v1/vae/taef2/encode${query}`, { method: 'POST', body: image(name) });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

describe('GraphQL encode reads pixels as diffusers does', () => {
  test('an Adobe RGB-tagged image encodes from its stored values (the reference latent)', async () => {
    const result = await encode('coffee-adobergb.png');
    assert.equal(result.resize, null);
    const diff = maxAbsDiff(result.values, await reference('coffee-adobergb'));
    console.log(`coffee-adobergb max abs diff ${diff}`);
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
  });

  test('colourManagement SRGB converts through the profile, so the latent moves', async () => {
    const stored = await encode('coffee-adobergb.png');
    const managed = await encode('coffee-adobergb.png', { colourManagement: 'SRGB' });
    assert.ok(maxAbsDiff(stored.values, managed.values) > 0.05);
  });

  test('an odd-sized image is resized with Pillow LANCZOS to the reference latent, and says so', async () => {
    const result = await encode('chelsea.png');
    assert.equal(result.resized, true);
    assert.deepEqual(result.resize, {
      method: 'PIL_LANCZOS',
      from: { width: 451, height: 300 },
      to: { width: 448, height: 296 },
    });
    assert.deepEqual(result.latent.shape, [1, 32, 37, 56]);
    const diff = maxAbsDiff(result.values, await reference('chelsea-resized'));
    console.log(`chelsea-resized max abs diff ${diff}`);
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
  });
});

describe('Hybrid Inference encode reads pixels the same way', () => {
  test('same latent bytes as GraphQL, and the resize in a header', async () => {
    const answer = await hybridEncode('chelsea.png');
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get('x-latentgate-resize'), 'PIL_LANCZOS from=451x300 to=448x296');
    const graphql = await encode('chelsea.png');
    assert.ok(answer.body.equals(Buffer.from(graphql.latent.data, 'base64')));
  });

  test('no resize says none; colour_management=srgb is the explicit opt-in', async () => {
    const stored = await hybridEncode('coffee-adobergb.png');
    assert.equal(stored.headers.get('x-latentgate-resize'), 'none');
    const diff = maxAbsDiff(decodeTensor(stored.body, 'float32'), await reference('coffee-adobergb'));
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff}`);
    const managed = await hybridEncode('coffee-adobergb.png', '?colour_management=srgb');
    assert.equal(managed.status, 200);
    assert.ok(!managed.body.equals(stored.body));
    const bad = await hybridEncode('coffee-adobergb.png', '?colour_management=p3');
    assert.equal(bad.status, 400);
    assert.match(bad.body.toString(), /colour_management/);
  });
});

const cli = (args: string[]) => runCli(args, dir);

describe('latentgate encode reads pixels the same way', () => {
  test('the summary names the resize, the latent is the reference; --colour-management is checked', async () => {
    const out = join(dir, 'chelsea.safetensors');
    const args = ['encode', join(IMAGES_DIR, 'chelsea.png'), '--model', 'taef2', '--out', out, '--url', gateway.url];
    const run = await cli([...args, '--colour-management', 'none']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /448x296 \(resized from 451x300, PIL_LANCZOS\)/);
    const latent = (await readSafetensors(out)).tensors.get('latent')!;
    assert.ok(maxAbsDiff(tensorToFloat32(latent), await reference('chelsea-resized')) <= TOLERANCE);
    const bad = await cli([...args, '--colour-management', 'p3']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--colour-management is "p3"; allowed: none, srgb/);
  });
});
