/**
 * Dynamic batching of encodes (dataloader), beneath the router: a single-image encode the router
 * sent LOCAL waits up to `windowMs` for others of the same model and size, and they run as one
 * NCHW batch, as many as run whole within the device budget (sized once from the estimate),
 * split into several runs when more arrived.
 *
 * - Scaling and latent dtype are applied by the caller after the run, so they do not split
 *   batches; the key is model, operation and size only.
 * - A request the router sent anywhere else (tiled, upstream, rejected) never waits for a window.
 * - Each caller gets its own slice of the output, and the batch's plan (`batch` = N, the bytes the
 *   batch reserved), so its result says how it ran.
 * - Hooks: a lone request (nothing else arrived in its window) runs with its own hooks, so progress
 *   and cancellation are exactly as without batching. In a batch, queue position, routing, start
 *   and progress go to every member; a member that cancels is answered CANCELLED at once and the
 *   run goes on for the others; the run itself is cancelled only when every member has cancelled.
 * - Errors: if a batched run fails (for any reason but all members cancelling), each member is
 *   retried alone on its own plan, and what that run throws goes back to the router (which sends
 *   it upstream when the device is BUSY), so one caller's failure is not another's.
 */
import DataLoader from 'dataloader';
import { cancelled, isCancellation, throwIfCancelled } from '../errors.js';
import { joinBatch, type Nchw, splitBatch } from '../gpu/tensor.js';
import type { ModelDefinition } from '../models/model.js';
import type { ExecuteHooks, RoutedResult } from './hooks.js';
import type { LocalRunner } from './local-runner.js';
import type { Plan } from './planner.js';

export interface BatcherOptions {
  /** How long the first request of a batch waits for others; 0 turns batching off. */
  windowMs: number;
  /** Most images in one run (MAX_BATCH). */
  maxBatch: number;
}

export interface BatchStats {
  /** encode calls received. */
  requests: number;
  /** Device runs started for them (a batch counts once). */
  runs: number;
  /** Runs with more than one image, and the requests they served. */
  batchedRuns: number;
  batchedRequests: number;
  largestBatch: number;
}

/** What the batcher needs of the router above it (src/routing/router.ts). */
export interface BatchRouter {
  readonly local: Pick<LocalRunner, 'run'>;
  plan(model: ModelDefinition, operation: 'encode', width: number, height: number, batch: number): Plan;
  run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult>;
  largestLocalBatch(model: ModelDefinition, member: Plan, most: number): number;
  planLocalBatch(model: ModelDefinition, member: Plan, batch: number): Plan;
}

interface Item {
  model: ModelDefinition;
  plan: Plan;
  input: Nchw;
  hooks: ExecuteHooks;
}

/** Resolves with `work`, or rejects with CANCELLED as soon as `signal` aborts (the work goes on). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** One hooks object that forwards to every member; its signal aborts when all members' have. */
function fanOut(members: readonly ExecuteHooks[]): ExecuteHooks {
  const each = <K extends keyof ExecuteHooks>(key: K) =>
    ((...args: unknown[]) => {
      for (const hooks of members) {
        const fn = hooks[key] as ((...a: unknown[]) => void) | undefined;
        try {
          fn?.(...args);
        } catch {
          // One member's callback must not break the others' run.
        }
      }
    }) as NonNullable<ExecuteHooks[K]>;
  const hooks: ExecuteHooks = {
    onQueued: each('onQueued'),
    onRouted: each('onRouted'),
    onStarted: each('onStarted'),
    onProgress: each('onProgress'),
  };
  const signals = members.map((m) => m.signal);
  if (signals.every((s): s is AbortSignal => s !== undefined)) {
    const all = new AbortController();
    const check = () => {
      if (signals.every((s) => s.aborted)) all.abort(cancelled('every request in the batch was cancelled'));
    };
    for (const s of signals) s.addEventListener('abort', check, { once: true });
    check();
    hooks.signal = all.signal;
  }
  return hooks;
}

export class EncodeBatcher {
  readonly stats: BatchStats = { requests: 0, runs: 0, batchedRuns: 0, batchedRequests: 0, largestBatch: 0 };
  private readonly loaders = new Map<string, DataLoader<Item, RoutedResult>>();

