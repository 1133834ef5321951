import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { TorchGenerator } from '../src/diffusion/random.ts';
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
