/**
 * img2img's start step: how `strength` (or SDXL's `denoising_start`) cuts the schedule, by family,
 * exactly as diffusers' pipelines do:
 * - SD / SDXL (Euler, Euler a, DDIM, PNDM): init = min(int(N*s), N), t_start = N - init,
 *   timesteps[t_start:], set_begin_index(t_start). PNDM's repeated timestep makes that int(N*s) + 1 calls.
 * - Flux: init = min(N*s, N) as a float, t_start = int(N - init) (so N=2, s=0.6 runs 2 steps, SD 1).
 * - LCM: strength goes into set_timesteps, which shortens its 50-step grid; all N steps run.
 * - SDXL denoising_start d: strength ignored, t_start = number of timesteps >= round(T - d*T), and the
 *   start latent is not noised.
 * A request that leaves no step is refused with the values that would work.
 */
import { GatewayError } from '../errors.js';
import { roundHalfEven } from './numeric.js';
import type { Scheduler } from './schedulers/types.js';

export interface Img2ImgRequest {
  steps: number;
  strength: number;
  /** Flux dev: `calculateShift(imageSeqLen)`; needed when the scheduler shifts dynamically. */
  mu?: number;
  /** SDXL refiner hand-over: start at this fraction of the schedule, without noising. */
  denoisingStart?: number;
}

export interface Img2ImgPlan {
  /** The timesteps that run, one network call (and one progress event) each. */
  timesteps: number[];
  /** The schedule before the cut. */
  fullTimesteps: number[];
  /** diffusers' init_timestep (an integer for SD, a float for Flux; undefined for LCM / denoising_start). */
  initTimestep?: number;
  tStart: number;
  /** Whether the start latent is noised at timesteps[0] (false for denoising_start). */
  addNoise: boolean;
}

export function planImg2Img(scheduler: Scheduler, request: Img2ImgRequest): Img2ImgPlan {
  const { steps, strength } = request;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new GatewayError('BAD_REQUEST', `steps must be a positive integer; got ${steps}`, { steps });
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw new GatewayError('BAD_REQUEST', `strength must be from 0 to 1; got ${strength}`, { strength });
  }
  if (scheduler.strengthRule === 'lcm') {
    scheduler.setTimesteps(steps, { strength });
    const timesteps = [...scheduler.timesteps];
    return { timesteps, fullTimesteps: timesteps, tStart: 0, addNoise: true };
  }
  scheduler.setTimesteps(steps, { mu: request.mu });
  const full = [...scheduler.timesteps];
  if (request.denoisingStart !== undefined) return cutAtDenoisingStart(scheduler, full, request.denoisingStart);

  const flux = scheduler.strengthRule === 'flux';
  const initTimestep = flux ? Math.min(steps * strength, steps) : Math.min(Math.trunc(steps * strength), steps);
  const tStart = Math.trunc(Math.max(steps - initTimestep, 0));
  const timesteps = full.slice(tStart);
  if (timesteps.length === 0) throw noStepLeft(steps, strength, flux);
  scheduler.setBeginIndex(tStart);
  return { timesteps, fullTimesteps: full, initTimestep, tStart, addNoise: true };
}

function cutAtDenoisingStart(scheduler: Scheduler, full: number[], denoisingStart: number): Img2ImgPlan {
  if (!(denoisingStart > 0 && denoisingStart < 1)) {
    throw new GatewayError('BAD_REQUEST', `denoisingStart must be between 0 and 1 (exclusive); got ${denoisingStart}`, {
      denoisingStart,
    });
  }
  const T = scheduler.numTrainTimesteps;
  const cutoff = roundHalfEven(T - denoisingStart * T);
  const run = full.filter((t) => t < cutoff).length;
  if (run === 0) {
    throw new GatewayError(
      'BAD_REQUEST',
      `denoisingStart ${denoisingStart} leaves no timestep below ${cutoff} in this ${full.length}-step schedule; ` +
        `use a smaller denoisingStart or more steps`,
      { denoisingStart, cutoff },
    );
  }
  const tStart = full.length - run;
  scheduler.setBeginIndex(tStart);
  return { timesteps: full.slice(tStart), fullTimesteps: full, tStart, addNoise: false };
}

function noStepLeft(steps: number, strength: number, flux: boolean): GatewayError {
  if (strength === 0 || flux) {
    return new GatewayError(
      'NO_DENOISING_STEPS',
      `strength 0 leaves no denoising step; use a strength above 0 (up to 1)`,
      {
        steps,
        strength,
      },
    );
  }
  let minSteps = Math.ceil(1 / strength);
  while (Math.trunc(minSteps * strength) < 1) minSteps++;
  const minStrength = Math.ceil((1 / steps) * 1e4) / 1e4;
  return new GatewayError(
    'NO_DENOISING_STEPS',
    `strength ${strength} with ${steps} steps gives int(${steps} x ${strength}) = 0 denoising steps; ` +
      `use at least ${minSteps} steps at this strength, or a strength of at least ${minStrength} with ${steps} steps`,
    { steps, strength, minSteps, minStrength },
  );
}

/** The start latent: x0 noised at the first timestep that runs (or x0 itself under denoising_start). */
export function startLatent(
  scheduler: Scheduler,
  plan: Img2ImgPlan,
  x0: Float32Array,
  noise: Float32Array,
): Float32Array {
  return plan.addNoise ? scheduler.addNoise(x0, noise, plan.timesteps[0]) : x0.slice();
}