  constructor(
    private readonly router: BatchRouter,
    readonly options: BatcherOptions,
  ) {
    if (!Number.isFinite(options.windowMs) || options.windowMs < 0)
      throw new RangeError(`windowMs must be >= 0, got ${options.windowMs}`);
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1)
      throw new RangeError(`maxBatch must be a positive integer, got ${options.maxBatch}`);
  }

  get enabled(): boolean {
    return this.options.windowMs > 0 && this.options.maxBatch > 1;
  }

  /** Encodes `input` (NCHW in the model's input range): routed once; batched beneath when LOCAL. */
  encode(model: ModelDefinition, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    this.stats.requests++;
    const [n, , height, width] = input.dims;
    const plan = this.router.plan(model, 'encode', width, height, n);
    if (!this.takes(plan)) this.stats.runs++;
    return this.router.run(model, plan, input, hooks);
  }

  /** True for the runs the router hands to `load`: single-image encodes it sent LOCAL. */
  takes(plan: Plan): boolean {
    return this.enabled && plan.route === 'LOCAL' && plan.operation === 'encode' && plan.batch === 1;
  }

  /** Joins `plan`'s run (one the batcher `takes`) with others of the same key that arrive in the window. */
  async load(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult> {
    throwIfCancelled(hooks.signal);
    const key = `${model.id}/${plan.operation}/${plan.width}x${plan.height}`;
    let loader = this.loaders.get(key);
    if (!loader) {
      const created: DataLoader<Item, RoutedResult> = new DataLoader<Item, RoutedResult>(
        (items) => this.dispatch(items),
        {
          cache: false,
          maxBatchSize: this.options.maxBatch,
          batchScheduleFn: (dispatch) =>
            setTimeout(() => {
              // Later arrivals start a new window.
              if (this.loaders.get(key) === created) this.loaders.delete(key);
              dispatch();
            }, this.options.windowMs),
        },
      );
      loader = created;
      this.loaders.set(key, loader);
    }
    return unlessAborted(loader.load({ model, plan, input, hooks }), hooks.signal);
  }

  /** One item on its own plan and hooks, exactly as without batching. */
  private async runAlone(item: Item): Promise<RoutedResult> {
    this.stats.runs++;
    item.hooks.onRouted?.(item.plan);
    const { output, seconds } = await this.router.local.run(item.model, item.plan, item.input, item.hooks);
    return { output, plan: item.plan, seconds };
  }

  private async dispatch(items: readonly Item[]): Promise<Array<RoutedResult | Error>> {
    const results: Array<RoutedResult | Error> = items.map(() => cancelled());
    const live = items.map((item, i) => ({ item, i })).filter(({ item }) => !item.hooks.signal?.aborted);
    const settle = async (group: typeof live) => {
      const outcomes =
        group.length === 1
          ? [await this.runAlone(group[0].item).catch((e: unknown) => toError(e))]
          : await this.runBatch(group.map((g) => g.item));
      for (const [k, g] of group.entries()) results[g.i] = outcomes[k];
    };
    if (live.length <= 1) {
      await Promise.all(live.map((g) => settle([g])));
      return results;
    }
    const { model, plan } = live[0].item;
    const size = Math.max(1, this.router.largestLocalBatch(model, plan, live.length));
    const groups: Array<typeof live> = [];
    for (let start = 0; start < live.length; start += size) groups.push(live.slice(start, start + size));
    await Promise.all(groups.map(settle));
    return results;
  }

  private async runBatch(items: Item[]): Promise<Array<RoutedResult | Error>> {
    const model = items[0].model;
    const plan = this.router.planLocalBatch(model, items[0].plan, items.length);
    const hooks = fanOut(items.map((item) => item.hooks));
    this.stats.runs++;
    this.stats.batchedRuns++;
    this.stats.batchedRequests += items.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, items.length);
    try {
      hooks.onRouted?.(plan);
      const { output, seconds } = await this.router.local.run(
        model,
        plan,
        joinBatch(items.map((item) => item.input)),
        hooks,
      );
      return splitBatch(output).map((slice) => ({ output: slice, plan, seconds }));
    } catch (error) {
      // Every member cancelled: nobody is left to retry for.
      if (isCancellation(error)) return items.map(() => error);
      return Promise.all(items.map((item) => this.runAlone(item).catch((e: unknown) => toError(e))));
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
