/**
 * What DDIM, PNDM and LCM share: the alphas_cumprod schedule, integer timesteps, and DDPM's
 * `add_noise` (sqrt(acp[t]) x0 + sqrt(1 - acp[t]) noise).
 */
import { alphasCumprod, makeBetas } from '../betas.js';
import type { DiscreteConfig } from '../config.js';
import { f32 } from '../numeric.js';
import { checkSameLength } from './types.js';

export class AlphaSchedule {
  readonly alphasCumprod: Float32Array;
  /** acp used past the end of the schedule: 1 with set_alpha_to_one, else acp[0]. */
  readonly finalAlphaCumprod: number;

  constructor(config: DiscreteConfig, setAlphaToOne: boolean) {
    this.alphasCumprod = alphasCumprod(makeBetas(config));
    this.finalAlphaCumprod = setAlphaToOne ? 1 : this.alphasCumprod[0];
  }

  at(timestep: number): number {
    if (!Number.isInteger(timestep) || timestep >= this.alphasCumprod.length)
      throw new RangeError(
        `timestep ${timestep} is outside the training schedule (0..${this.alphasCumprod.length - 1})`,
      );
    return timestep >= 0 ? this.alphasCumprod[timestep] : this.finalAlphaCumprod;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('addNoise', original, noise);
    const alpha = this.at(timestep);
    const sqrtAlpha = f32(Math.sqrt(alpha));
    const sqrtOneMinusAlpha = f32(Math.sqrt(f32(1 - alpha)));
    return original.map((x, i) => f32(f32(sqrtAlpha * x) + f32(sqrtOneMinusAlpha * noise[i])));
  }
}
