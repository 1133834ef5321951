/**
 * diffusers' EulerDiscreteScheduler and EulerAncestralDiscreteScheduler (s_churn = 0, discrete
 * timesteps, linear sigma interpolation, final sigma 0). Sigmas are the training sigmas interpolated
 * at the (float32) timesteps; the model input is x / sqrt(sigma^2 + 1).
 */
import { alphasCumprod, makeBetas, trainingSigmas } from '../betas.js';
import { type DiscreteConfig, refuseOption, resolveDiscreteConfig, type SchedulerConfigJson } from '../config.js';
import { f32, interpOnIndexGrid } from '../numeric.js';
import { checkStepCount, spacedTimesteps } from './spacing.js';
import { checkSameLength, requireNoise, type Scheduler, type StepOutput } from './types.js';

abstract class EulerFamily implements Scheduler {
  abstract readonly className: 'EulerDiscreteScheduler' | 'EulerAncestralDiscreteScheduler';
  readonly timestepDtype = 'float32';
  readonly strengthRule = 'sd';
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }
  protected readonly config: DiscreteConfig;
  private readonly trainSigmas: Float32Array;
  timesteps: number[] = [];
  sigmas: Float32Array = new Float32Array(0);
  protected stepIndex: number | null = null;
  private beginIndex: number | null = null;

  protected constructor(className: EulerFamily['className'], json: SchedulerConfigJson) {
    if (json.use_karras_sigmas) refuseOption(className, 'use_karras_sigmas', true, 'false');
    if (json.use_exponential_sigmas) refuseOption(className, 'use_exponential_sigmas', true, 'false');
    if (json.use_beta_sigmas) refuseOption(className, 'use_beta_sigmas', true, 'false');
    if (json.final_sigmas_type && json.final_sigmas_type !== 'zero')
      refuseOption(className, 'final_sigmas_type', json.final_sigmas_type, '"zero"');
    if (json.interpolation_type && json.interpolation_type !== 'linear')
      refuseOption(className, 'interpolation_type', json.interpolation_type, '"linear"');
    if (json.timestep_type && json.timestep_type !== 'discrete')
      refuseOption(className, 'timestep_type', json.timestep_type, '"discrete"');
    this.config = resolveDiscreteConfig(className, json);
    this.trainSigmas = trainingSigmas(alphasCumprod(makeBetas(this.config)));
  }

  setTimesteps(steps: number): void {
    const T = this.config.num_train_timesteps;
    checkStepCount(this.className, steps, T);
    // Timesteps are float32 (np.float32 linspace / astype), sigmas interpolated at those float32 values.
    this.timesteps = spacedTimesteps(this.config.timestep_spacing, steps, T, this.config.steps_offset, true).map(f32);
    const sigmas = new Float32Array(this.timesteps.length + 1);
    this.timesteps.forEach((t, i) => {
      sigmas[i] = interpOnIndexGrid(t, this.trainSigmas);
    });
    this.sigmas = sigmas;
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  /** diffusers' `index_for_timestep`: the timestep's position, its second one when it repeats. */
  private indexFor(timestep: number): number {
    const matches = this.timesteps.flatMap((t, i) => (t === timestep ? [i] : []));
    if (matches.length === 0) throw new RangeError(`${this.className}: timestep ${timestep} is not in the schedule`);
    return matches.length > 1 ? matches[1] : matches[0];
  }

  /** diffusers' `_init_step_index`: the begin index, else the timestep's position. */
  private currentIndex(timestep: number): number {
    if (this.stepIndex === null) this.stepIndex = this.beginIndex ?? this.indexFor(timestep);
    return this.stepIndex;
  }

  addNoise(original: Float32Array, noise: Float32Array, timestep: number): Float32Array {
    checkSameLength('addNoise', original, noise);
    const index = this.beginIndex ?? this.indexFor(timestep);
    const sigma = this.sigmas[index];
    return original.map((x, i) => f32(x + f32(noise[i] * sigma)));
  }

  scaleModelInput(sample: Float32Array, timestep: number): Float32Array {
    const sigma = this.sigmas[this.currentIndex(timestep)];
    const scale = f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
    return sample.map((x) => f32(x / scale));
  }

  /** pred_original_sample for the configured prediction type. */
  protected predictOriginal(modelOutput: Float32Array, sample: Float32Array, sigma: number): Float32Array {
    switch (this.config.prediction_type) {
      case 'epsilon':
        return sample.map((x, i) => f32(x - f32(sigma * modelOutput[i])));
      case 'v_prediction': {
        const sigmaSquaredPlusOne = f32(f32(sigma * sigma) + 1);
        const outScale = f32(-sigma / f32(Math.sqrt(sigmaSquaredPlusOne)));
        return sample.map((x, i) => f32(f32(modelOutput[i] * outScale) + f32(x / sigmaSquaredPlusOne)));
      }
      case 'sample':
        return modelOutput.slice();
    }
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: Float32Array): StepOutput {
    checkSameLength(`${this.className}.step`, modelOutput, sample);
    const index = this.currentIndex(timestep);
    if (index + 1 >= this.sigmas.length) throw new RangeError(`${this.className}: no step left after index ${index}`);
    const result = this.advance(modelOutput, sample, this.sigmas[index], this.sigmas[index + 1], noise);
    this.stepIndex = index + 1;
    return result;
  }

  needsStepNoise(): boolean {
    return false;
  }

  protected abstract advance(
    modelOutput: Float32Array,
    sample: Float32Array,
    sigma: number,
    sigmaNext: number,
    noise: Float32Array | undefined,
  ): StepOutput;
}

