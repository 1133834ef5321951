/** Builds a scheduler from a folder's scheduler config, as `Class.from_config(config)` does. */
import { configClassName, parseSchedulerConfig, type SchedulerClassName } from '../config.js';
import { DDIMScheduler } from './ddim.js';
import { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler.js';
import { FlowMatchEulerDiscreteScheduler } from './flow-match.js';
import { LCMScheduler } from './lcm.js';
import { PNDMScheduler } from './pndm.js';
import type { Scheduler } from './types.js';

export { DDIMScheduler } from './ddim.js';
export { EulerAncestralDiscreteScheduler, EulerDiscreteScheduler } from './euler.js';
export {
  calculateShift,
  FlowMatchEulerDiscreteScheduler,
  fluxImageSeqLen,
  fluxTransformerTimestep,
} from './flow-match.js';
export { LCMScheduler } from './lcm.js';
export { PNDMScheduler } from './pndm.js';
export type { Scheduler, SetTimestepsOptions, StepOutput, StrengthRule } from './types.js';

/**
 * The scheduler for `config` (a parsed or raw scheduler_config.json). `className` picks another class
 * built from the same settings (a request's choice); without it the config's `_class_name` is used.
 */
export function createScheduler(config: unknown, className?: SchedulerClassName, source?: string): Scheduler {
  const parsed = parseSchedulerConfig(config, source);
  switch (className ?? configClassName(parsed, source)) {
    case 'EulerDiscreteScheduler':
      return new EulerDiscreteScheduler(parsed);
    case 'EulerAncestralDiscreteScheduler':
      return new EulerAncestralDiscreteScheduler(parsed);
    case 'DDIMScheduler':
      return new DDIMScheduler(parsed);
    case 'PNDMScheduler':
      return new PNDMScheduler(parsed);
    case 'LCMScheduler':
      return new LCMScheduler(parsed);
    case 'FlowMatchEulerDiscreteScheduler':
      return new FlowMatchEulerDiscreteScheduler(parsed);
  }
}
