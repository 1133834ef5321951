/**
 * The router as the request path sees it: `plan` decides where a request runs (planner.ts), `run`
 * runs a plan there and fails over: a LOCAL run refused as BUSY goes to an upstream that can take
 * it; an UPSTREAM run whose endpoints all failed falls back to the local device. LOCAL runs of
 * single-image encodes go to the batcher beneath it (batcher.ts), which may join them with others.
 */
import { GatewayError } from '../errors.js';
import { exactTileOverlap } from '../gpu/local-executor.js';
import type { Nchw } from '../gpu/tensor.js';
import { type ModelDefinition, networkFor, type Operation } from '../models/model.js';
import { type BatcherOptions, EncodeBatcher } from './batcher.js';
import { largestBatchThatFits } from './estimator.js';
import { type ExecuteHooks, outcomeOf, type RoutedResult, type RunObserver } from './hooks.js';
import type { LocalRunner } from './local-runner.js';
import type { ComputeDType, ModelMemoryProfiles, PipelineNetworks, StageOperation } from './memory-profile.js';
import { type Plan, planLocalBatch, planRoute, type UpstreamView } from './planner.js';
import type { ProfileSource } from './profile-source.js';
import { planStage, type StagePlan, type StagePlanOptions } from './stage-planner.js';

// The router's API types, where its callers have always found them.
export type { ExecuteHooks, Plan, RoutedResult, UpstreamView };

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

/** A model whose text-encoder and UNet stages are planned: a pipeline (with its networks) or a bare family. */
export interface StagePlannableModel {
  id: string;
  family?: Pick<ModelDefinition['family'], 'id'>;
  /** The pipeline folder's stage networks; absent: the calibration or the family's derived profile. */
  networks?: PipelineNetworks;
}

/** A stage request in image pixels; `guidance` (classifier-free) doubles the network batch. */
export interface StageRequest {
  width: number;
  height: number;
  batch: number;
  /** Denoising steps that will run (network calls); ignored for textEncode. */
  steps: number;
  guidance?: boolean;
}

export function runsLocally(model: PlannableModel, operation: Operation): boolean {
  if (model.format === undefined) return true;
  return networkFor(model, operation) !== undefined;
}

export interface RouterOptions {
  /** Configured upstream endpoints; absent or null = none. */
  upstream?: UpstreamRunner | null;
  /** Dynamic batching of LOCAL single-image encodes (BATCH_WINDOW_MS, MAX_BATCH); absent = none. */
  batching?: BatcherOptions;
  /** CPU runs compute in float32; a CUDA device could plan in float16. */
  computeDType?: ComputeDType;
  /** Told how each `run` ended (the gateway's metrics). */
  observer?: RunObserver;
}

export class Router {
  readonly upstream: UpstreamRunner | null;
  /** Joins LOCAL single-image encodes of the same model and size (present when `batching` was given). */
  readonly batcher: EncodeBatcher | null;
  readonly computeDType: ComputeDType;
  private readonly observer: RunObserver | null;

  constructor(
    private readonly profiles: ProfileSource,
    readonly local: LocalRunner,
    options: RouterOptions = {},
  ) {
    this.upstream = options.upstream ?? null;
    this.computeDType = options.computeDType ?? 'float32';
    this.observer = options.observer ?? null;
    this.batcher = options.batching ? new EncodeBatcher(this, options.batching) : null;
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
    const upstreams = only === 'local' ? [] : (this.upstream?.views(model.id, operation) ?? []);
    const local = only !== 'upstream' && runsLocally(model, operation);
    const profiles = this.profilesOf(model);
    const network = networkFor(model, operation);
    return planRoute(
      model.id,
      profiles,
      { operation, width, height, batch, dtype: this.computeDType },
      this.local.device(),
      this.local.stats,
      { upstreams, local, exactOverlap: exactTileOverlap(network, operation, profiles.downscaleFactor) },
    );
  }

