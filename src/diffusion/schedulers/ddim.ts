/** diffusers' DDIMScheduler with eta = 0 (deterministic), integer timesteps. */
import { resolveDiscreteConfig, type SchedulerConfigJson } from '../config.js';
import { f32 } from '../numeric.js';
import { AlphaSchedule } from './ddpm-family.js';
import { checkStepCount, spacedTimesteps } from './spacing.js';
import { checkSameLength, type Scheduler, type StepOutput } from './types.js';

export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly timestepDtype = 'int64';
  readonly strengthRule = 'sd';
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }
  private readonly config;
  private readonly alphas: AlphaSchedule;
  /** clip_sample_range when clip_sample is on. */
  private readonly clipRange: number | null;
  timesteps: number[] = [];
  private steps = 0;

  constructor(json: SchedulerConfigJson) {
    this.config = resolveDiscreteConfig(this.className, json);
    this.alphas = new AlphaSchedule(this.config, json.set_alpha_to_one ?? true);
    this.clipRange = (json.clip_sample ?? true) ? (json.clip_sample_range ?? 1) : null;
  }

  setTimesteps(steps: number): void {
    const T = this.config.num_train_timesteps;
    checkStepCount(this.className, steps, T);
    this.steps = steps;
    this.timesteps = spacedTimesteps(this.config.timestep_spacing, steps, T, this.config.steps_offset, false);
  }

  /** DDIM locates each step by its timestep; the begin index changes nothing. */
  setBeginIndex(_index: number): void {}

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.alphas.addNoise(original, noise, timestep);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  needsStepNoise(): boolean {
    return false;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array): StepOutput {
    checkSameLength('DDIMScheduler.step', modelOutput, sample);
    if (this.steps === 0) throw new RangeError('DDIMScheduler.step before setTimesteps');
    // prev = t - T // N, under every spacing (diffusers' behaviour, also for trailing).
    const prevTimestep = timestep - Math.floor(this.config.num_train_timesteps / this.steps);
    const alpha = this.alphas.at(timestep);
    const alphaPrev = this.alphas.at(prevTimestep);
    const beta = f32(1 - alpha);
    const sqrtAlpha = f32(Math.sqrt(alpha));
    const sqrtBeta = f32(Math.sqrt(beta));
    const predOriginal = new Float32Array(sample.length);
    const predEpsilon = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i];
      const out = modelOutput[i];
      switch (this.config.prediction_type) {
        case 'epsilon':
          predOriginal[i] = f32(f32(x - f32(sqrtBeta * out)) / sqrtAlpha);
          predEpsilon[i] = out;
          break;
        case 'sample':
          predOriginal[i] = out;
          predEpsilon[i] = f32(f32(x - f32(sqrtAlpha * out)) / sqrtBeta);
          break;
        case 'v_prediction':
          predOriginal[i] = f32(f32(sqrtAlpha * x) - f32(sqrtBeta * out));
          predEpsilon[i] = f32(f32(sqrtAlpha * out) + f32(sqrtBeta * x));
          break;
      }
      if (this.clipRange !== null)
        predOriginal[i] = Math.min(Math.max(predOriginal[i], -this.clipRange), this.clipRange);
    }
    // eta = 0: no variance term, so the direction coefficient is sqrt(1 - acp_prev).
    const direction = f32(Math.sqrt(f32(1 - alphaPrev)));
    const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
    const prevSample = predOriginal.map((x0, i) => f32(f32(sqrtAlphaPrev * x0) + f32(direction * predEpsilon[i])));
    return { prevSample, predOriginal };
  }
}
