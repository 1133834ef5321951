/**
 * The img2img denoising loop, as diffusers' pipelines run it, with the network left to the caller:
 * for each planned timestep, scale the latent, call the model (which returns the guided output),
 * draw the step's noise if the scheduler takes one (in the generator's order), step. One call of the
 * model is one progress step. Cancellation is checked before every network call.
 */
import { throwIfCancelled } from '../errors.js';
import type { Scheduler } from './schedulers/types.js';
import type { Img2ImgPlan } from './strength.js';

export interface DenoiseProgress {
  /** 1-based, one per network call. */
  step: number;
  total: number;
  timestep: number;
  /** What the network saw, its (guided) output, the clean-latent estimate and the latent after the step. */
  modelInput: Float32Array;
  modelOutput: Float32Array;
  predOriginal: Float32Array;
  latent: Float32Array;
}

export interface DenoiseOptions {
  scheduler: Scheduler;
  plan: Img2ImgPlan;
  /** The start latent (`startLatent`), in the layout the model takes (Flux: packed). */
  latent: Float32Array;
  /** The network (with guidance applied): model input and the scheduler's timestep → output. */
  model: (modelInput: Float32Array, timestep: number) => Float32Array | Promise<Float32Array>;
  /** A fresh N(0, 1) draw of the latent's shape, for schedulers that take step noise (Euler a, LCM). */
  stepNoise: () => Float32Array;
  onStep?: (progress: DenoiseProgress) => void;
  signal?: AbortSignal;
}

/**
 * Runs the loop and returns the final latent. For LCM that is the last step's `denoised`, which is
 * what its pipeline decodes (its last step returns it as the sample).
 */
export async function denoise(options: DenoiseOptions): Promise<Float32Array> {
  const { scheduler, plan, model, stepNoise, onStep, signal } = options;
  let latent = options.latent;
  const total = plan.timesteps.length;
  for (let index = 0; index < total; index++) {
    throwIfCancelled(signal);
    const timestep = plan.timesteps[index];
    const modelInput = scheduler.scaleModelInput(latent, timestep);
    const modelOutput = await model(modelInput, timestep);
    const noise = scheduler.needsStepNoise() ? stepNoise() : undefined;
    const { prevSample, predOriginal } = scheduler.step(modelOutput, timestep, latent, noise);
    latent = prevSample;
    onStep?.({ step: index + 1, total, timestep, modelInput, modelOutput, predOriginal, latent });
  }
  return latent;
}
