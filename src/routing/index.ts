/** The routing module as the rest of the gateway uses it. */
export { type BatcherOptions, type BatchStats, EncodeBatcher } from './batcher.js';
export type { ExecuteHooks, RoutedResult, RunObserver, RunOutcome } from './hooks.js';
export type { StageHold } from './local-runner.js';
export { LocalRunner } from './local-runner.js';
export type {
  ModelStageProfiles,
  NetworkFile,
  PipelineNetworks,
  PlanOperation,
  StageOperation,
  StageProfile,
} from './memory-profile.js';
export type { DeviceView, Plan, RouteKind, UpstreamView } from './planner.js';
export {
  type PlannableModel,
  Router,
  type RouterOptions,
  runsLocally,
  type StagePlannableModel,
  type StageRequest,
  type UpstreamRunner,
} from './router.js';
export { estimateStageBytes, type StageEstimate, type StageEstimateInput } from './stage-estimator.js';
export {
  type AnyPlan,
  isStagePlan,
  planStage,
  type StageDetails,
  type StagePlan,
  type StagePlanOptions,
  type StagePlanRequest,
} from './stage-planner.js';
export { derivedStageProfiles, shippedStageProfiles } from './stage-profiles.js';
