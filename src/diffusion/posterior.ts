/**
 * The VAE's latent distribution as diffusers' AutoencoderKL hands it to img2img
 * (`DiagonalGaussianDistribution`, `retrieve_latents`): an encoder's `latent_parameters` output holds
 * mean and log-variance concatenated on the channel axis (2C channels); `mode` is the mean and
 * `sample` is mean + exp(logvar / 2) * randn(mean.shape) drawn from the request's generator.
 */
import { f32, torchExpF32 } from './numeric.js';
import type { TorchGenerator } from './random.js';

export interface LatentDistribution {
  mean: Float32Array;
  logvar: Float32Array;
  /** [B, C, H, W] of the mean (C = half the parameters' channels). */
  dims: [number, number, number, number];
}

/** Splits [B, 2C, H, W] parameters into mean and log-variance (clamped to [-30, 20] as diffusers does). */
export function latentDistribution(
  parameters: Float32Array,
  dims: readonly [number, number, number, number],
): LatentDistribution {
  const [batch, channels2, height, width] = dims;
  if (channels2 % 2 !== 0) throw new RangeError(`latent parameters need an even channel count; got ${channels2}`);
  if (parameters.length !== batch * channels2 * height * width)
    throw new RangeError(`latent parameters: ${parameters.length} values do not match [${dims}]`);
  const channels = channels2 / 2;
  const plane = channels * height * width;
  const mean = new Float32Array(batch * plane);
  const logvar = new Float32Array(batch * plane);
  for (let b = 0; b < batch; b++) {
    mean.set(parameters.subarray(b * 2 * plane, b * 2 * plane + plane), b * plane);
    const logs = parameters.subarray(b * 2 * plane + plane, (b + 1) * 2 * plane);
    for (let i = 0; i < plane; i++) logvar[b * plane + i] = Math.min(Math.max(logs[i], -30), 20);
  }
  return { mean, logvar, dims: [batch, channels, height, width] };
}

/** `latent_dist.sample(generator)`: one randn draw of the mean's shape, in float32 as torch computes it. */
export function sampleLatent(distribution: LatentDistribution, generator: Pick<TorchGenerator, 'randn'>): Float32Array {
  const noise = generator.randn(distribution.dims);
  const { mean, logvar } = distribution;
  return mean.map((m, i) => f32(m + f32(torchExpF32(f32(0.5 * logvar[i])) * noise[i])));
}
