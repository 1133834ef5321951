/**
 * Infers a tiny autoencoder's layer list from its tensor names and shapes, in either naming:
 * the original `nn.Sequential` state dict (`N.weight`, `N.conv.0.weight`) or diffusers'
 * `AutoencoderTiny` (`encoder.layers.N.`, `decoder.layers.(N-1).`). Nothing is assumed about
 * channel counts, depth or downscale: they come from the tensors.
 */
import type { StoredTensor } from '../../tensors/safetensors.js';

export type TaeLayer =
  | { kind: 'conv'; index: number; inChannels: number; outChannels: number; stride: 1 | 2; hasBias: boolean }
  | {
      kind: 'block';
      index: number;
      inChannels: number;
      outChannels: number;
      hasSkip: boolean;
      hasGlobalBranch: boolean;
    }
  | { kind: 'relu'; index: number }
  | { kind: 'upsample'; index: number }
  | { kind: 'clamp'; index: number };

export interface TaeArchitecture {
  part: 'encoder' | 'decoder';
  layers: TaeLayer[];
  inChannels: number;
  outChannels: number;
  /** Spatial factor between image and latent (8 for taesd-style, 32 for taesana). */
  scaleFactor: number;
  /** Tensors by sequential-style name (`N.conv.0.weight`). */
  tensors: Map<string, StoredTensor>;
}

export class ArchitectureError extends Error {}

/** Normalises diffusers `AutoencoderTiny` names to sequential names for one part; returns null when absent. */
export function sequentialTensors(
  all: Map<string, StoredTensor>,
  part: 'encoder' | 'decoder',
): Map<string, StoredTensor> | null {
  const prefix = `${part}.layers.`;
  const diffusers = [...all.keys()].some((k) => k.startsWith(prefix));
  if (!diffusers) return [...all.keys()].some((k) => /^\d+\./.test(k)) ? all : null;
  const out = new Map<string, StoredTensor>();
  // diffusers' decoder drops the weightless clamp at sequential index 0.
  const offset = part === 'decoder' ? 1 : 0;
  for (const [name, tensor] of all) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    const dot = rest.indexOf('.');
    out.set(`${Number(rest.slice(0, dot)) + offset}${rest.slice(dot)}`, tensor);
  }
  return out;
}

export function inferArchitecture(tensors: Map<string, StoredTensor>, part: 'encoder' | 'decoder'): TaeArchitecture {
  const byIndex = new Map<number, Map<string, StoredTensor>>();
  for (const [name, tensor] of tensors) {
    const match = /^(\d+)\.(.+)$/.exec(name);
    if (!match) throw new ArchitectureError(`tensor "${name}" is not named like a sequential layer ("N.weight")`);
    const index = Number(match[1]);
    if (!byIndex.has(index)) byIndex.set(index, new Map());
    byIndex.get(index)!.set(match[2], tensor);
  }
  if (byIndex.size === 0) throw new ArchitectureError(`no ${part} tensors found`);
  const last = Math.max(...byIndex.keys());
  const layers: TaeLayer[] = [];
  for (let index = 0; index <= last; index++) {
    const params = byIndex.get(index);
    if (!params) {
      layers.push({ kind: 'relu', index }); // refined below: weightless layers are ReLU, upsample or clamp
      continue;
    }
    const weight = params.get('weight');
    if (weight) {
      layers.push({
        kind: 'conv',
        index,
        inChannels: weight.shape[1],
        outChannels: weight.shape[0],
        stride: 1,
        hasBias: params.has('bias'),
      });
      continue;
    }
    const first = params.get('conv.0.weight');
    const lastConv = params.get('conv.4.weight');
    if (!first || !lastConv)
      throw new ArchitectureError(`layer ${index} has neither a convolution nor a residual block's tensors`);
    layers.push({
      kind: 'block',
      index,
      inChannels: first.shape[1],
      outChannels: lastConv.shape[0],
      hasSkip: params.has('skip.weight'),
      hasGlobalBranch: params.has('pool.0.weight'),
    });
  }
  if (part === 'encoder') {
    // Downsamplers are the bias-free convolutions, and any convolution followed by a weightless
    // ReLU before the first block (taesana's stem). The first and last convolutions otherwise keep size.
    const firstBlock = layers.findIndex((l) => l.kind === 'block');
    for (const [i, layer] of layers.entries()) {
      if (layer.kind !== 'conv') continue;
      const stemWithRelu = i < firstBlock && layers[i + 1]?.kind === 'relu';
      if (!layer.hasBias || stemWithRelu) layer.stride = 2;
    }
  } else {
    // A weightless layer right before a bias-free convolution is a 2x nearest upsample; index 0 is the clamp.
    for (const [i, layer] of layers.entries()) {
      if (layer.kind !== 'relu') continue;
      const next = layers[i + 1];
      if (i === 0) layers[i] = { kind: 'clamp', index: i };
      else if (next?.kind === 'conv' && !next.hasBias) layers[i] = { kind: 'upsample', index: i };
    }
  }
  const convs = layers.filter((l): l is Extract<TaeLayer, { kind: 'conv' }> => l.kind === 'conv');
  const scaleFactor =
    part === 'encoder'
      ? 2 ** convs.filter((c) => c.stride === 2).length
      : 2 ** layers.filter((l) => l.kind === 'upsample').length;
  return {
    part,
    layers,
    inChannels: convs[0].inChannels,
    outChannels: convs[convs.length - 1].outChannels,
    scaleFactor,
    tensors,
  };
}
