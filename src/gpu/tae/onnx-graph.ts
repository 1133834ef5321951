/**
 * Builds ONNX graphs for a tiny autoencoder (or a contiguous range of its layers) from its weights,
 * and the two graphs per GroupNorm block that let the latent stage run in tiles with exact,
 * whole-map statistics (see src/gpu/latent-stage.ts): the branch's statistics over one tile, and
 * the block with its GroupNorm folded into a per-channel scale and shift given as inputs.
 */

import { tensorToFloat32 } from '../../tensors/safetensors.js';
import { GraphBuilder } from '../onnx-builder.js';
import type { TaeArchitecture, TaeLayer } from './architecture.js';

export const GRAPH_INPUT = 'x';
export const GRAPH_OUTPUT = 'y';
/** Inputs of a folded-GroupNorm graph: per-channel [N, C, 1, 1] group mean and gamma / std, replacing the norm. */
export const CENTER_INPUT = 'center';
export const SCALE_INPUT = 'scale';
/** Outputs of a statistics graph: per-channel [N, C, 1, 1] mean and centred sum of squares over the tile. */
export const MEAN_OUTPUT = 'mean';
export const M2_OUTPUT = 'm2';
export const GROUP_NORM_GROUPS = 4;
export const GROUP_NORM_EPSILON = 1e-5;

/** Channels entering layer `position` of the list. */
export function channelsBefore(arch: TaeArchitecture, position: number): number {
  for (let i = position - 1; i >= 0; i--) {
    const layer = arch.layers[i];
    if (layer.kind === 'conv' || layer.kind === 'block') return layer.outChannels;
  }
  return arch.inChannels;
}

/**
 * Serialises layers [from, to) as a model with input `x` and output `y`. With `foldNormOf`, the
 * GroupNorm of that layer (a block with a global branch, inside the range) and its affine become
 * `(h - center) * scale + beta` with `center` and `scale` extra inputs: statistics computed elsewhere.
 */
export function buildTaeGraph(
  arch: TaeArchitecture,
  from = 0,
  to = arch.layers.length,
  foldNormOf?: number,
): Uint8Array {
  const g = new GraphBuilder();
  const weight = weights(g, arch);
  const conv = convEmitter(g, weight);
  let x = GRAPH_INPUT;
  for (const layer of arch.layers.slice(from, to)) x = emitLayer(g, layer, x, conv, weight, layer.index === foldNormOf);
  g.node('Identity', [x], {}, GRAPH_OUTPUT);
  const input = { name: GRAPH_INPUT, channels: channelsBefore(arch, from) };
  const output = { name: GRAPH_OUTPUT, channels: channelsBefore(arch, to) };
  if (foldNormOf === undefined) return g.build(input, output, `${arch.part}_${from}_${to}`);
  const hidden = branchChannels(arch, foldNormOf);
  const perChannel = (name: string) => ({ name, channels: hidden, spatial: [1, 1] as [number, number] });
  return g.build(
    [input, perChannel(CENTER_INPUT), perChannel(SCALE_INPUT)],
    output,
    `${arch.part}_${from}_${to}_folded`,
  );
}

/**
 * Statistics of block `index`'s global branch over one tile: h = W1 · x (1x1, so a tile without
 * overlap sees exactly its own pixels), then per channel the tile mean and the sum of squared
 * deviations from it, both [N, C, 1, 1]. Centring within the tile keeps float32 accurate; tiles
 * are combined in float64 by src/gpu/group-norm.ts.
 */
export function buildBranchStatisticsGraph(arch: TaeArchitecture, index: number): Uint8Array {
  const g = new GraphBuilder();
  const weight = weights(g, arch);
  const hidden = g.node('Conv', [GRAPH_INPUT, weight(`${index}.pool.0.weight`)], { kernel_shape: [1, 1] });
  const mean = g.node('ReduceMean', [hidden], { axes: [2, 3], keepdims: 1 }, MEAN_OUTPUT);
  g.node('ReduceSumSquare', [g.node('Sub', [hidden, mean])], { axes: [2, 3], keepdims: 1 }, M2_OUTPUT);
  const channels = branchChannels(arch, index);
  const perChannel = (name: string) => ({ name, channels, spatial: [1, 1] as [number, number] });
  return g.build(
    {
      name: GRAPH_INPUT,
      channels: channelsBefore(
        arch,
        arch.layers.findIndex((l) => l.index === index),
      ),
    },
    [perChannel(MEAN_OUTPUT), perChannel(M2_OUTPUT)],
    `${arch.part}_${index}_statistics`,
  );
}

