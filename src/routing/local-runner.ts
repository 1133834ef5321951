/** Runs planned work on the local device, holding its ledger reservation for exactly the run. */
import { cancelled } from '../errors.js';
import type { LocalExecutor } from '../gpu/local-executor.js';
import type { Nchw } from '../gpu/tensor.js';
import type { ModelDefinition } from '../models/model.js';
import { type ExecuteHooks, outcomeOf, type RunObserver } from './hooks.js';
import { type CapacityLedger, withReservation } from './ledger.js';
import type { DeviceView, Plan } from './planner.js';
import { type RunStats, stageWork } from './run-stats.js';
import type { StagePlan } from './stage-planner.js';

/** What a held stage's work reports back while it holds the reservation. */
export interface StageHold {
  /**
   * One network call (a denoising step) is done: its time since the previous call (or the start)
   * feeds the run stats, so later plans expect seconds per step from what ran.
   */
  stepDone(): void;
  /** The request's signal: the work should stop at the next step once it fires. */
  readonly signal: AbortSignal | undefined;
}

export class LocalRunner {
  constructor(
    readonly executor: LocalExecutor,
    readonly ledger: CapacityLedger,
    readonly stats: RunStats,
    /** Told how each held stage ended (routed runs are the Router's to report). */
    private readonly observer: RunObserver | null = null,
  ) {}

  device(): DeviceView {
    const snapshot = this.ledger.snapshot();
    return {
      name: `local:${this.executor.provider}`,
      budgetBytes: snapshot.budgetBytes,
      freeBytes: snapshot.freeBytes,
      waitSeconds: (bytes) => this.ledger.estimatedWaitSeconds(bytes),
      // The ledger admits at once only with an empty queue and room; otherwise it queues, or says BUSY when full.
      refuses: (bytes) =>
        !(snapshot.queued === 0 && bytes <= snapshot.freeBytes) && snapshot.queued >= this.ledger.maxQueueLength,
    };
  }

  async run(
    model: ModelDefinition,
    plan: Plan,
    input: Nchw,
    hooks: ExecuteHooks = {},
  ): Promise<{ output: Nchw; seconds: number }> {
    if (plan.route !== 'LOCAL' && plan.route !== 'TILED')
      throw new Error(`local runner cannot run a ${plan.route} plan`);
    const route = plan.route;
    const tiles = route === 'TILED' ? plan.tiles : undefined;
    const reservation = {
      bytes: plan.bytes,
      label: `${plan.model}/${plan.operation} ${plan.width}x${plan.height}x${plan.batch}`,
      // The run's own seconds: the ledger adds the wait of the queue ahead itself.
      expectedSeconds: plan.runSeconds,
      signal: hooks.signal,
      onQueued: hooks.onQueued,
    };
    return withReservation(this.ledger, reservation, async () => {
      hooks.onStarted?.(this.executor.progressSteps(model, plan.operation, plan.height, plan.width, tiles));
      const started = performance.now();
      const output = await this.executor.run(model, plan.operation, input, tiles, hooks);
      const seconds = (performance.now() - started) / 1000;
      this.stats.record(plan.model, plan.operation, route, plan.width * plan.height * plan.batch, seconds);
      return { output, seconds };
    });
  }

  /**
   * Holds one reservation of a LOCAL stage plan's bytes across many network calls (a whole
   * denoising loop): queues in the ledger like a run (onQueued), reports onStarted(plan's steps),
   * runs `work`, and releases on success, error or cancellation. A signal that fires while queued
   * rejects with CANCELLED; one that has fired by admission does too, before `work` starts. Run
   * stats get each step's time (stepDone), or the whole work as one call when it marks none.
   */
  async hold<T>(
    plan: StagePlan,
    hooks: ExecuteHooks,
    work: (hold: StageHold) => Promise<T>,
  ): Promise<{ result: T; seconds: number }> {
    if (plan.route !== 'LOCAL') throw new Error(`local runner cannot hold a ${plan.route} plan`);
    const { latentWidth, latentHeight, networkBatch, steps } = plan.stage;
    const reservation = {
      bytes: plan.bytes,
      label: `${plan.model}/${plan.operation} ${latentWidth}x${latentHeight}x${networkBatch} latents, ${steps} step(s)`,
      // The run's own seconds: the ledger adds the wait of the queue ahead itself.
      expectedSeconds: plan.runSeconds,
      signal: hooks.signal,
      onQueued: hooks.onQueued,
    };
    const unit = stageWork(plan.operation, latentWidth * latentHeight, networkBatch);
    const held = withReservation(this.ledger, reservation, async () => {
      if (hooks.signal?.aborted) throw cancelled(`Request '${reservation.label}' was cancelled before it started.`);
      hooks.onStarted?.(steps);
      const started = performance.now();
      let last = started;
      let marked = 0;
      const result = await work({
        stepDone: () => {
          const now = performance.now();
          this.stats.recordStage(plan.model, plan.operation, unit, (now - last) / 1000);
          last = now;
          marked++;
        },
        signal: hooks.signal,
      });
      const seconds = (performance.now() - started) / 1000;
      if (marked === 0) this.stats.recordStage(plan.model, plan.operation, unit, seconds);
      return { result, seconds };
    });
    const { model, operation } = plan;
    return held.then(
      (done) => {
        this.observer?.ran({ model, operation, route: 'LOCAL', outcome: 'ok', seconds: done.seconds });
        return done;
      },
      (error: unknown) => {
        this.observer?.ran({ model, operation, route: 'LOCAL', outcome: outcomeOf(error), seconds: null });
        throw error;
      },
    );
  }
}
