/**
 * Loads a diffusion pipeline exported in optimum's diffusers ONNX layout, as it comes from the export:
 *
 *   model_index.json                      pipeline class, requires_aesthetics_score, force_zeros_for_empty_prompt
 *   text_encoder/model.onnx  (+ _2 for SDXL)   tokenizer/ (+ tokenizer_2/)
 *   unet/model.onnx (or transformer/)     vae_encoder/model.onnx   vae_decoder/model.onnx
 *   scheduler/scheduler_config.json       config.json beside each network; model.onnx_data when weights are external
 *
 * Every convention is read from the folder (the VAE's scaling and shift, latent channels, the UNet's
 * time_cond_proj_dim, the scheduler's class and settings, the pad token), never from a table. Network
 * inputs and outputs are read from the graphs' declarations (onnx-interface.ts) and checked here, so a
 * folder that cannot run is reported at start with its reason. Sessions load from the files (external
 * weights beside them), not from bytes held here.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseSchedulerConfig, type SchedulerConfigJson } from '../diffusion/config.js';
import type { StagedNetwork } from '../gpu/staged-network.js';
import { FAMILIES, type FamilyConventions, type FamilyId } from './families.js';
import type { ModelDefinition } from './model.js';
import { type DeclaredValue, type GraphInterface, readGraphInterface } from './onnx-interface.js';

export type PipelineKind = 'sd' | 'sdxl' | 'flux';

/** One network file of the folder: where it is, what it declares, how big it is on disk (graph + external data). */
export interface PipelineNetwork {
  path: string;
  bytes: number;
  io: GraphInterface;
  /** The network's config.json, when the folder has one. */
  config?: Record<string, unknown>;
}

export interface TextEncoderPart extends PipelineNetwork {
  tokenizerDir: string;
}

export interface DenoiserPart extends PipelineNetwork {
  kind: 'unet' | 'transformer';
  /** LCM-distilled UNets take a guidance embedding of this size (`timestep_cond`) and run without CFG. */
  timeCondProjDim: number | null;
  inChannels: number;
}

/** What the img2img pipeline needs to know about a model, besides its VAE (the model's encoder/decoder). */
export interface DiffusionComponents {
  /** model_index.json's `_class_name`. */
  pipelineClass: string;
  kind: PipelineKind;
  textEncoders: TextEncoderPart[];
  denoiser: DenoiserPart;
  scheduler: SchedulerConfigJson;
  /** The folder's scheduler class name, as written (it may be one the gateway lacks; img2img then refuses). */
  schedulerClass: string;
  requiresAestheticsScore: boolean;
  forceZerosForEmptyPrompt: boolean;
}

const INDEX = 'model_index.json';

export function looksLikePipelineFolder(dir: string): boolean {
  return existsSync(join(dir, INDEX));
}

