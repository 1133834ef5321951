/** What a routed run reports while it runs, and what it returns. */
import type { RunHooks } from '../gpu/local-executor.js';
import type { Nchw } from '../gpu/tensor.js';
import type { Plan } from './planner.js';

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
