import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { latentDistribution, sampleLatent } from '../src/diffusion/posterior.ts';
import { drawSeed, MAX_SEED, parseSeed, TorchGenerator } from '../src/diffusion/random.ts';
import { GatewayError } from '../src/errors.ts';
import { readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { SHARED_DIR } from './support/paths.ts';

const RNG_DIR = resolve(SHARED_DIR, 'fixtures/rng');

interface RngCase {
  tensor: string;
  seed: number;
  draw: number;
  shape: number[];
}

test('TorchGenerator reproduces torch.randn on a CPU generator bit for bit, draws in order per seed', async () => {
  const meta = JSON.parse(readFileSync(resolve(RNG_DIR, 'torch-cpu-randn.json'), 'utf8')) as { cases: RngCase[] };
  const file = await readSafetensors(resolve(RNG_DIR, 'torch-cpu-randn.safetensors'));
  const seeds = [...new Set(meta.cases.map((c) => c.seed))];
  assert.ok(seeds.length >= 5 && seeds.some((s) => s >= 2 ** 32), 'fixtures cover a seed above 32 bits');
  for (const seed of seeds) {
    const generator = new TorchGenerator(BigInt(seed));
    const draws = meta.cases.filter((c) => c.seed === seed).sort((a, b) => a.draw - b.draw);
    for (const draw of draws) {
      const got = generator.randn(draw.shape);
      const expected = tensorToFloat32(file.tensors.get(draw.tensor)!);
      assert.equal(got.length, expected.length, draw.tensor);
      let differing = 0;
      for (let i = 0; i < got.length; i++) if (!Object.is(got[i], expected[i])) differing++;
      assert.equal(differing, 0, `${draw.tensor}: ${differing} of ${got.length} values differ`);
    }
  }
});

test('TorchGenerator: small draws share a cached Box-Muller twin; re-seeding resets the stream', () => {
  const generator = new TorchGenerator(7);
  const three = generator.randn([3]); // two pairs: the fourth value stays cached
  const next = generator.randn([1]);
  const fresh = new TorchGenerator(7).randn([4]);
  assert.deepEqual([...three, ...next], [...fresh]);
  generator.manualSeed(7);
  assert.deepEqual([...generator.randn([4])], [...fresh]);
  // torch seeds mt19937 with the low 32 bits of the 64-bit seed.
  assert.deepEqual([...new TorchGenerator(2n ** 32n + 7n).randn([20])], [...new TorchGenerator(7).randn([20])]);
  assert.throws(() => new TorchGenerator(-1), /0 to 2\^64 - 1/);
  assert.throws(() => new TorchGenerator(2n ** 64n), /0 to 2\^64 - 1/);
});

test('seeds: numbers and decimal strings up to 2^64 - 1, anything else refused by name', () => {
  assert.equal(parseSeed(42), 42n);
  assert.equal(parseSeed('18446744073709551615'), 2n ** 64n - 1n);
  assert.equal(parseSeed(' 4294967303 '), 4294967303n);
  for (const bad of [-1, 1.5, 2 ** 60, '18446744073709551616', '0x10', '', 'seven']) {
    assert.throws(
      () => parseSeed(bad),
      (error: unknown) =>
        error instanceof GatewayError && error.code === 'BAD_REQUEST' && /2\^64 - 1/.test(error.message),
      String(bad),
    );
  }
  const seeds = new Set(Array.from({ length: 8 }, drawSeed));
  assert.equal(seeds.size, 8);
  for (const seed of seeds) assert.ok(seed >= 0n && seed <= MAX_SEED);
});

test('VAE posterior: latent_parameters split into mean and clamped log-variance; sample = mean + std * randn', () => {
  // [1, 4, 2, 2]: channels 0-1 are the mean, 2-3 the log-variance (2 ln 2 → std 2, and 100 → clamped to 20).
  const plane = 4;
  const parameters = new Float32Array(4 * plane);
  for (let i = 0; i < 2 * plane; i++) parameters[i] = i / 10;
  parameters.fill(Math.fround(2 * Math.LN2), 2 * plane, 3 * plane);
  parameters.fill(100, 3 * plane, 4 * plane);
  const distribution = latentDistribution(parameters, [1, 4, 2, 2]);
  assert.deepEqual(distribution.dims, [1, 2, 2, 2]);
  assert.deepEqual([...distribution.mean], [...parameters.subarray(0, 2 * plane)]);
  assert.equal(distribution.logvar[plane], 20);
  const sample = sampleLatent(distribution, new TorchGenerator(5));
  const noise = new TorchGenerator(5).randn([1, 2, 2, 2]);
  for (let i = 0; i < plane; i++) assert.ok(Math.abs(sample[i] - (i / 10 + 2 * noise[i])) < 1e-6, `${i}`);
  for (let i = plane; i < 2 * plane; i++) {
    const expected = i / 10 + Math.exp(10) * noise[i];
    assert.ok(Math.abs(sample[i] - expected) <= 1e-6 * Math.abs(expected), `${i}`);
  }
  assert.throws(() => latentDistribution(new Float32Array(12), [1, 3, 2, 2]), /even channel count/);
});
