/**
 * What every scheduler gives the img2img loop. Schedulers are stateful per run as in diffusers: build
 * one, `setTimesteps`, (for img2img) slice by strength and `setBeginIndex`, then call `scaleModelInput`
 * and `step` once per network call, in order. All tensors are flat float32 arrays (elementwise math;
 * shapes belong to the caller); the arithmetic is float32, op for op as torch runs it on float32 tensors.
 */
import type { SchedulerClassName } from '../config.js';

export interface StepOutput {
  /** The latent after this step (diffusers' `prev_sample`). */
  prevSample: Float32Array;
  /** The model's estimate of the clean latent (`pred_original_sample`; LCM: `denoised`, its output). */
  predOriginal: Float32Array;
}

/** How img2img turns `strength` into the start step (diffusers' pipelines differ by family). */
export type StrengthRule = 'sd' | 'flux' | 'lcm';

export interface SetTimestepsOptions {
  /** LCM img2img passes strength into set_timesteps. */
  strength?: number;
  /** Flux's resolution-dependent shift (`calculate_shift(image_seq_len)`), for use_dynamic_shifting. */
  mu?: number;
}

export interface Scheduler {
  readonly className: SchedulerClassName;
  /** The network's timestep dtype: float32 (Euler, Euler a, FlowMatch) or int64 (DDIM, PNDM, LCM). */
  readonly timestepDtype: 'float32' | 'int64';
  readonly strengthRule: StrengthRule;
  /** T, the training schedule's length (`num_train_timesteps`). */
  readonly numTrainTimesteps: number;
  /** The full schedule after `setTimesteps`, in run order (values exact: float32 or integers). */
  readonly timesteps: readonly number[];
  /** Euler / FlowMatch: the sigma schedule incl. the final 0; others: undefined. */
  readonly sigmas?: Float32Array;
  setTimesteps(steps: number, options?: SetTimestepsOptions): void;
  /** Where the run starts in `timesteps` (img2img's t_start); diffusers' `set_begin_index`. */
  setBeginIndex(index: number): void;
  /** The noised start latent at `timestep` (the first one that runs). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array;
  /** What the network sees at `timestep` (Euler divides by sqrt(sigma^2 + 1); others pass it through). */
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  /** Whether the next `step` consumes a fresh N(0, 1) draw of the latent's shape. */
  needsStepNoise(): boolean;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: Float32Array): StepOutput;
}

export function checkSameLength(what: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new RangeError(`${what}: ${a.length} values against ${b.length}`);
}

export function requireNoise(className: string, noise: Float32Array | undefined, length: number): Float32Array {
  if (!noise) throw new RangeError(`${className}.step needs this step's noise (needsStepNoise() is true)`);
  if (noise.length !== length)
    throw new RangeError(`${className}.step: noise has ${noise.length} values, not ${length}`);
  return noise;
}
