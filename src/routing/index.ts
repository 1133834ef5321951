/** The router as the request path sees it: plan a request for a model, then run the plan. */
import { GatewayError } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import { type ModelDefinition, networkFor, type Operation } from '../models/model.js';
import type { ComputeDType } from './estimator.js';
import type { ProfileSource } from './profile-source.js';
import { type ExecuteHooks, type LocalRunner, type Plan, planRoute, rejectError, type UpstreamView } from './router.js';

export interface RoutedResult {
  output: Nchw;
  plan: Plan;
  seconds: number;
}

/** Upstream endpoints as the router uses them (src/upstream/pool.ts). */
export interface UpstreamRunner {
  /** The endpoints that serve `model`'s `operation`, for planning. */
  views(model: string, operation: Operation): UpstreamView[];
  /**
   * Runs on the plan's endpoint, failing over to the model's other endpoints; the returned plan
   * names the endpoint that answered. Throws UPSTREAM_FAILED when none did (or CANCELLED).
   */
  run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult>;
}

/** A registry model, or a bare family for planning only (then assumed to run locally). */
export type PlannableModel = Pick<ModelDefinition, 'id' | 'family'> &
  Partial<Pick<ModelDefinition, 'format' | 'encoder' | 'decoder'>>;

export function runsLocally(model: PlannableModel, operation: Operation): boolean {
  if (model.format === undefined) return true;
  return networkFor(model, operation) !== undefined;
}

export class Router {
  /** Set by the composition root when upstreams are configured. */
  upstream: UpstreamRunner | null = null;

  constructor(
    private readonly profiles: ProfileSource,
    readonly local: LocalRunner,
    /** CPU runs compute in float32; a CUDA device could plan in float16. */
    readonly computeDType: ComputeDType = 'float32',
  ) {}

  useUpstreams(upstream: UpstreamRunner): this {
    this.upstream = upstream;
    return this;
  }

  /** `only` leaves out one side (used for failover). */
  plan(
    model: PlannableModel,
    operation: Operation,
    width: number,
    height: number,
    batch: number,
    only?: 'local' | 'upstream',
  ): Plan {
    const profiles = this.profiles.forModel(model.id, model.family);
    if (!profiles) throw new GatewayError('INTERNAL', `no memory profile is known for model "${model.id}"`);
    const upstreams = only === 'local' ? [] : (this.upstream?.views(model.id, operation) ?? []);
    const local = only !== 'upstream' && runsLocally(model, operation);
    return planRoute(
      model.id,
      profiles,
      { operation, width, height, batch, dtype: this.computeDType },
      this.local.device(),
      this.local.stats,
      { upstreams, local },
    );
  }

  async run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    if (plan.route === 'REJECT') {
      if (!runsLocally(model, plan.operation))
        throw new GatewayError('UPSTREAM_FAILED', plan.reason, { model: plan.model, operation: plan.operation });
      throw rejectError(plan);
    }
    hooks.onRouted?.(plan);
    if (plan.route === 'UPSTREAM') return this.runUpstream(model, plan, input, hooks, true);
    try {
      const { output, seconds } = await this.local.run(model, plan, input, hooks);
      return { output, plan, seconds };
    } catch (error) {
      // The queue filled up between planning and running: an upstream may still take it.
      if (!(error instanceof GatewayError && error.code === 'BUSY') || !this.upstream) throw error;
      const alternative = this.plan(model, plan.operation, plan.width, plan.height, plan.batch, 'upstream');
      if (alternative.route !== 'UPSTREAM') throw error;
      alternative.reason = `${plan.target} is busy; ${alternative.reason}`;
      hooks.onRouted?.(alternative);
      return this.runUpstream(model, alternative, input, hooks, false);
    }
  }

  /** Upstream first; when every endpoint failed, the local device (whole or tiled) if it can. */
  private async runUpstream(
    model: ModelDefinition,
    plan: Plan,
    input: Nchw,
    hooks: ExecuteHooks,
    fallBackLocally: boolean,
  ): Promise<RoutedResult> {
    if (!this.upstream) throw new GatewayError('INTERNAL', `plan for ${plan.target} but no upstreams are configured`);
    try {
      return await this.upstream.run(model, plan, input, hooks);
    } catch (error) {
      if (
        !(error instanceof GatewayError) ||
        error.code !== 'UPSTREAM_FAILED' ||
        !fallBackLocally ||
        hooks.signal?.aborted
      )
        throw error;
      const local = runsLocally(model, plan.operation)
        ? this.plan(model, plan.operation, plan.width, plan.height, plan.batch, 'local')
        : null;
      if (!local || local.route === 'REJECT') {
        throw new GatewayError(
          'UPSTREAM_FAILED',
          `${error.message}; ${local ? `no local fallback: ${local.reason}` : 'and there are no local weights to fall back on'}`,
          error.details,
        );
      }
      local.reason = `upstream failed (${error.message}); fell back to ${local.reason}`;
      hooks.onRouted?.(local);
      const { output, seconds } = await this.local.run(model, local, input, hooks);
      return { output, plan: local, seconds };
    }
  }
}
