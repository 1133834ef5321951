/** Builds ONNX graphs for a tiny autoencoder (or a contiguous range of its layers) from its weights. */
import { GraphBuilder } from '../onnx-builder.js';
import { tensorToFloat32 } from '../../tensors/safetensors.js';
import type { TaeArchitecture, TaeLayer } from './architecture.js';

export const GRAPH_INPUT = 'x';
export const GRAPH_OUTPUT = 'y';
const GROUP_NORM_GROUPS = 4;
const GROUP_NORM_EPSILON = 1e-5;

/** Channels entering layer `position` of the list. */
export function channelsBefore(arch: TaeArchitecture, position: number): number {
  for (let i = position - 1; i >= 0; i--) {
    const layer = arch.layers[i];
    if (layer.kind === 'conv' || layer.kind === 'block') return layer.outChannels;
  }
  return arch.inChannels;
}

/** Serialises layers [from, to) as a model with input `x` and output `y`. */
export function buildTaeGraph(arch: TaeArchitecture, from = 0, to = arch.layers.length): Uint8Array {
  const g = new GraphBuilder();
  const weight = (name: string, dims?: number[]) => {
    const tensor = arch.tensors.get(name);
    if (!tensor) throw new Error(`missing tensor ${name}`);
    return g.constant(name, dims ?? tensor.shape, tensorToFloat32(tensor));
  };
  const conv = (x: string, prefix: string, kernel: 1 | 3, stride: 1 | 2, hasBias: boolean) =>
    g.node('Conv', hasBias ? [x, weight(`${prefix}.weight`), weight(`${prefix}.bias`)] : [x, weight(`${prefix}.weight`)], {
      kernel_shape: [kernel, kernel],
      pads: kernel === 3 ? [1, 1, 1, 1] : [0, 0, 0, 0],
      strides: [stride, stride],
    });
  let x = GRAPH_INPUT;
  for (const layer of arch.layers.slice(from, to)) x = emitLayer(g, layer, x, conv, weight);
  g.node('Identity', [x], {}, GRAPH_OUTPUT);
  return g.build(
    { name: GRAPH_INPUT, channels: channelsBefore(arch, from) },
    { name: GRAPH_OUTPUT, channels: channelsBefore(arch, to) },
    `${arch.part}_${from}_${to}`,
  );
}

type ConvEmitter = (x: string, prefix: string, kernel: 1 | 3, stride: 1 | 2, hasBias: boolean) => string;

function emitLayer(g: GraphBuilder, layer: TaeLayer, x: string, conv: ConvEmitter, weight: (name: string, dims?: number[]) => string): string {
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
      return g.node('Resize', [x, roi, scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    }
    case 'block': {
      const p = String(layer.index);
      let input = x;
      if (layer.hasGlobalBranch) input = g.node('Add', [x, globalBranch(g, x, p, weight)]);
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
function globalBranch(g: GraphBuilder, x: string, p: string, weight: (name: string, dims?: number[]) => string): string {
  const w1 = weight(`${p}.pool.0.weight`);
  const hidden = g.node('Conv', [x, w1], { kernel_shape: [1, 1] });
  const gamma = weight(`${p}.pool.1.weight`);
  const beta = weight(`${p}.pool.1.bias`);
  const grouped = g.node('Reshape', [hidden, g.int64Constant(g.name('groups'), [0, GROUP_NORM_GROUPS, -1])]);
  const ones = g.constant(g.name('ones'), [GROUP_NORM_GROUPS], new Float32Array(GROUP_NORM_GROUPS).fill(1));
  const zeros = g.constant(g.name('zeros'), [GROUP_NORM_GROUPS], new Float32Array(GROUP_NORM_GROUPS));
  const normalised = g.node('InstanceNormalization', [grouped, ones, zeros], { epsilon: { float: GROUP_NORM_EPSILON } });
  const restored = g.node('Reshape', [normalised, g.node('Shape', [hidden])]);
  const unsqueezeAxes = g.int64Constant(g.name('axes'), [1, 2]);
  const affine = g.node('Add', [
    g.node('Mul', [restored, g.node('Unsqueeze', [gamma, unsqueezeAxes])]),
    g.node('Unsqueeze', [beta, unsqueezeAxes]),
  ]);
  return g.node('Conv', [g.node('Relu', [affine]), weight(`${p}.pool.3.weight`)], { kernel_shape: [1, 1] });
}
