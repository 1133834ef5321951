/** Tiny autoencoders load from diffusers' AutoencoderTiny naming as well as the original one. */

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { inferArchitecture } from '../src/gpu/tae/architecture.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import {
  readSafetensors,
  serializeSafetensors,
  type TensorToWrite,
  tensorToFloat32,
} from '../src/tensors/safetensors.ts';
import { MODELS_DIR } from './support/paths.ts';

let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latentgate-diffusers-'));
  // diffusers: encoder index N → encoder.layers.N; decoder index N → decoder.layers.(N-1) (no clamp layer).
  const renamed: Record<string, TensorToWrite> = {};
  for (const part of ['encoder', 'decoder'] as const) {
    const { tensors } = await readSafetensors(join(MODELS_DIR, 'taef2', `${part}.safetensors`));
    for (const [name, t] of tensors) {
      const [index, ...rest] = name.split('.');
      const n = Number(index) - (part === 'decoder' ? 1 : 0);
      renamed[`${part}.layers.${n}.${rest.join('.')}`] = { dtype: t.dtype, shape: t.shape, data: t.bytes };
    }
  }
  mkdirSync(join(dir, 'taef2-diffusers'));
  writeFileSync(join(dir, 'taef2-diffusers', 'diffusion_pytorch_model.safetensors'), serializeSafetensors(renamed));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the diffusers file yields the same architecture and the same ONNX graphs', async () => {
  const diffusers = (await ModelRegistry.load(dir)).find('taef2-diffusers');
  const original = (await ModelRegistry.load(MODELS_DIR)).find('taef2');
  assert.ok(diffusers && original);
  assert.equal(diffusers.latentChannels, 32);
  assert.equal(diffusers.downscaleFactor, 8);
  for (const part of ['encoder', 'decoder'] as const) {
    assert.deepEqual(Buffer.from(diffusers[part]!.whole), Buffer.from(original[part]!.whole), `${part} graph differs`);
    assert.ok(diffusers[part]!.stages, `${part} has its latent-resolution split`);
  }
});

test('architecture inference reads stride, upsampling and GroupNorm branches from the tensors', async () => {
  const { tensors } = await readSafetensors(join(MODELS_DIR, 'taesana', 'encoder.safetensors'));
  const arch = inferArchitecture(tensors, 'encoder');
  assert.equal(arch.scaleFactor, 32);
  assert.equal(arch.outChannels, 32);
  assert.deepEqual(
    arch.layers.filter((l) => l.kind === 'conv' && l.stride === 2).map((l) => l.index),
    [0, 2, 5, 9, 13],
  );
  const decoder = inferArchitecture(
    (await readSafetensors(join(MODELS_DIR, 'taef2', 'decoder.safetensors'))).tensors,
    'decoder',
  );
  assert.deepEqual(
    decoder.layers.filter((l) => l.kind === 'upsample').map((l) => l.index),
    [6, 11, 16],
  );
  assert.deepEqual(
    decoder.layers.filter((l) => l.kind === 'block' && l.hasGlobalBranch).map((l) => l.index),
    [3, 4, 5],
  );
  assert.equal(decoder.layers[0].kind, 'clamp');
  assert.ok(tensorToFloat32(tensors.get('0.weight')!).length === 32 * 3 * 9);
});
