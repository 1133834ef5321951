/**
 * A tiny AutoencoderKL stand-in in optimum's ONNX layout, with weights whose outputs are easy to
 * compute by hand: the encoder averages 8x8 patches (mean channels: R, G, B, grey; then four
 * log-variance channels), the decoder maps latent channels 0..2 to RGB and upsamples 8x.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GraphBuilder } from '../../src/gpu/onnx-builder.ts';

export function writeTinyKlModel(dir: string, manifest: Record<string, unknown>): void {
  const enc = new GraphBuilder();
  const w = new Float32Array(8 * 3 * 8 * 8);
  const tap = (out: number, inCh: number, value: number) => {
    for (let k = 0; k < 64; k++) w[(out * 3 + inCh) * 64 + k] = value;
  };
  for (let c = 0; c < 3; c++) tap(c, c, 1 / 64);
  for (let c = 0; c < 3; c++) tap(3, c, 1 / 192);
  for (let c = 0; c < 3; c++) tap(4 + c, c, -1); // log-variance channels: must never reach the latent
  enc.node(
    'Conv',
    ['sample', enc.constant('w', [8, 3, 8, 8], w)],
    { kernel_shape: [8, 8], strides: [8, 8] },
    'latent_sample',
  );
  mkdirSync(join(dir, 'vae_encoder'), { recursive: true });
  writeFileSync(
    join(dir, 'vae_encoder', 'model.onnx'),
    enc.build({ name: 'sample', channels: 3 }, { name: 'latent_sample', channels: 8 }, 'encoder'),
  );

  const dec = new GraphBuilder();
  const d = new Float32Array(3 * 4);
  for (let c = 0; c < 3; c++) d[c * 4 + c] = 1;
  const rgb = dec.node('Conv', ['latent_sample', dec.constant('w', [3, 4, 1, 1], d)], { kernel_shape: [1, 1] });
  const roi = dec.constant('roi', [0], new Float32Array(0));
  const scales = dec.constant('scales', [4], new Float32Array([1, 1, 8, 8]));
  dec.node(
    'Resize',
    [rgb, roi, scales],
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    'sample',
  );
  mkdirSync(join(dir, 'vae_decoder'), { recursive: true });
  writeFileSync(
    join(dir, 'vae_decoder', 'model.onnx'),
    dec.build({ name: 'latent_sample', channels: 4 }, { name: 'sample', channels: 3 }, 'decoder'),
  );
  writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest));
}
