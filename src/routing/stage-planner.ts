/**
 * Routing of the img2img stages that are not VAE runs (text encoding, the denoising loop), pure
 * over its inputs like planner.ts: LOCAL when the stage's networks fit the device budget, UPSTREAM
 * when an endpoint is expected sooner (or nothing fits), REJECT otherwise, naming the bytes. Never
 * tiled: the UNet's attention mixes the whole latent. A denoise plan's run seconds are steps x
 * seconds per step; its expected seconds add the queue wait.
 */
import type { ModelStageProfiles, StageOperation } from './memory-profile.js';
import {
  type DeviceView,
  gib,
  noUpstreamNote,
  type Plan,
  reasonFor,
  rejected,
  type UpstreamView,
  upstreamOptions,
} from './planner.js';
import { stageWork } from './run-stats.js';
import { estimateStageBytes } from './stage-estimator.js';

export interface StagePlanRequest {
  operation: StageOperation;
  /** Image size in pixels (the latent is this / the model's downscale factor, rounded up). */
  width: number;
  height: number;
  /** Images. */
  batch: number;
  /** Network calls of the stage: the denoising steps that will run (1 for textEncode). */
  steps: number;
  /** Classifier-free guidance: the network sees twice the batch (unconditional + conditional). */
  guidance: boolean;
}

export interface StageDetails {
  steps: number;
  guidance: boolean;
  latentWidth: number;
  latentHeight: number;
  /** The batch the network sees: `batch`, doubled under guidance. */
  networkBatch: number;
  /** Expected seconds of one local network call (one denoising step), from run stats. */
  secondsPerStep: number;
  /** False while the seconds per step are a guess (no run of this stage measured yet). */
  measured: boolean;
}

/** A plan for a text-encode or denoise stage: a Plan without tiles, with the stage's details. */
export interface StagePlan extends Omit<Plan, 'operation' | 'tiles'> {
  operation: StageOperation;
  stage: StageDetails;
}

/** Any plan the router makes. */
export type AnyPlan = Plan | StagePlan;

export function isStagePlan(plan: AnyPlan): plan is StagePlan {
  return 'stage' in plan;
}

export interface StageTimeModel {
  expectedStageSeconds(model: string, operation: StageOperation, work: number): { seconds: number; measured: boolean };
}

export interface StagePlanOptions {
  /** Endpoints that can take the request instead (img2img-capable upstreams). */
  upstreams?: readonly UpstreamView[];
  /** False when this gateway has no local networks for the stage. */
  local?: boolean;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}

export function planStage(
  model: string,
  profiles: ModelStageProfiles,
  request: StagePlanRequest,
  device: DeviceView,
  times: StageTimeModel,
  options: StagePlanOptions = {},
): StagePlan {
  const { operation, width, height, batch, steps, guidance } = request;
  for (const [name, value] of Object.entries({ width, height, batch, steps })) assertPositiveInteger(name, value);
  const profile = profiles[operation];
  if (!profile) throw new RangeError(`unknown stage operation "${String(operation)}"`);
  const f = profiles.downscaleFactor;
  const latentWidth = Math.ceil(width / f);
  const latentHeight = Math.ceil(height / f);
  const networkBatch = guidance ? 2 * batch : batch;
  const estimate = estimateStageBytes(profile, {
    latentWidth,
    latentHeight,
    batch: networkBatch,
    dtype: profile.dtype,
  });
  const calls = operation === 'denoise' ? steps : 1;
  const perStep = times.expectedStageSeconds(
    model,
    operation,
    stageWork(operation, latentWidth * latentHeight, networkBatch),
  );
  const base = {
    model,
    operation,
    width,
    height,
    batch,
    dtype: profile.dtype,
    estimates: { whole: { bytes: estimate.bytes, calibrated: estimate.calibrated }, tiled: null },
    budgetBytes: device.budgetBytes,
    freeBytes: device.freeBytes,
    stage: {
      steps: calls,
      guidance,
      latentWidth,
      latentHeight,
      networkBatch,
      secondsPerStep: perStep.seconds,
      measured: perStep.measured,
    },
  };
  const what =
    `${operation} at ${latentWidth}x${latentHeight} latents, network batch ${networkBatch}` +
    `${guidance ? ' (guidance doubles it)' : ''}`;
  const local = options.local !== false;
  const fits = estimate.bytes <= device.budgetBytes;
  let localPlan: StagePlan | null = null;
  if (local && fits) {
    const wait = device.waitSeconds(estimate.bytes);
    localPlan = {
      ...base,
      route: 'LOCAL',
      target: device.name,
      bytes: estimate.bytes,
      expectedSeconds: wait + calls * perStep.seconds,
      runSeconds: calls * perStep.seconds,
      reason: `${reasonFor(what, estimate.bytes, device, wait)}; ${calls} x ${perStep.seconds.toFixed(3)} s per call`,
    };
  }
  const upstreams = upstreamOptions<StagePlan>(
    base,
    width * height * batch,
    width * height,
    estimate.bytes,
    options.upstreams ?? [],
  );
  const saturated = localPlan !== null && upstreams.length > 0 && device.refuses?.(localPlan.bytes) === true;
  const candidates = [...(localPlan && !saturated ? [localPlan] : []), ...upstreams];
  const needs =
    `${what} needs ${gib(estimate.bytes)} (${estimate.bytes} bytes), over the ` +
    `${gib(device.budgetBytes)} (${device.budgetBytes} bytes) budget of ${device.name}`;
  if (candidates.length === 0) {
    const upstreamNote = noUpstreamNote(options.upstreams?.length ?? 0, width, height);
    return rejected(
      base,
      local
        ? `nothing fits: ${needs}${upstreamNote}`
        : `model "${model}" runs ${operation} only upstream${upstreamNote || '; no upstream endpoint is configured'}`,
    );
  }
  // Ties go to the local device (listed first).
  const best = candidates.reduce((b, o) => (o.expectedSeconds < b.expectedSeconds ? o : b));
  if (best.route !== 'UPSTREAM') return best;
  const why = !local
    ? `no local weights for ${operation}`
    : saturated
      ? `${device.name} is saturated (its wait queue is full)`
      : localPlan
        ? `expected sooner than local on ${device.name} (${localPlan.expectedSeconds.toFixed(2)} s)`
        : `nothing fits ${device.name}: ${needs}`;
  return { ...best, reason: `${best.reason}; ${why}` };
}