/** Hidden channels of block `index`'s global branch (its GroupNorm's width; 256 in taef2). */
export function branchChannels(arch: TaeArchitecture, index: number): number {
  const w1 = arch.tensors.get(`${index}.pool.0.weight`);
  if (!w1) throw new Error(`layer ${index} has no global branch`);
  return w1.shape[0];
}

/** Pixels of context per side layers [from, to) read around each output pixel: 1 per 3x3 conv, 3 per block. */
export function haloOf(arch: TaeArchitecture, from: number, to: number): number {
  let halo = 0;
  for (const layer of arch.layers.slice(from, to)) {
    if (layer.kind === 'upsample' || (layer.kind === 'conv' && layer.stride !== 1))
      throw new Error(`layer ${layer.index} changes resolution; the halo is defined at one resolution`);
    if (layer.kind === 'conv') halo += 1;
    if (layer.kind === 'block') halo += 3;
  }
  return halo;
}

/**
 * Receptive reach of layers [from, to), which may change resolution, in pixels of their input: how
 * far beyond the input pixels an output pixel lies over (per side, worst over every phase of the
 * strides) the layers read. Infinite where a GroupNorm branch reads the whole map.
 */
export function reachOf(arch: TaeArchitecture, from: number, to: number): number {
  const layers = arch.layers.slice(from, to);
  if (layers.some((l) => l.kind === 'block' && l.hasGlobalBranch)) return Number.POSITIVE_INFINITY;
  // Output pixels per input pixel.
  const scale = layers.reduce(
    (s, l) => (l.kind === 'upsample' ? s * 2 : l.kind === 'conv' && l.stride === 2 ? s / 2 : s),
    1,
  );
  let reach = 0;
  for (let q = 0; q < Math.max(1, scale); q++) {
    // The input pixels output pixel q reads, walking back through the layers.
    let [first, last] = [q, q];
    for (const layer of [...layers].reverse()) {
      if (layer.kind === 'conv') [first, last] = [layer.stride * first - 1, layer.stride * last + 1];
      else if (layer.kind === 'block') [first, last] = [first - 3, last + 3];
      else if (layer.kind === 'upsample') [first, last] = [Math.floor(first / 2), Math.floor(last / 2)];
    }
    // ...against the input pixels it lies over.
    const [under, underLast] = [Math.floor(q / scale), Math.ceil((q + 1) / scale) - 1];
    reach = Math.max(reach, under - first, last - underLast);
  }
  return reach;
}

function weights(g: GraphBuilder, arch: TaeArchitecture) {
  return (name: string, dims?: number[]) => {
    const tensor = arch.tensors.get(name);
    if (!tensor) throw new Error(`missing tensor ${name}`);
    return g.constant(name, dims ?? tensor.shape, tensorToFloat32(tensor));
  };
}

function convEmitter(g: GraphBuilder, weight: (name: string, dims?: number[]) => string): ConvEmitter {
  return (x, prefix, kernel, stride, hasBias) =>
    g.node(
      'Conv',
      hasBias ? [x, weight(`${prefix}.weight`), weight(`${prefix}.bias`)] : [x, weight(`${prefix}.weight`)],
      {
        kernel_shape: [kernel, kernel],
        pads: kernel === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0],
        strides: [stride, stride],
      },
    );
}

type ConvEmitter = (x: string, prefix: string, kernel: 1 | 3, stride: 1 | 2, hasBias: boolean) => string;

