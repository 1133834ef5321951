/** `latentgate encode` / `latentgate decode` as processes against a real gateway. */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSafetensors, readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { runCli } from './support/cli.ts';
import { imageToPlanar, maxAbsDiff, psnr } from './support/metrics.ts';
import { IMAGES_DIR, MODELS_DIR, REFERENCE_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

let gateway: RunningGateway;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-cli-'));

before(async () => {
  gateway = await startGateway({ MODELS_DIR, DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '4GiB' });
});
after(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, dir);

describe('command-line client', () => {
  test('encode writes the latent as safetensors, with a progress bar fed by the subscription (SSE)', async () => {
    const out = join(dir, 'astronaut.safetensors');
    const run = await cli([
      'encode',
      join(IMAGES_DIR, 'astronaut.png'),
      '--model',
      'taef2',
      '--out',
      out,
      '--url',
      gateway.url,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /astronaut\.safetensors: latent \[1, 32, 64, 64\] float32/);
    assert.match(run.stderr, /encode astronaut\.png \(taef2\) \[-+\]\s+0% queued/);
    assert.match(run.stderr, /routed LOCAL on local:/);
    assert.match(run.stderr, /\[#{24}\] 100% done in [\d.]+ s/);
    const file = parseSafetensors(readFileSync(out));
    const latent = file.tensors.get('latent')!;
    assert.equal(latent.dtype, 'float32');
    assert.equal(file.metadata.model, 'taef2');
    const expected = (await readSafetensors(join(REFERENCE_DIR, 'taef2', 'astronaut.safetensors'))).tensors.get(
      'latent',
    )!;
    assert.deepEqual(latent.shape, expected.shape);
    assert.ok(maxAbsDiff(tensorToFloat32(latent), tensorToFloat32(expected)) <= 1e-3);
  });

  test('decode turns that file back into an image (WebSocket transport)', async () => {
    const out = join(dir, 'astronaut.decoded.png');
    const run = await cli([
      'decode',
      join(dir, 'astronaut.safetensors'),
      '--model',
      'taef2',
      '--out',
      out,
      '--url',
      gateway.url,
      '--transport',
      'ws',
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /astronaut\.decoded\.png: 512x512 PNG/);
    assert.match(run.stderr, /decode astronaut\.safetensors \(taef2\).*100% done/);
    const decoded = await imageToPlanar(readFileSync(out));
    const original = await imageToPlanar(readFileSync(join(IMAGES_DIR, 'astronaut.png')));
    assert.deepEqual([decoded.width, decoded.height], [512, 512]);
    const quality = psnr(decoded.data, original.data);
    assert.ok(quality > 22, `round trip PSNR ${quality.toFixed(1)} dB`);
  });

  test('errors name their code and the command exits non-zero', async () => {
    writeFileSync(join(dir, 'not-an-image.png'), 'hello');
    const [unsupported, failed, usage, unreachable] = await Promise.all([
      cli([
        'decode',
        join(dir, 'astronaut.safetensors'),
        '--model',
        'taesana',
        '--out',
        join(dir, 'x.png'),
        '--url',
        gateway.url,
      ]),
      cli([
        'encode',
        join(dir, 'not-an-image.png'),
        '--model',
        'taef2',
        '--out',
        join(dir, 'y.safetensors'),
        '--url',
        gateway.url,
      ]),
      cli([
        'encode',
        join(IMAGES_DIR, 'astronaut.png'),
        '--model',
        'taef2',
        '--out',
        join(dir, 'z.bin'),
        '--url',
        gateway.url,
      ]),
      cli([
        'encode',
        join(IMAGES_DIR, 'astronaut.png'),
        '--model',
        'taef2',
        '--out',
        join(dir, 'w.safetensors'),
        '--url',
        'http://127.0.0.1:9',
      ]),
    ]);
    assert.equal(unsupported.code, 1);
    assert.match(unsupported.stderr, /latentgate: UNSUPPORTED_OPERATION: model "taesana" does not support decode/);
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /failed: INVALID_IMAGE/);
    assert.match(failed.stderr, /latentgate: INVALID_IMAGE: /);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--out must name a \.safetensors file/);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /latentgate: TRANSPORT: cannot reach http:\/\/127\.0\.0\.1:9\/graphql/);
  });
});
