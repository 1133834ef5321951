/** The router as the request path sees it: plan a request for a model, then run the plan. */
import { GatewayError } from '../errors.js';
import type { ModelDefinition, Operation } from '../models/model.js';
import type { Nchw } from '../gpu/tensor.js';
import type { ComputeDType } from './estimator.js';
import type { ProfileSource } from './profile-source.js';
import { planRoute, rejectError, type ExecuteHooks, type LocalRunner, type Plan } from './router.js';

export interface RoutedResult {
  output: Nchw;
  plan: Plan;
  seconds: number;
}

export class Router {
  constructor(
    private readonly profiles: ProfileSource,
    readonly local: LocalRunner,
    /** CPU runs compute in float32; a CUDA device could plan in float16. */
    readonly computeDType: ComputeDType = 'float32',
  ) {}

  plan(model: Pick<ModelDefinition, 'id' | 'family'>, operation: Operation, width: number, height: number, batch: number): Plan {
    const profiles = this.profiles.forModel(model.id, model.family);
    if (!profiles) throw new GatewayError('INTERNAL', `no memory profile is known for model "${model.id}"`);
    return planRoute(model.id, profiles, { operation, width, height, batch, dtype: this.computeDType }, this.local.device(), this.local.stats);
  }

  async run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    if (plan.route === 'REJECT') throw rejectError(plan);
    hooks.onRouted?.(plan);
    const { output, seconds } = await this.local.run(model, plan, input, hooks);
    return { output, plan, seconds };
  }
}