export class EulerDiscreteScheduler extends EulerFamily {
  readonly className = 'EulerDiscreteScheduler';

  constructor(config: SchedulerConfigJson) {
    super('EulerDiscreteScheduler', config);
  }

  protected advance(modelOutput: Float32Array, sample: Float32Array, sigma: number, sigmaNext: number): StepOutput {
    const predOriginal = this.predictOriginal(modelOutput, sample, sigma);
    const dt = f32(sigmaNext - sigma);
    const prevSample = sample.map((x, i) => {
      const derivative = f32(f32(x - predOriginal[i]) / sigma);
      return f32(x + f32(derivative * dt));
    });
    return { prevSample, predOriginal };
  }
}

export class EulerAncestralDiscreteScheduler extends EulerFamily {
  readonly className = 'EulerAncestralDiscreteScheduler';

  constructor(config: SchedulerConfigJson) {
    super('EulerAncestralDiscreteScheduler', config);
    // diffusers raises NotImplementedError for it.
    if (this.config.prediction_type === 'sample')
      refuseOption(this.className, 'prediction_type', 'sample', '"epsilon", "v_prediction"');
  }

  /** Every step adds fresh noise (the last one too, scaled by sigma_up = 0). */
  override needsStepNoise(): boolean {
    return true;
  }

  protected advance(
    modelOutput: Float32Array,
    sample: Float32Array,
    sigma: number,
    sigmaNext: number,
    noise: Float32Array | undefined,
  ): StepOutput {
    const stepNoise = requireNoise(this.className, noise, sample.length);
    const predOriginal = this.predictOriginal(modelOutput, sample, sigma);
    const toSquared = f32(sigmaNext * sigmaNext);
    const fromSquared = f32(sigma * sigma);
    const sigmaUp = f32(Math.sqrt(f32(f32(toSquared * f32(fromSquared - toSquared)) / fromSquared)));
    const sigmaDown = f32(Math.sqrt(f32(toSquared - f32(sigmaUp * sigmaUp))));
    const dt = f32(sigmaDown - sigma);
    const prevSample = sample.map((x, i) => {
      const derivative = f32(f32(x - predOriginal[i]) / sigma);
      const moved = f32(x + f32(derivative * dt));
      return f32(moved + f32(stepNoise[i] * sigmaUp));
    });
    return { prevSample, predOriginal };
  }
}
