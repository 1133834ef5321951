/** The routing module as the rest of the gateway uses it. */
export { type BatcherOptions, type BatchStats, EncodeBatcher } from './batcher.js';
export type { ExecuteHooks, RoutedResult } from './hooks.js';
export { LocalRunner } from './local-runner.js';
export type { DeviceView, Plan, RouteKind, UpstreamView } from './planner.js';
export { type PlannableModel, Router, type RouterOptions, runsLocally, type UpstreamRunner } from './router.js';
