/**
 * Loads an AutoencoderKL exported to ONNX in optimum's layout: `vae_encoder/model.onnx`
 * (`sample` → `latent_parameters` in current exports, mean and log-variance; `latent_sample` in older
 * ones) and/or `vae_decoder/model.onnx` (`latent_sample` → `sample`), with a
 * `model.json` for what the files cannot say: `{"family": "sd15", "scalingFactor"?, "shiftFactor"?,
 * "inputRange"?: "minus-one-one" | "zero-one", "latentChannels"?, "downscaleFactor"?}` (other keys are refused).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { describeProblem, integerIn, settingsObject, validate } from '../validation/problems.js';
import { FAMILIES, type FamilyConventions, type FamilyId } from './families.js';
import type { ModelDefinition } from './model.js';
import { readGraphInterface } from './onnx-interface.js';

const ENCODER_FILE = join('vae_encoder', 'model.onnx');
const DECODER_FILE = join('vae_decoder', 'model.onnx');
const MANIFEST = 'model.json';

const manifestSchema = settingsObject({
  family: z.enum(Object.keys(FAMILIES) as [FamilyId, ...FamilyId[]]),
  scalingFactor: z.number().optional(),
  shiftFactor: z.number().optional(),
  inputRange: z.enum(['minus-one-one', 'zero-one']).optional(),
  latentChannels: integerIn(1).optional(),
  downscaleFactor: integerIn(1).optional(),
}).superRefine((manifest, context) => {
  if (manifest.latentChannels === undefined && FAMILIES[manifest.family].latentChannels === null)
    context.addIssue({
      code: 'custom',
      path: ['latentChannels'],
      message: `is required for family "${manifest.family}" (its channels vary per model)`,
    });
});

function readManifest(path: string): z.output<typeof manifestSchema> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path} is not JSON: ${(error as Error).message}`);
  }
  const result = validate(manifestSchema, manifest);
  if (!result.ok) throw new Error(`${path}: ${result.problems.map(describeProblem).join('. ')}`);
  return result.value;
}

export function looksLikeOnnxVae(dir: string): boolean {
  return existsSync(join(dir, ENCODER_FILE)) || existsSync(join(dir, DECODER_FILE));
}

export function loadOnnxVae(id: string, dir: string): ModelDefinition {
  const manifestPath = join(dir, MANIFEST);
  if (!existsSync(manifestPath))
    throw new Error(`${dir} has ONNX files but no ${MANIFEST} naming its family (${Object.keys(FAMILIES).join(', ')})`);
  const manifest = readManifest(manifestPath);
  const base = FAMILIES[manifest.family];
  const family: FamilyConventions = {
    ...base,
    latentChannels: manifest.latentChannels ?? base.latentChannels,
    downscaleFactor: manifest.downscaleFactor ?? base.downscaleFactor,
    scalingFactor: manifest.scalingFactor ?? base.scalingFactor,
    shiftFactor: manifest.shiftFactor ?? base.shiftFactor,
    inputRange: manifest.inputRange ?? base.inputRange,
  };
  const latentChannels = family.latentChannels!;
  // Sessions load from the files, so weights kept in `model.onnx_data` beside a graph load too.
  const file = (name: string) => (existsSync(join(dir, name)) ? join(dir, name) : undefined);
  const encoder = file(ENCODER_FILE);
  const decoder = file(DECODER_FILE);
  const encoderOutput = encoder ? encoderOutputName(encoder) : undefined;
  return {
    id,
    family,
    format: 'onnx',
    latentChannels,
    downscaleFactor: family.downscaleFactor,
    // No safe split is known for a full KL VAE: tiles run the whole network
    // (GroupNorm per tile, as diffusers' tiling does).
    // The executor keeps the leading latentChannels (the mean) of `latent_parameters`.
    encoder:
      encoder !== undefined
        ? {
            whole: encoder,
            inputName: 'sample',
            outputName: encoderOutput!,
            outputChannels: encoderOutput === 'latent_parameters' ? 2 * latentChannels : latentChannels,
          }
        : undefined,
    decoder:
      decoder !== undefined
        ? { whole: decoder, inputName: 'latent_sample', outputName: 'sample', outputChannels: 3 }
        : undefined,
    path: dir,
  };
}

function encoderOutputName(path: string): 'latent_parameters' | 'latent_sample' {
  const outputs = readGraphInterface(path).outputs.map((o) => o.name);
  if (outputs.includes('latent_parameters')) return 'latent_parameters';
  if (outputs.includes('latent_sample')) return 'latent_sample';
  throw new Error(`${path} outputs ${outputs.join(', ')}; expected latent_parameters or latent_sample`);
}
