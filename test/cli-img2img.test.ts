/** `latentgate img2img` as a process against a real gateway serving a tiny pipeline folder. */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { parseSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { runCli } from './support/cli.ts';
import { IMAGES_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

let gateway: RunningGateway;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-cli-img2img-'));

before(async () => {
  // SD 1.5's PNDM config: 4 steps at strength 0.5 run 3 network calls (PNDM repeats its first timestep).
  writeTinyPipeline(join(dir, 'models', 'tiny-sd'));
  gateway = await startGateway({ MODELS_DIR: join(dir, 'models'), DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '4GiB' });
});
after(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, dir);
const chelsea = join(IMAGES_DIR, 'chelsea.png');

describe('latentgate img2img', () => {
  test('writes the image at the init image size (multiple of 8), shows each DENOISE step, prints the seed', async () => {
    const out = join(dir, 'chelsea.out.png');
    const latentOut = join(dir, 'chelsea.final.safetensors');
    const args = [
      'img2img',
      chelsea,
      '--model',
      'tiny-sd',
      '--prompt',
      'a photo of a cat',
      '--strength',
      '0.5',
      '--steps',
      '4',
      '--guidance-scale',
      '7.5',
      '--out',
      out,
      '--latent-out',
      latentOut,
      '--url',
      gateway.url,
    ];
    const run = await cli(args);
    assert.equal(run.code, 0, run.stderr);
    // chelsea.png is 451x300: diffusers' VaeImageProcessor resizes it down to multiples of 8.
    const meta = await sharp(readFileSync(out)).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 448, 296]);
    assert.match(run.stdout, /chelsea\.out\.png: 448x296 PNG/);
    const seed = /^seed (\d+) \(repeat with --seed \1\), scheduler PNDM, 3 denoising step\(s\)/m.exec(run.stdout);
    assert.ok(seed, run.stdout);

    // One progress line per network call, in order, with the timesteps PNDM runs (strength 0.5 of 4 steps).
    const steps = [...run.stderr.matchAll(/denoise step (\d+)\/(\d+) \(timestep (\d+)\)/g)].map((m) =>
      m.slice(1).map(Number),
    );
    assert.deepEqual(steps, [
      [1, 3, 501],
      [2, 3, 251],
      [3, 3, 1],
    ]);
    assert.match(run.stderr, /img2img chelsea\.png \(tiny-sd\) .*routed text encode: LOCAL on local:/);
    assert.match(run.stderr, /\[#{24}\] 100% done in [\d.]+ s/);

    const file = parseSafetensors(readFileSync(latentOut));
    const latent = file.tensors.get('latent')!;
    assert.deepEqual([latent.dtype, latent.shape], ['float32', [1, 4, 37, 56]]);
    assert.equal(file.metadata.seed, seed[1]);
    assert.equal(file.metadata.timesteps, '[501,251,1]');

    // The printed seed repeats the run exactly, here over the WebSocket transport.
    const again = await cli([
      ...args.map((a) => (a === out ? join(dir, 'again.png') : a === latentOut ? join(dir, 'again.safetensors') : a)),
      '--seed',
      seed[1],
      '--transport',
      'ws',
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`^seed ${seed[1]} `, 'm'));
    const repeated = parseSafetensors(readFileSync(join(dir, 'again.safetensors'))).tensors.get('latent')!;
    assert.deepEqual(tensorToFloat32(repeated), tensorToFloat32(latent));
    assert.deepEqual(readFileSync(join(dir, 'again.png')), readFileSync(out));
  });

  test('a seed above 2^53 and another scheduler travel intact', async () => {
    const run = await cli([
      'img2img',
      chelsea,
      '--model',
      'tiny-sd',
      '--prompt',
      'a cat',
      '--steps',
      '2',
      '--seed',
      '18446744073709551615',
      '--scheduler',
      'euler',
      '--out',
      join(dir, 'max-seed.webp'),
      '--url',
      gateway.url,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /max-seed\.webp: 448x296 WEBP/);
    assert.match(
      run.stdout,
      /^seed 18446744073709551615 \(repeat with --seed 18446744073709551615\), scheduler EULER,/m,
    );
    assert.equal((await sharp(readFileSync(join(dir, 'max-seed.webp'))).metadata()).format, 'webp');
  });

  test('refusals: the gateway code and message, a non-zero exit; bad flags are usage errors', async () => {
    const base = ['img2img', chelsea, '--model', 'tiny-sd', '--prompt', 'a cat', '--url', gateway.url];
    const [refused, unknownModel, badStrength, badSeed, badScheduler] = await Promise.all([
      // int(4 * 0.1) = 0 steps (PNDM would still run its repeated first timestep, so Euler here).
      cli([...base, '--strength', '0.1', '--steps', '4', '--scheduler', 'euler', '--out', join(dir, 'no.png')]),
      cli([...base.map((a) => (a === 'tiny-sd' ? 'nope' : a)), '--out', join(dir, 'no.png')]),
      cli([...base, '--strength', 'lots', '--out', join(dir, 'no.png')]),
      cli([...base, '--seed=-1', '--out', join(dir, 'no.png')]),
      cli([...base, '--scheduler', 'heun', '--out', join(dir, 'no.png')]),
    ]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /latentgate: NO_DENOISING_STEPS: strength 0.1 with 4 steps gives int\(4 x 0.1\) = 0 denoising steps; use/,
    );
    assert.equal(unknownModel.code, 1);
    assert.match(unknownModel.stderr, /latentgate: UNKNOWN_MODEL: unknown model "nope"; available: tiny-sd/);
    assert.equal(badStrength.code, 2);
    assert.match(badStrength.stderr, /--strength is "lots"; it must be a number/);
    assert.equal(badSeed.code, 2);
    assert.match(badSeed.stderr, /--seed is "-1"; it must be an integer from 0 to 18446744073709551615/);
    assert.equal(badScheduler.code, 2);
    assert.match(badScheduler.stderr, /--scheduler is "heun"/);
  });
});
