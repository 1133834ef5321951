/**
 * diffusers' PNDMScheduler with skip_prk_steps (PLMS only), SD 1.5's own scheduler. Its schedule
 * repeats the second timestep (N+1 entries): the second call re-evaluates the first step's end point
 * and averages the two outputs (a Heun-like start); later calls use Adams-Bashforth combinations of
 * the last 2..4 model outputs.
 */
import { refuseOption, resolveDiscreteConfig, type SchedulerConfigJson } from '../config.js';
import { f32 } from '../numeric.js';
import { AlphaSchedule } from './ddpm-family.js';
import { checkStepCount, spacedTimesteps } from './spacing.js';
import { checkSameLength, type Scheduler, type StepOutput } from './types.js';

export class PNDMScheduler implements Scheduler {
  readonly className = 'PNDMScheduler';
  readonly timestepDtype = 'int64';
  readonly strengthRule = 'sd';
  get numTrainTimesteps(): number {
    return this.config.num_train_timesteps;
  }
  private readonly config;
  private readonly alphas: AlphaSchedule;
  timesteps: number[] = [];
  private steps = 0;
  private counter = 0;
  private ets: Float32Array[] = [];
  private currentSample: Float32Array | null = null;

  constructor(json: SchedulerConfigJson) {
    if (!json.skip_prk_steps) refuseOption(this.className, 'skip_prk_steps', json.skip_prk_steps ?? false, 'true');
    this.config = resolveDiscreteConfig(this.className, json);
    if (this.config.prediction_type === 'sample')
      refuseOption(this.className, 'prediction_type', 'sample', '"epsilon", "v_prediction"');
    this.alphas = new AlphaSchedule(this.config, json.set_alpha_to_one ?? false);
  }

  setTimesteps(steps: number): void {
    const T = this.config.num_train_timesteps;
    checkStepCount(this.className, steps, T);
    this.steps = steps;
    // Ascending base timesteps, then PLMS's [..., ts[-2], ts[-2], ts[-1]] reversed.
    const base = spacedTimesteps(this.config.timestep_spacing, steps, T, this.config.steps_offset, false).reverse();
    const plms = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)];
    this.timesteps = plms.reverse();
    this.counter = 0;
    this.ets = [];
    this.currentSample = null;
  }

  /** PNDM counts its own calls; img2img slices the schedule and starts the counter at 0. */
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
    checkSameLength('PNDMScheduler.step', modelOutput, sample);
    if (this.steps === 0) throw new RangeError('PNDMScheduler.step before setTimesteps');
    const stride = Math.floor(this.config.num_train_timesteps / this.steps);
    let t = timestep;
    let prevT = timestep - stride;
    if (this.counter !== 1) {
      this.ets = this.ets.slice(-3);
      this.ets.push(modelOutput);
    } else {
      prevT = timestep;
      t = timestep + stride;
    }
    let combined: Float32Array;
    let from = sample;
    const e = this.ets;
    const n = e.length;
    if (n === 1 && this.counter === 0) {
      combined = modelOutput;
      this.currentSample = sample;
    } else if (n === 1 && this.counter === 1) {
      combined = modelOutput.map((m, i) => f32(f32(m + e[0][i]) / 2));
      from = this.currentSample ?? sample;
      this.currentSample = null;
    } else if (n === 2) {
      combined = e[1].map((e1, i) => f32(f32(f32(3 * e1) - e[0][i]) / 2));
    } else if (n === 3) {
      combined = e[2].map((e2, i) => f32(f32(f32(f32(23 * e2) - f32(16 * e[1][i])) + f32(5 * e[0][i])) / 12));
    } else {
      const c = f32(1 / 24);
      combined = e[3].map((e3, i) =>
        f32(c * f32(f32(f32(f32(55 * e3) - f32(59 * e[2][i])) + f32(37 * e[1][i])) - f32(9 * e[0][i]))),
      );
    }
    const prevSample = this.previousSample(from, t, prevT, combined);
    this.counter++;
    return { prevSample, predOriginal: this.predictOriginal(from, t, combined) };
  }

  /** PNDM's formula (F-PNDM eq. 9) from sample at t to prevT with the combined output. */
  private previousSample(sample: Float32Array, t: number, prevT: number, output: Float32Array): Float32Array {
    const alpha = this.alphas.at(t);
    const alphaPrev = this.alphas.at(prevT);
    const beta = f32(1 - alpha);
    const betaPrev = f32(1 - alphaPrev);
    let eps = output;
    if (this.config.prediction_type === 'v_prediction') {
      const sa = f32(Math.sqrt(alpha));
      const sb = f32(Math.sqrt(beta));
      eps = output.map((v, i) => f32(f32(sa * v) + f32(sb * sample[i])));
    }
    const sampleCoeff = f32(Math.sqrt(f32(alphaPrev / alpha)));
    const denominator = f32(f32(alpha * f32(Math.sqrt(betaPrev))) + f32(Math.sqrt(f32(f32(alpha * beta) * alphaPrev))));
    const difference = f32(alphaPrev - alpha);
    return sample.map((x, i) => f32(f32(sampleCoeff * x) - f32(f32(difference * eps[i]) / denominator)));
  }

  /** PNDM's step returns no clean-latent estimate; this is the epsilon-form one, for previews. */
  private predictOriginal(sample: Float32Array, t: number, output: Float32Array): Float32Array {
    const alpha = this.alphas.at(t);
    const sa = f32(Math.sqrt(alpha));
    const sb = f32(Math.sqrt(f32(1 - alpha)));
    if (this.config.prediction_type === 'v_prediction')
      return sample.map((x, i) => f32(f32(sa * x) - f32(sb * output[i])));
    return sample.map((x, i) => f32(f32(x - f32(sb * output[i])) / sa));
  }
}
