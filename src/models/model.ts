/** What the gateway knows about one servable model, independent of how its networks are stored. */
import type { StagedNetwork } from '../gpu/staged-network.js';
import type { FamilyConventions } from './families.js';
import type { DiffusionComponents } from './pipeline-folder.js';

/** What a VAE network runs. */
export type Operation = 'encode' | 'decode';
/** What the gateway serves for a model: VAE runs, and the img2img pipeline. */
export type ServedOperation = Operation | 'img2img';

export interface ModelDefinition {
  id: string;
  family: FamilyConventions;
  /** `upstream`: no local weights; it runs only on configured upstream endpoints. */
  format: 'tae-safetensors' | 'onnx' | 'upstream';
  latentChannels: number;
  downscaleFactor: number;
  encoder?: StagedNetwork;
  decoder?: StagedNetwork;
  /** Where the files came from, for the `models` query. */
  path: string;
  /** How they got there: `MODELS_DIR`, or the Hub repository and commit of a cached model. */
  origin?: string;
  /** Operations configured upstream endpoints serve (besides the local networks). */
  upstreamOperations?: ServedOperation[];
  /** Text encoders, denoiser and scheduler of a pipeline folder (src/models/pipeline-folder.ts). */
  diffusion?: DiffusionComponents;
}

/** The local network that runs `operation`, if the model has one. */
export function networkFor(
  model: Partial<Pick<ModelDefinition, 'encoder' | 'decoder'>>,
  operation: Operation,
): StagedNetwork | undefined {
  return operation === 'encode' ? model.encoder : model.decoder;
}

/** Operations the local weights can run (img2img: a pipeline folder with both VAE halves). */
export function operationsOf(model: Pick<ModelDefinition, 'encoder' | 'decoder' | 'diffusion'>): ServedOperation[] {
  const vae = (['encode', 'decode'] as const).filter((op) => networkFor(model, op));
  return model.diffusion && vae.length === 2 ? [...vae, 'img2img'] : vae;
}

/** Operations the gateway serves for the model: local ones and those of its upstream endpoints. */
export function servedOperationsOf(
  model: Pick<ModelDefinition, 'encoder' | 'decoder' | 'diffusion' | 'upstreamOperations'>,
): ServedOperation[] {
  const ops = new Set([...operationsOf(model), ...(model.upstreamOperations ?? [])]);
  return (['encode', 'decode', 'img2img'] as const).filter((op) => ops.has(op));
}
