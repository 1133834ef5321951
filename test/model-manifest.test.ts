/** model.json of an ONNX AutoencoderKL: defaults from the family, overrides, and every bad key named (no server). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ModelRegistry } from '../src/models/registry.ts';
import { writeTinyKlModel } from './support/kl-model.ts';

const modelsDir = mkdtempSync(join(tmpdir(), 'latentgate-manifest-'));
after(() => rmSync(modelsDir, { recursive: true, force: true }));

test('a manifest takes the family defaults and its own overrides; bad ones are named, the model skipped', async () => {
  writeTinyKlModel(join(modelsDir, 'plain'), { family: 'sdxl' });
  writeTinyKlModel(join(modelsDir, 'custom'), {
    family: 'flux1',
    latentChannels: 4,
    scalingFactor: 0.5,
    shiftFactor: 0.25,
    inputRange: 'zero-one',
  });
  writeTinyKlModel(join(modelsDir, 'bad'), {
    family: 'sd3',
    scalingFactor: 'big',
    inputRange: 'zero-to-one',
    latentChannels: 0,
    colour: 'red',
  });
  writeTinyKlModel(join(modelsDir, 'tae-kl'), { family: 'tae' });
  writeTinyKlModel(join(modelsDir, 'broken'), {});
  writeFileSync(join(modelsDir, 'broken', 'model.json'), '{"family": ');

  const registry = await ModelRegistry.load(modelsDir);
  const plain = registry.find('plain')!;
  assert.equal(plain.latentChannels, 4);
  assert.deepEqual(
    [plain.family.scalingFactor, plain.family.shiftFactor, plain.family.inputRange],
    [0.13025, 0, 'minus-one-one'],
  );
  const custom = registry.find('custom')!;
  assert.equal(custom.latentChannels, 4);
  assert.deepEqual(
    [custom.family.id, custom.family.scalingFactor, custom.family.shiftFactor, custom.family.inputRange],
    ['flux1', 0.5, 0.25, 'zero-one'],
  );

  const problems = new Map(registry.problems.map((p) => [p.id, p.error]));
  assert.deepEqual([...problems.keys()].sort(), ['bad', 'broken', 'tae-kl']);
  const bad = problems.get('bad')!;
  assert.match(bad, /model\.json: /);
  assert.match(bad, /family is "sd3"; allowed: sd15, sdxl, flux1, tae/);
  assert.match(bad, /scalingFactor is "big"; it must be a number/);
  assert.match(bad, /inputRange is "zero-to-one"; allowed: minus-one-one, zero-one/);
  assert.match(bad, /latentChannels is 0; it must be an integer of at least 1/);
  assert.match(bad, /colour is not a setting; allowed: family, scalingFactor/);
  assert.match(problems.get('tae-kl')!, /latentChannels is required for family "tae"/);
  assert.match(problems.get('broken')!, /model\.json is not JSON/);
});
