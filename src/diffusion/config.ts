/**
 * `scheduler_config.json` as diffusers stores it, validated, and resolved per scheduler class the way
 * `NewScheduler.from_config(old.config)` does: each class takes the keys it knows and its own defaults
 * for the rest. Options this gateway does not implement are refused by name, never ignored.
 */
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import type { BetaSchedule } from './betas.js';

export const SCHEDULER_CLASSES = [
  'EulerDiscreteScheduler',
  'EulerAncestralDiscreteScheduler',
  'DDIMScheduler',
  'PNDMScheduler',
  'LCMScheduler',
  'FlowMatchEulerDiscreteScheduler',
] as const;
export type SchedulerClassName = (typeof SCHEDULER_CLASSES)[number];

export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';

const spacing = z.enum(['linspace', 'leading', 'trailing']);
const prediction = z.enum(['epsilon', 'v_prediction', 'sample']);

/** Every key any supported class reads; unknown keys (e.g. `_diffusers_version`) pass through. */
export const schedulerConfigSchema = z.looseObject({
  _class_name: z.string().optional(),
  num_train_timesteps: z.number().int().positive().optional(),
  beta_start: z.number().positive().optional(),
  beta_end: z.number().positive().optional(),
  beta_schedule: z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2']).optional(),
  trained_betas: z.array(z.number()).nullable().optional(),
  prediction_type: prediction.optional(),
  timestep_spacing: spacing.optional(),
  steps_offset: z.number().int().nonnegative().optional(),
  set_alpha_to_one: z.boolean().optional(),
  clip_sample: z.boolean().optional(),
  clip_sample_range: z.number().positive().optional(),
  thresholding: z.boolean().optional(),
  rescale_betas_zero_snr: z.boolean().optional(),
  skip_prk_steps: z.boolean().optional(),
  original_inference_steps: z.number().int().positive().optional(),
  timestep_scaling: z.number().positive().optional(),
  use_karras_sigmas: z.boolean().nullable().optional(),
  use_exponential_sigmas: z.boolean().nullable().optional(),
  use_beta_sigmas: z.boolean().nullable().optional(),
  final_sigmas_type: z.enum(['zero', 'sigma_min']).nullable().optional(),
  interpolation_type: z.string().optional(),
  timestep_type: z.string().optional(),
  shift: z.number().positive().optional(),
  use_dynamic_shifting: z.boolean().optional(),
  base_shift: z.number().optional(),
  max_shift: z.number().optional(),
  base_image_seq_len: z.number().int().positive().optional(),
  max_image_seq_len: z.number().int().positive().optional(),
  invert_sigmas: z.boolean().optional(),
  shift_terminal: z.number().nullable().optional(),
  time_shift_type: z.string().optional(),
  stochastic_sampling: z.boolean().optional(),
});
export type SchedulerConfigJson = z.infer<typeof schedulerConfigSchema>;

/** Parses a scheduler_config.json object; `source` names it in errors. */
export function parseSchedulerConfig(json: unknown, source = 'scheduler_config.json'): SchedulerConfigJson {
  const parsed = schedulerConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new GatewayError(
      'UNSUPPORTED_OPERATION',
      `${source} is not a scheduler config this gateway reads: ${z.prettifyError(parsed.error)}`,
      {
        source,
      },
    );
  }
  return parsed.data;
}

/** The class a config names, checked against the ones implemented here. */
export function configClassName(config: SchedulerConfigJson, source = 'scheduler_config.json'): SchedulerClassName {
  const name = config._class_name;
  if (name && (SCHEDULER_CLASSES as readonly string[]).includes(name)) return name as SchedulerClassName;
  throw new GatewayError(
    'UNSUPPORTED_OPERATION',
    `${source} names scheduler ${name ?? '(none)'}; supported: ${SCHEDULER_CLASSES.join(', ')}`,
    { scheduler: name ?? null, supported: [...SCHEDULER_CLASSES] },
  );
}

/** Refuses an option value the gateway does not implement, naming it. */
export function refuseOption(className: SchedulerClassName, option: string, value: unknown, allowed: string): never {
  throw new GatewayError(
    'UNSUPPORTED_OPERATION',
    `${className} with ${option} = ${JSON.stringify(value)} is not supported; allowed: ${allowed}`,
    { scheduler: className, option, value, allowed },
  );
}

/** The DDPM-family settings shared by Euler, Euler a, DDIM, PNDM and LCM. */
export interface DiscreteConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  prediction_type: PredictionType;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
}

const DISCRETE_DEFAULTS: Record<Exclude<SchedulerClassName, 'FlowMatchEulerDiscreteScheduler'>, DiscreteConfig> = {
  EulerDiscreteScheduler: discreteDefaults(0.0001, 0.02, 'linear', 'linspace'),
  EulerAncestralDiscreteScheduler: discreteDefaults(0.0001, 0.02, 'linear', 'linspace'),
  DDIMScheduler: discreteDefaults(0.0001, 0.02, 'linear', 'leading'),
  PNDMScheduler: discreteDefaults(0.0001, 0.02, 'linear', 'leading'),
  LCMScheduler: discreteDefaults(0.00085, 0.012, 'scaled_linear', 'leading'),
};

function discreteDefaults(
  betaStart: number,
  betaEnd: number,
  schedule: BetaSchedule,
  timestepSpacing: TimestepSpacing,
): DiscreteConfig {
  return {
    num_train_timesteps: 1000,
    beta_start: betaStart,
    beta_end: betaEnd,
    beta_schedule: schedule,
    trained_betas: null,
    prediction_type: 'epsilon',
    timestep_spacing: timestepSpacing,
    steps_offset: 0,
  };
}

export function resolveDiscreteConfig(
  className: Exclude<SchedulerClassName, 'FlowMatchEulerDiscreteScheduler'>,
  config: SchedulerConfigJson,
): DiscreteConfig {
  if (config.rescale_betas_zero_snr) refuseOption(className, 'rescale_betas_zero_snr', true, 'false');
  if (config.thresholding) refuseOption(className, 'thresholding', true, 'false');
  const defaults = DISCRETE_DEFAULTS[className];
  return {
    num_train_timesteps: config.num_train_timesteps ?? defaults.num_train_timesteps,
    beta_start: config.beta_start ?? defaults.beta_start,
    beta_end: config.beta_end ?? defaults.beta_end,
    beta_schedule: config.beta_schedule ?? defaults.beta_schedule,
    trained_betas: config.trained_betas ?? null,
    prediction_type: config.prediction_type ?? defaults.prediction_type,
    timestep_spacing: config.timestep_spacing ?? defaults.timestep_spacing,
    steps_offset: config.steps_offset ?? defaults.steps_offset,
  };
}
