/**
 * The stage networks of a pipeline folder in optimum's diffusers ONNX layout, as the router's
 * profiles need them (files, sizes, configs), for the CLI's `plan --pipeline` and `calibrate
 * --pipeline`. The gateway itself gets them from the pipeline folder loader.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ComputeDType, NetworkFile, PipelineNetworks } from '../routing/memory-profile.js';

const TEXT_ENCODERS = ['text_encoder', 'text_encoder_2', 'text_encoder_3'];
const DENOISERS = ['unet', 'transformer'];

function readConfig(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  throw new Error(`${file} must hold a JSON object`);
}

/** A network folder's graph, its size with external weights (`model.onnx_data`), and its config. */
export function networkFile(folder: string): NetworkFile | undefined {
  const path = join(folder, 'model.onnx');
  if (!existsSync(path)) return undefined;
  const data = join(folder, 'model.onnx_data');
  const bytes = statSync(path).size + (existsSync(data) ? statSync(data).size : 0);
  const config = readConfig(join(folder, 'config.json'));
  return { path, bytes, ...(config ? { config } : {}) };
}

/** The folder of the pipeline's UNet (`unet/`, or `transformer/` for Flux); undefined when it has none. */
export function denoiserFolder(dir: string): string | undefined {
  return DENOISERS.map((name) => join(dir, name)).find((folder) => existsSync(join(folder, 'model.onnx')));
}

/**
 * Reads a pipeline folder's text encoders and UNet. `dtype` is the export's (its `sample` input's
 * element type). Throws naming what is missing.
 */
export function readPipelineNetworks(dir: string, dtype: ComputeDType): PipelineNetworks {
  const unetFolder = denoiserFolder(dir);
  if (!unetFolder)
    throw new Error(`${dir} has no unet/model.onnx or transformer/model.onnx (optimum's diffusers ONNX layout)`);
  const textEncoders = TEXT_ENCODERS.map((name) => networkFile(join(dir, name))).filter((n) => n !== undefined);
  const vae = readConfig(join(dir, 'vae_decoder', 'config.json'));
  const blocks = Array.isArray(vae?.block_out_channels) ? vae.block_out_channels.length : 4;
  return { textEncoders, unet: networkFile(unetFolder)!, dtype, downscaleFactor: 2 ** (blocks - 1) };
}
