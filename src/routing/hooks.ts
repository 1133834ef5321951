/** What a routed run reports while it runs, what it returns, and who is told how it ended. */
import { GatewayError } from '../errors.js';
import type { RunHooks } from '../gpu/local-executor.js';
import type { Nchw } from '../gpu/tensor.js';
import type { Plan, RouteKind } from './planner.js';

export interface ExecuteHooks extends RunHooks {
  onQueued?: (position: number) => void;
  /** The plan the request runs under: once routed, again on failover or when it joins a batch. */
  onRouted?: (plan: Plan) => void;
  /** Called once the reservation is admitted and the run starts, with the progress steps it will report. */
  onStarted?: (totalSteps: number) => void;
}

export interface RoutedResult {
  output: Nchw;
  /** The plan it ran under (the batch's, the upstream endpoint that answered, the fallback). */
  plan: Plan;
  seconds: number;
}

/** How a routed run (or a held stage) ended: `outcome` is `ok` or the error code; `seconds` only when ok. */
export interface RunOutcome {
  model: string;
  operation: string;
  route: RouteKind;
  outcome: string;
  seconds: number | null;
}

/** Told of every routed run's end (the gateway's metrics implement it). */
export interface RunObserver {
  ran(run: RunOutcome): void;
}

/** A failed run's outcome: its error code (INTERNAL for anything untyped). */
export function outcomeOf(error: unknown): string {
  return error instanceof GatewayError ? error.code : 'INTERNAL';
}
