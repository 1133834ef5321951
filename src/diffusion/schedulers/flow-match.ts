/**
 * diffusers' FlowMatchEulerDiscreteScheduler as the Flux pipelines drive it: sigmas
 * linspace(1, 1/N, N) shifted (dynamically by mu = calculate_shift(image_seq_len) for Flux dev,
 * statically by `shift` for schnell / SD3), timesteps = 1000 sigma, then a final sigma of 0.
 * img2img noises with `scale_noise` (sigma noise + (1 - sigma) x0); a step is x + (sigma' - sigma) v.
 */
import { GatewayError } from '../../errors.js';
import { refuseOption, type SchedulerConfigJson } from '../config.js';
import { f32, linspace } from '../numeric.js';
import { checkSameLength, type Scheduler, type SetTimestepsOptions, type StepOutput } from './types.js';

export interface FlowMatchConfig {
  num_train_timesteps: number;
  shift: number;
  use_dynamic_shifting: boolean;
  base_shift: number;
  max_shift: number;
  base_image_seq_len: number;
  max_image_seq_len: number;
}

/** The Flux pipelines' `calculate_shift`: mu linear in the packed sequence length. */
export function calculateShift(imageSeqLen: number, config: FlowMatchConfig): number {
  const m = (config.max_shift - config.base_shift) / (config.max_image_seq_len - config.base_image_seq_len);
  const b = config.base_shift - m * config.base_image_seq_len;
  return imageSeqLen * m + b;
}

/** Flux's packed sequence length for an image: (H // 16) * (W // 16) with the VAE's 8x factor. */
export function fluxImageSeqLen(height: number, width: number, vaeScaleFactor = 8): number {
  return Math.floor(height / vaeScaleFactor / 2) * Math.floor(width / vaeScaleFactor / 2);
}

/** What the Flux pipelines hand their transformer as `timestep`: t / 1000 (= sigma), float32. */
export function fluxTransformerTimestep(timestep: number): number {
  return f32(timestep / 1000);
}

export class FlowMatchEulerDiscreteScheduler implements Scheduler {
  readonly className = 'FlowMatchEulerDiscreteScheduler';
  readonly timestepDtype = 'float32';
  readonly strengthRule = 'flux';
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }
  readonly config: FlowMatchConfig;
  timesteps: number[] = [];
  sigmas: Float32Array = new Float32Array(0);
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(json: SchedulerConfigJson) {
    const name = this.className;
    if (json.invert_sigmas) refuseOption(name, 'invert_sigmas', true, 'false');
    if (json.shift_terminal) refuseOption(name, 'shift_terminal', json.shift_terminal, 'null');
    if (json.use_karras_sigmas) refuseOption(name, 'use_karras_sigmas', true, 'false');
    if (json.use_exponential_sigmas) refuseOption(name, 'use_exponential_sigmas', true, 'false');
    if (json.use_beta_sigmas) refuseOption(name, 'use_beta_sigmas', true, 'false');
    if (json.stochastic_sampling) refuseOption(name, 'stochastic_sampling', true, 'false');
    if (json.time_shift_type && json.time_shift_type !== 'exponential')
      refuseOption(name, 'time_shift_type', json.time_shift_type, '"exponential"');
    this.config = {
      num_train_timesteps: json.num_train_timesteps ?? 1000,
      shift: json.shift ?? 1,
      use_dynamic_shifting: json.use_dynamic_shifting ?? false,
      base_shift: json.base_shift ?? 0.5,
      max_shift: json.max_shift ?? 1.15,
      base_image_seq_len: json.base_image_seq_len ?? 256,
      max_image_seq_len: json.max_image_seq_len ?? 4096,
    };
  }

  setTimesteps(steps: number, options: SetTimestepsOptions = {}): void {
    if (!Number.isInteger(steps) || steps < 1) {
      throw new GatewayError('BAD_REQUEST', `steps must be a positive integer; got ${steps}`, { steps });
    }
    // The pipeline's sigmas, as float32 (np.array(sigmas).astype(np.float32)); the shift runs in float32.
    const unshifted = linspace(1, 1 / steps, steps).map(f32);
    let shifted: number[];
    if (this.config.use_dynamic_shifting) {
      if (options.mu === undefined)
        throw new RangeError('FlowMatchEulerDiscreteScheduler with use_dynamic_shifting needs mu (calculateShift)');
      const expMu = f32(Math.exp(options.mu));
      shifted = unshifted.map((s) => f32(expMu / f32(expMu + f32(f32(1 / s) - 1))));
    } else {
      const shift = f32(this.config.shift);
      shifted = unshifted.map((s) => f32(f32(shift * s) / f32(1 + f32(f32(shift - 1) * s))));
    }
    this.sigmas = Float32Array.from([...shifted, 0]);
    this.timesteps = shifted.map((s) => f32(s * this.config.num_train_timesteps));
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  private indexOf(timestep: number): number {
    const matches = this.timesteps.flatMap((t, i) => (t === timestep ? [i] : []));
    if (matches.length === 0) throw new RangeError(`${this.className}: timestep ${timestep} is not in the schedule`);
    return matches.length > 1 ? matches[1] : matches[0];
  }

  /** diffusers' `scale_noise` at the begin index (or the timestep's position). */
  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('scaleNoise', original, noise);
    const index = this.beginIndex === null ? this.indexOf(timestep) : (this.stepIndex ?? this.beginIndex);
    const sigma = this.sigmas[index];
    const keep = f32(1 - sigma);
    return original.map((x, i) => f32(f32(sigma * noise[i]) + f32(keep * x)));
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  needsStepNoise(): boolean {
    return false;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepOutput {
    checkSameLength(`${this.className}.step`, modelOutput, sample);
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexOf(timestep);
    const index = this.stepIndex;
    if (index + 1 >= this.sigmas.length) throw new RangeError(`${this.className}: no step left after index ${index}`);
    const sigma = this.sigmas[index];
    const dt = f32(this.sigmas[index + 1] - sigma);
    const prevSample = sample.map((x, i) => f32(x + f32(dt * modelOutput[i])));
    // x0 estimate of a flow model: x - sigma v.
    const predOriginal = sample.map((x, i) => f32(x - f32(sigma * modelOutput[i])));
    this.stepIndex = index + 1;
    return { prevSample, predOriginal };
  }
}
