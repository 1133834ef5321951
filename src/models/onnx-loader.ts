/**
 * Loads an AutoencoderKL exported to ONNX in optimum's layout: `vae_encoder/model.onnx`
 * (`sample` → `latent_sample`) and/or `vae_decoder/model.onnx` (`latent_sample` → `sample`), with a
 * `model.json` for what the files cannot say: `{"family": "sd15", "scalingFactor"?, "shiftFactor"?,
 * "inputRange"?: "minus-one-one" | "zero-one", "latentChannels"?, "downscaleFactor"?}`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAMILIES, type FamilyConventions, isFamilyId } from './families.js';
import type { ModelDefinition } from './model.js';

const ENCODER_FILE = join('vae_encoder', 'model.onnx');
const DECODER_FILE = join('vae_decoder', 'model.onnx');
const MANIFEST = 'model.json';

export function looksLikeOnnxVae(dir: string): boolean {
  return existsSync(join(dir, ENCODER_FILE)) || existsSync(join(dir, DECODER_FILE));
}

export function loadOnnxVae(id: string, dir: string): ModelDefinition {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath))
    throw new Error(`${dir} has ONNX files but no ${MANIFEST} naming its family (${Object.keys(FAMILIES).join(', ')})`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  const familyId = String(manifest.family ?? '');
  if (!isFamilyId(familyId))
    throw new Error(`${manifestPath}: family "${familyId}" is not one of ${Object.keys(FAMILIES).join(', ')}`);
  const base = FAMILIES[familyId];
  const number = (key: string, fallback: number | null): number => {
    const value = manifest[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new Error(`${manifestPath}: ${key} must be a number`);
    return value;
  };
  const inputRange = manifest.inputRange ?? base.inputRange;
  if (inputRange !== 'zero-one' && inputRange !== 'minus-one-one')
    throw new Error(`${manifestPath}: inputRange must be "zero-one" or "minus-one-one"`);
  const family: FamilyConventions = {
    ...base,
    latentChannels: number('latentChannels', base.latentChannels),
    downscaleFactor: number('downscaleFactor', base.downscaleFactor),
    scalingFactor: number('scalingFactor', base.scalingFactor),
    shiftFactor: number('shiftFactor', base.shiftFactor),
    inputRange,
  };
  const latentChannels = family.latentChannels!;
  const read = (file: string) =>
    existsSync(join(dir, file)) ? new Uint8Array(readFileSync(join(dir, file))) : undefined;
  const encoder = read(ENCODER_FILE);
  const decoder = read(DECODER_FILE);
  return {
    id,
    family,
    format: 'onnx',
    latentChannels,
    downscaleFactor: family.downscaleFactor,
    // No safe split is known for a full KL VAE: tiles run the whole network (GroupNorm per tile, as diffusers' tiling does).
    encoder: encoder && {
      whole: encoder,
      inputName: 'sample',
      outputName: 'latent_sample',
      outputChannels: latentChannels,
    },
    decoder: decoder && { whole: decoder, inputName: 'latent_sample', outputName: 'sample', outputChannels: 3 },
    path: dir,
  };
}
