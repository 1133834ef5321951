/**
 * diffusers' `timestep_spacing` for the discrete (DDPM-trained) schedulers, with numpy's arithmetic:
 * - linspace: linspace(0, T-1, N) reversed (Euler keeps the fractions as float32, DDIM rounds);
 * - leading:  arange(N) * (T // N) reversed, plus steps_offset;
 * - trailing: round(arange(T, 0, -T/N)) - 1 (numpy's arange can give N+1 values, the last -1).
 * Rounding is numpy's half-to-even.
 */
import { GatewayError } from '../../errors.js';
import type { TimestepSpacing } from '../config.js';
import { arange, f32, linspace, roundHalfEven } from '../numeric.js';

export function spacedTimesteps(
  spacing: TimestepSpacing,
  steps: number,
  trainSteps: number,
  stepsOffset: number,
  keepFractions: boolean,
): number[] {
  switch (spacing) {
    case 'linspace': {
      const values = linspace(0, trainSteps - 1, steps).reverse();
      return keepFractions ? values.map(f32) : values.map(roundHalfEven);
    }
    case 'leading': {
      const ratio = Math.floor(trainSteps / steps);
      return Array.from({ length: steps }, (_, i) => roundHalfEven(i * ratio) + stepsOffset).reverse();
    }
    case 'trailing':
      return arange(trainSteps, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
  }
}

/** Every discrete scheduler refuses more inference steps than training steps, as diffusers does. */
export function checkStepCount(className: string, steps: number, trainSteps: number): void {
  if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
    throw new GatewayError(
      'BAD_REQUEST',
      `${className}: steps must be an integer from 1 to ${trainSteps} (num_train_timesteps); got ${steps}`,
      { steps, allowed: { min: 1, max: trainSteps } },
    );
  }
}
