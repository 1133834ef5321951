/**
 * diffusers' LCMScheduler. Its timesteps come from a fixed grid of `original_inference_steps` (50)
 * skipped down to N; img2img passes `strength` into `setTimesteps`, which shortens the grid (every one
 * of the N steps runs). Each step predicts x0, applies the consistency boundary condition
 * (c_skip, c_out of timestep * timestep_scaling) and, except on the last step, re-noises to the next
 * timestep with a fresh draw. The pipeline's result is the last step's `denoised` (predOriginal here).
 */
import { GatewayError } from '../../errors.js';
import { refuseOption, resolveDiscreteConfig, type SchedulerConfigJson } from '../config.js';
import { f32, linspace } from '../numeric.js';
import { AlphaSchedule } from './ddpm-family.js';
import { checkSameLength, requireNoise, type Scheduler, type SetTimestepsOptions, type StepOutput } from './types.js';

const SIGMA_DATA = 0.5;

export class LCMScheduler implements Scheduler {
  readonly className = 'LCMScheduler';
  readonly timestepDtype = 'int64';
  readonly strengthRule = 'lcm';
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }
  private readonly config;
  private readonly alphas: AlphaSchedule;
  private readonly originalSteps: number;
  private readonly timestepScaling: number;
  private readonly clipRange: number | null;
  timesteps: number[] = [];
  private stepIndex = 0;

  constructor(json: SchedulerConfigJson) {
    this.config = resolveDiscreteConfig(this.className, json);
    this.alphas = new AlphaSchedule(this.config, json.set_alpha_to_one ?? true);
    this.originalSteps = json.original_inference_steps ?? 50;
    this.timestepScaling = json.timestep_scaling ?? 10;
    this.clipRange = json.clip_sample ? (json.clip_sample_range ?? 1) : null;
    if (this.originalSteps > this.config.num_train_timesteps)
      refuseOption(
        this.className,
        'original_inference_steps',
        this.originalSteps,
        `<= ${this.config.num_train_timesteps}`,
      );
  }

  setTimesteps(steps: number, options: SetTimestepsOptions = {}): void {
    const strength = options.strength ?? 1;
    const original = this.originalSteps;
    const k = Math.floor(this.config.num_train_timesteps / original);
    const originLength = Math.trunc(original * strength);
    const T = this.config.num_train_timesteps;
    if (!Number.isInteger(steps) || steps < 1 || steps > T) {
      throw new GatewayError('BAD_REQUEST', `LCM steps must be an integer from 1 to ${original}; got ${steps}`, {
        steps,
        allowed: { min: 1, max: original },
      });
    }
    if (Math.floor(originLength / steps) < 1) {
      // diffusers: "The combination of `original_steps x strength` ... is smaller than `num_inference_steps`".
      throw new GatewayError(
        'NO_DENOISING_STEPS',
        `LCM with strength ${strength} keeps int(${original} x ${strength}) = ${originLength} ` +
          `of its ${original} timesteps, fewer than the ${steps} steps asked for: ` +
          `use at most ${originLength} steps, or a strength of at least ${steps / original}`,
        { steps, strength, maxSteps: originLength, minStrength: steps / original },
      );
    }
    if (steps > original) {
      throw new GatewayError(
        'BAD_REQUEST',
        `LCM runs at most ${original} steps (original_inference_steps); got ${steps}`,
        {
          steps,
          allowed: { min: 1, max: original },
        },
      );
    }
    // origin = [k*i - 1 for i in 1..L], reversed; then N indices floor(linspace(0, L, N, endpoint=False)).
    const origin = Array.from({ length: originLength }, (_, i) => (i + 1) * k - 1).reverse();
    this.timesteps = linspace(0, originLength, steps, false).map((x) => origin[Math.floor(x)]);
    this.stepIndex = 0;
  }

  /** LCM img2img never slices its schedule; the begin index is where it already is. */
  setBeginIndex(index: number): void {
    this.stepIndex = index;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    return this.alphas.addNoise(original, noise, timestep);
  }

  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  needsStepNoise(): boolean {
    return this.stepIndex !== this.timesteps.length - 1;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: Float32Array): StepOutput {
    checkSameLength('LCMScheduler.step', modelOutput, sample);
    const index = this.stepIndex;
    if (this.timesteps[index] !== timestep)
      throw new RangeError(`LCMScheduler: step ${index} runs timestep ${this.timesteps[index]}, not ${timestep}`);
    const last = index === this.timesteps.length - 1;
    const prevTimestep = last ? timestep : this.timesteps[index + 1];
    const alpha = this.alphas.at(timestep);
    const alphaPrev = this.alphas.at(prevTimestep);
    const sqrtAlpha = f32(Math.sqrt(alpha));
    const sqrtBeta = f32(Math.sqrt(f32(1 - alpha)));
    const scaled = f32(timestep * this.timestepScaling);
    const scaledSquaredPlus = f32(f32(scaled * scaled) + SIGMA_DATA ** 2);
    const cSkip = f32(SIGMA_DATA ** 2 / scaledSquaredPlus);
    const cOut = f32(scaled / f32(Math.sqrt(scaledSquaredPlus)));
    const denoised = new Float32Array(sample.length);
    for (let i = 0; i < sample.length; i++) {
      const x = sample[i];
      const out = modelOutput[i];
      let x0: number;
      switch (this.config.prediction_type) {
        case 'epsilon':
          x0 = f32(f32(x - f32(sqrtBeta * out)) / sqrtAlpha);
          break;
        case 'sample':
          x0 = out;
          break;
        case 'v_prediction':
          x0 = f32(f32(sqrtAlpha * x) - f32(sqrtBeta * out));
          break;
      }
      if (this.clipRange !== null) x0 = Math.min(Math.max(x0, -this.clipRange), this.clipRange);
      denoised[i] = f32(f32(cOut * x0) + f32(cSkip * x));
    }
    let prevSample = denoised;
    if (!last) {
      const stepNoise = requireNoise(this.className, noise, sample.length);
      const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
      const sqrtBetaPrev = f32(Math.sqrt(f32(1 - alphaPrev)));
      prevSample = denoised.map((d, i) => f32(f32(sqrtAlphaPrev * d) + f32(sqrtBetaPrev * stepNoise[i])));
    }
    this.stepIndex = index + 1;
    return { prevSample, predOriginal: denoised };
  }
}