function readJson(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(
      `${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : (error as Error).message}`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${path}: not a JSON object`);
  return value as Record<string, unknown>;
}

function optionalJson(path: string): Record<string, unknown> | null {
  return existsSync(path) ? readJson(path) : null;
}

function network(dir: string, part: string): PipelineNetwork | null {
  const path = join(dir, part, 'model.onnx');
  if (!existsSync(path)) return null;
  let bytes = statSync(path).size;
  const external = join(dir, part, 'model.onnx_data');
  if (existsSync(external)) bytes += statSync(external).size;
  const config = optionalJson(join(dir, part, 'config.json'));
  return { path, bytes, io: readGraphInterface(path), ...(config ? { config } : {}) };
}

function requireValue(part: string, values: DeclaredValue[], name: string, side: 'input' | 'output'): DeclaredValue {
  const found = values.find((v) => v.name === name);
  if (!found)
    throw new Error(
      `${part}/model.onnx has no ${side} "${name}"; its ${side}s: ${values.map((v) => v.name).join(', ')}`,
    );
  return found;
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function kindOf(pipelineClass: string, dir: string): PipelineKind {
  if (/Flux/.test(pipelineClass) || existsSync(join(dir, 'transformer'))) return 'flux';
  if (/XL/.test(pipelineClass) || existsSync(join(dir, 'text_encoder_2'))) return 'sdxl';
  return 'sd';
}

const FAMILY_OF: Record<PipelineKind, FamilyId> = { sd: 'sd15', sdxl: 'sdxl', flux: 'flux1' };

export function loadPipelineFolder(id: string, dir: string): ModelDefinition {
  const index = readJson(join(dir, INDEX));
  const pipelineClass = typeof index._class_name === 'string' ? index._class_name : 'unknown';
  const kind = kindOf(pipelineClass, dir);

  const encoder = network(dir, 'vae_encoder');
  const decoder = network(dir, 'vae_decoder');
  if (!encoder && !decoder) throw new Error(`${dir} has ${INDEX} but neither vae_encoder/ nor vae_decoder/model.onnx`);
  const vaeConfig =
    optionalJson(join(dir, 'vae_decoder', 'config.json')) ?? optionalJson(join(dir, 'vae_encoder', 'config.json'));
  if (!vaeConfig)
    throw new Error(`${dir}: vae_encoder/config.json or vae_decoder/config.json is needed (scaling_factor)`);
  const base = FAMILIES[FAMILY_OF[kind]];
  const blocks = Array.isArray(vaeConfig.block_out_channels) ? vaeConfig.block_out_channels.length : 4;
  const latentChannels = numberOr(vaeConfig.latent_channels, base.latentChannels ?? 4);
  const family: FamilyConventions = {
    ...base,
    latentChannels,
    downscaleFactor: 2 ** (blocks - 1),
    scalingFactor: numberOr(vaeConfig.scaling_factor, base.scalingFactor),
    // diffusers treats a null shift_factor as none.
    shiftFactor: numberOr(vaeConfig.shift_factor, 0),
  };

  const vaeEncoder = encoder ? vaeEncoderNetwork(encoder, latentChannels) : undefined;
  const vaeDecoder: StagedNetwork | undefined = decoder
    ? {
        whole: decoder.path,
        inputName: requireValue('vae_decoder', decoder.io.inputs, 'latent_sample', 'input').name,
        outputName: requireValue('vae_decoder', decoder.io.outputs, 'sample', 'output').name,
        outputChannels: 3,
      }
    : undefined;

  const model: ModelDefinition = {
    id,
    family,
    format: 'onnx',
    latentChannels,
    downscaleFactor: family.downscaleFactor,
    encoder: vaeEncoder,
    decoder: vaeDecoder,
    path: dir,
  };
  const diffusion = diffusionComponents(dir, index, pipelineClass, kind);
  if (diffusion) model.diffusion = diffusion;
  return model;
}

/** Current optimum exports give `latent_parameters` (mean and log-variance, 2C channels), older ones `latent_sample`. */
function vaeEncoderNetwork(encoder: PipelineNetwork, latentChannels: number): StagedNetwork {
  const input = requireValue('vae_encoder', encoder.io.inputs, 'sample', 'input');
  const output =
    encoder.io.outputs.find((o) => o.name === 'latent_parameters') ??
    encoder.io.outputs.find((o) => o.name === 'latent_sample');
  if (!output) {
    throw new Error(
      `vae_encoder/model.onnx outputs ${encoder.io.outputs.map((o) => o.name).join(', ')}; ` +
        'expected latent_parameters (current optimum) or latent_sample (older exports)',
    );
  }
  return {
    whole: encoder.path,
    inputName: input.name,
    outputName: output.name,
    outputChannels: output.name === 'latent_parameters' ? 2 * latentChannels : latentChannels,
  };
}

/** The text encoders, denoiser and scheduler; null for a folder with only a VAE (it serves encode/decode). */
function diffusionComponents(
  dir: string,
  index: Record<string, unknown>,
  pipelineClass: string,
  kind: PipelineKind,
): DiffusionComponents | null {
  const denoiserPart = kind === 'flux' ? 'transformer' : 'unet';
  const denoiserNetwork = network(dir, denoiserPart);
  if (!denoiserNetwork) return null;
  const textEncoders: TextEncoderPart[] = [];
  for (const [encoderPart, tokenizerPart] of [
    ['text_encoder', 'tokenizer'],
    ['text_encoder_2', 'tokenizer_2'],
  ]) {
    const encoder = network(dir, encoderPart);
    if (!encoder) continue;
    requireValue(encoderPart, encoder.io.inputs, 'input_ids', 'input');
    const tokenizerDir = join(dir, tokenizerPart);
    if (!existsSync(tokenizerDir)) throw new Error(`${dir}: ${encoderPart}/ has no ${tokenizerPart}/ beside it`);
    textEncoders.push({ ...encoder, tokenizerDir });
  }
  if (textEncoders.length === 0) throw new Error(`${dir}: ${denoiserPart}/ needs text_encoder/ (and tokenizer/)`);
  if (kind === 'sdxl' && textEncoders.length !== 2)
    throw new Error(`${dir}: an SDXL pipeline needs text_encoder/ and text_encoder_2/`);

  const denoiserConfig = denoiserNetwork.config ?? {};
  if (kind !== 'flux') {
    for (const name of ['sample', 'timestep', 'encoder_hidden_states'])
      requireValue(denoiserPart, denoiserNetwork.io.inputs, name, 'input');
    requireValue(denoiserPart, denoiserNetwork.io.outputs, 'out_sample', 'output');
  } else {
    // optimum's Flux transformer export; `guidance` only for guidance-distilled models (dev).
    if (textEncoders.length !== 2)
      throw new Error(`${dir}: a Flux pipeline needs text_encoder/ (CLIP) and text_encoder_2/ (T5)`);
    const inputs = ['hidden_states', 'encoder_hidden_states', 'pooled_projections', 'timestep', 'img_ids', 'txt_ids'];
    if (denoiserConfig.guidance_embeds === true) inputs.push('guidance');
    for (const name of inputs) requireValue(denoiserPart, denoiserNetwork.io.inputs, name, 'input');
    requireValue(denoiserPart, denoiserNetwork.io.outputs, 'out_hidden_states', 'output');
  }
  const timeCondProjDim =
    typeof denoiserConfig.time_cond_proj_dim === 'number' ? denoiserConfig.time_cond_proj_dim : null;
  if (timeCondProjDim !== null) requireValue(denoiserPart, denoiserNetwork.io.inputs, 'timestep_cond', 'input');

  const schedulerPath = join(dir, 'scheduler', 'scheduler_config.json');
  // Parsed whatever its class: a request may pick another class built from the same settings.
  const scheduler = parseSchedulerConfig(readJson(schedulerPath), schedulerPath);
  return {
    pipelineClass,
    kind,
    textEncoders,
    denoiser: {
      ...denoiserNetwork,
      kind: denoiserPart,
      timeCondProjDim,
      inChannels: numberOr(denoiserConfig.in_channels, 4),
    },
    scheduler,
    schedulerClass: scheduler._class_name ?? 'unknown',
    requiresAestheticsScore: index.requires_aesthetics_score === true,
    forceZerosForEmptyPrompt: index.force_zeros_for_empty_prompt === true,
  };
}
