/** Runs planned work on the local device, holding its ledger reservation for exactly the run. */
import type { LocalExecutor } from '../gpu/local-executor.js';
import type { Nchw } from '../gpu/tensor.js';
import type { ModelDefinition } from '../models/model.js';
import type { ExecuteHooks } from './hooks.js';
import { type CapacityLedger, withReservation } from './ledger.js';
import type { DeviceView, Plan } from './planner.js';
import type { RunStats } from './run-stats.js';

export class LocalRunner {
  constructor(
    readonly executor: LocalExecutor,
    readonly ledger: CapacityLedger,
    readonly stats: RunStats,
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
      expectedSeconds: plan.expectedSeconds,
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
}