function emitLayer(
  g: GraphBuilder,
  layer: TaeLayer,
  x: string,
  conv: ConvEmitter,
  weight: (name: string, dims?: number[]) => string,
  foldNorm = false,
): string {
  switch (layer.kind) {
    case 'conv':
      return conv(x, String(layer.index), 3, layer.stride, layer.hasBias);
    case 'relu':
      return g.node('Relu', [x]);
    case 'clamp': {
      const three = g.constant(g.name('three'), [], new Float32Array([3]));
      return g.node('Mul', [g.node('Tanh', [g.node('Div', [x, three])]), three]);
    }
    case 'upsample': {
      const roi = g.constant(g.name('roi'), [0], new Float32Array(0));
      const scales = g.constant(g.name('scales'), [4], new Float32Array([1, 1, 2, 2]));
      return g.node('Resize', [x, roi, scales], {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      });
    }
    case 'block': {
      const p = String(layer.index);
      let input = x;
      if (layer.hasGlobalBranch)
        input = g.node('Add', [x, foldNorm ? foldedBranch(g, x, p, weight) : globalBranch(g, x, p, weight)]);
      let y = conv(input, `${p}.conv.0`, 3, 1, true);
      y = conv(g.node('Relu', [y]), `${p}.conv.2`, 3, 1, true);
      y = conv(g.node('Relu', [y]), `${p}.conv.4`, 3, 1, true);
      const skip = layer.hasSkip ? conv(input, `${p}.skip`, 1, 1, false) : input;
      return g.node('Relu', [g.node('Add', [y, skip])]);
    }
  }
}

/**
 * `W2 · relu(GroupNorm(W1 · x))`. GroupNormalization is opset 18; here it is the classic
 * Reshape → InstanceNormalization → Reshape, then the per-channel affine.
 */
function globalBranch(
  g: GraphBuilder,
  x: string,
  p: string,
  weight: (name: string, dims?: number[]) => string,
): string {
  const w1 = weight(`${p}.pool.0.weight`);
  const hidden = g.node('Conv', [x, w1], { kernel_shape: [1, 1] });
  const gamma = weight(`${p}.pool.1.weight`);
  const beta = weight(`${p}.pool.1.bias`);
  const grouped = g.node('Reshape', [hidden, g.int64Constant(g.name('groups'), [0, GROUP_NORM_GROUPS, -1])]);
  const ones = g.constant(g.name('ones'), [GROUP_NORM_GROUPS], new Float32Array(GROUP_NORM_GROUPS).fill(1));
  const zeros = g.constant(g.name('zeros'), [GROUP_NORM_GROUPS], new Float32Array(GROUP_NORM_GROUPS));
  const normalised = g.node('InstanceNormalization', [grouped, ones, zeros], {
    epsilon: { float: GROUP_NORM_EPSILON },
  });
  const restored = g.node('Reshape', [normalised, g.node('Shape', [hidden])]);
  const unsqueezeAxes = g.int64Constant(g.name('axes'), [1, 2]);
  const affine = g.node('Add', [
    g.node('Mul', [restored, g.node('Unsqueeze', [gamma, unsqueezeAxes])]),
    g.node('Unsqueeze', [beta, unsqueezeAxes]),
  ]);
  return g.node('Conv', [g.node('Relu', [affine]), weight(`${p}.pool.3.weight`)], { kernel_shape: [1, 1] });
}

/**
 * `W2 · relu((W1 · x - center) * scale + beta)`: the branch with its GroupNorm's statistics as
 * inputs. Centring before scaling keeps float32 exact where a group's mean is large next to its spread.
 */
function foldedBranch(
  g: GraphBuilder,
  x: string,
  p: string,
  weight: (name: string, dims?: number[]) => string,
): string {
  const hidden = g.node('Conv', [x, weight(`${p}.pool.0.weight`)], { kernel_shape: [1, 1] });
  const beta = g.node('Unsqueeze', [weight(`${p}.pool.1.bias`), g.int64Constant(g.name('axes'), [1, 2])]);
  const affine = g.node('Add', [g.node('Mul', [g.node('Sub', [hidden, CENTER_INPUT]), SCALE_INPUT]), beta]);
  return g.node('Conv', [g.node('Relu', [affine]), weight(`${p}.pool.3.weight`)], { kernel_shape: [1, 1] });
}
