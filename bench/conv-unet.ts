/**
 * A tiny UNet with the compute shape of a real one, for the per-step benchmark: three 3x3 convolutions
 * (4 → 64 → 64 → 4 channels, ReLU between) conditioned on the text through a per-channel bias from the
 * mean of encoder_hidden_states, and on the timestep through a scaled bias. Same inputs and output as an
 * optimum SD export (sample, int64 timestep [batch], encoder_hidden_states → out_sample), so it runs through
 * the pipeline unchanged. The test pipeline's UNet is five elementwise ops: so cheap that any per-step
 * work around it (a thread hop, the guidance combine) weighs as much as the network itself.
 */
import { GraphBuilder, writeModel } from '../src/gpu/onnx-builder.ts';

const WIDTH = 64;

function weights(count: number, seed: number, scale: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return ((state / 2 ** 31) * 2 - 1) * scale;
  });
}

export function writeConvUnet(path: string, crossAttentionDim: number): void {
  const g = new GraphBuilder();
  const conv = (input: string, name: string, from: number, to: number) =>
    g.node('Conv', [input, g.constant(`${name}_w`, [to, from, 3, 3], weights(to * from * 9, to + from, 0.05))], {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    });
  // Conditioning: mean over the sequence, projected to one bias per hidden channel.
  const text = g.node('ReduceMean', ['encoder_hidden_states'], { axes: [1], keepdims: 0 });
  const project = g.constant('text_w', [crossAttentionDim, WIDTH], weights(crossAttentionDim * WIDTH, 7, 0.01));
  const textBias = g.node('Reshape', [
    g.node('MatMul', [text, project]),
    g.int64Constant('to_bias', [-1, WIDTH, 1, 1]),
  ]);
  const time = g.node('Div', [g.node('Cast', ['timestep'], { to: 1 }), g.scalar('t_scale', 1000)]);
  const timeBias = g.node('Reshape', [time, g.int64Constant('to_column', [-1, 1, 1, 1])]);
  let h = g.node('Relu', [g.node('Add', [conv('sample', 'in', 4, WIDTH), textBias])]);
  h = g.node('Relu', [g.node('Add', [conv(h, 'mid', WIDTH, WIDTH), timeBias])]);
  g.node('Identity', [conv(h, 'out', WIDTH, 4)], {}, 'out_sample');
  writeModel(
    path,
    g.buildModel(
      [
        { name: 'sample', dims: ['batch_size', 4, 'height', 'width'] },
        { name: 'timestep', type: 'int64', dims: ['steps'] },
        { name: 'encoder_hidden_states', dims: ['batch_size', 'sequence_length', crossAttentionDim] },
      ],
      [{ name: 'out_sample', dims: ['batch_size', 4, 'height', 'width'] }],
      'unet',
    ),
  );
}