  /**
   * Where a text-encode or denoise stage runs: LOCAL when its networks fit the device budget
   * (expected seconds: queue wait + steps x seconds per step), an upstream from `options.upstreams`
   * when expected sooner or when nothing fits, else REJECT naming needed and budget bytes.
   */
  planStage(
    model: StagePlannableModel,
    stage: StageOperation,
    request: StageRequest,
    options: StagePlanOptions = {},
  ): StagePlan {
    const profiles = this.profiles.stagesForModel(model.id, model.family, model.networks);
    if (!profiles)
      throw new GatewayError(
        'UNSUPPORTED_OPERATION',
        `no memory profile is known for the ${stage} stage of model "${model.id}": it has no pipeline networks ` +
          'here, no stage calibration, and is not a family with derived stage profiles (sd15, sdxl)',
        { model: model.id, operation: stage },
      );
    const { width, height, batch, steps, guidance = false } = request;
    return planStage(
      model.id,
      profiles,
      { operation: stage, width, height, batch, steps, guidance },
      this.local.device(),
      this.local.stats,
      options,
    );
  }

  /** Most images (up to `most`) like `member`'s that run whole together within the device budget. */
  largestLocalBatch(model: PlannableModel, member: Plan, most: number): number {
    const { operation, width, height, dtype } = member;
    const budget = this.local.device().budgetBytes;
    return largestBatchThatFits(this.profilesOf(model), { operation, width, height, dtype }, budget, most);
  }

  /** The plan of `batch` images like `member`'s (a LOCAL single-image plan) run together whole. */
  planLocalBatch(model: PlannableModel, member: Plan, batch: number): Plan {
    return planLocalBatch(this.profilesOf(model), member, batch, this.local.device(), this.local.stats);
  }

  async run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    if (!this.observer) return this.route(model, plan, input, hooks);
    // A failure is counted on the route it last ran on (after failover), or the planned one.
    let route = plan.route;
    const observed: ExecuteHooks = {
      ...hooks,
      onRouted: (routed) => {
        route = routed.route;
        hooks.onRouted?.(routed);
      },
    };
    const { model: id, operation } = plan;
    try {
      const result = await this.route(model, plan, input, observed);
      this.observer.ran({ model: id, operation, route: result.plan.route, outcome: 'ok', seconds: result.seconds });
      return result;
    } catch (error) {
      this.observer.ran({ model: id, operation, route, outcome: outcomeOf(error), seconds: null });
      throw error;
    }
  }

  private async route(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult> {
    if (plan.route === 'REJECT') {
      if (!runsLocally(model, plan.operation))
        throw new GatewayError('UPSTREAM_FAILED', plan.reason, { model: plan.model, operation: plan.operation });
      throw rejectError(plan);
    }
    if (plan.route === 'UPSTREAM') {
      hooks.onRouted?.(plan);
      return this.runUpstream(model, plan, input, hooks, true);
    }
    try {
      return await this.runLocal(model, plan, input, hooks);
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

  /** On the local device; the batcher reports the plan a batched run joins, so it is told there. */
  private async runLocal(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult> {
    if (this.batcher?.takes(plan)) return this.batcher.load(model, plan, input, hooks);
    hooks.onRouted?.(plan);
    const { output, seconds } = await this.local.run(model, plan, input, hooks);
    return { output, plan, seconds };
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
          `${error.message}; ` +
            `${local ? `no local fallback: ${local.reason}` : 'and there are no local weights to fall back on'}`,
          error.details,
        );
      }
      local.reason = `upstream failed (${error.message}); fell back to ${local.reason}`;
      hooks.onRouted?.(local);
      const { output, seconds } = await this.local.run(model, local, input, hooks);
      return { output, plan: local, seconds };
    }
  }

  private profilesOf(model: PlannableModel): ModelMemoryProfiles {
    const profiles = this.profiles.forModel(model.id, model.family);
    if (!profiles) throw new GatewayError('INTERNAL', `no memory profile is known for model "${model.id}"`);
    return profiles;
  }
}

function rejectError(plan: Plan): GatewayError {
  return new GatewayError('DOES_NOT_FIT', plan.reason, {
    model: plan.model,
    operation: plan.operation,
    width: plan.width,
    height: plan.height,
    batch: plan.batch,
    wholeBytes: plan.estimates.whole.bytes,
    budgetBytes: plan.budgetBytes,
  });
}
