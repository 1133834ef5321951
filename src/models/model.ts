/** What the gateway knows about one servable model, independent of how its networks are stored. */
import type { StagedNetwork } from '../gpu/staged-network.js';
import type { FamilyConventions } from './families.js';

export type Operation = 'encode' | 'decode';

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
  /** Operations configured upstream endpoints serve (besides the local networks). */
  upstreamOperations?: Operation[];
}

/** The local network that runs `operation`, if the model has one. */
export function networkFor(
  model: Partial<Pick<ModelDefinition, 'encoder' | 'decoder'>>,
  operation: Operation,
): StagedNetwork | undefined {
  return operation === 'encode' ? model.encoder : model.decoder;
}

/** Operations the local weights can run. */
export function operationsOf(model: Pick<ModelDefinition, 'encoder' | 'decoder'>): Operation[] {
  return (['encode', 'decode'] as const).filter((op) => networkFor(model, op));
}

/** Operations the gateway serves for the model: local ones and those of its upstream endpoints. */
export function servedOperationsOf(
  model: Pick<ModelDefinition, 'encoder' | 'decoder' | 'upstreamOperations'>,
): Operation[] {
  const ops = new Set([...operationsOf(model), ...(model.upstreamOperations ?? [])]);
  return (['encode', 'decode'] as const).filter((op) => ops.has(op));
}
