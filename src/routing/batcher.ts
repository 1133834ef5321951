/**
 * Dynamic batching of encodes (dataloader): single-image encodes for the same model and size that
 * arrive within `windowMs` of each other run as one NCHW batch, when the router says the batch
 * runs whole on the local device (its estimate, planned with batch = N, fits the budget);
 * otherwise the group is split into the largest batches that do, down to single runs.
 *
 * - Scaling and latent dtype are applied by the caller after the run, so they do not split
 *   batches; the key is model, operation and size only.
 * - A request that would not run whole locally on its own (tiled, upstream, rejected) does not
 *   wait for a window: it runs at once, as without batching.
 * - Each caller gets its own slice of the output, and the batch's plan (`batch` = N, the bytes the
 *   batch reserved), so its result says how it ran.
 * - Hooks: a lone request (nothing else arrived in its window) runs with its own hooks, so progress
 *   and cancellation are exactly as without batching. In a batch, queue position, routing, start
 *   and progress go to every member; a member that cancels is answered CANCELLED at once and the
 *   run goes on for the others; the run itself is cancelled only when every member has cancelled.
 * - Errors: if a batched run fails (for any reason but all members cancelling), each member is
 *   retried alone, through the router (which may also send it upstream when the device is BUSY),
 *   so one caller's failure is not another's.
 */
import DataLoader from 'dataloader';
import { GatewayError } from '../errors.js';
import { joinBatch, type Nchw, splitBatch } from '../gpu/tensor.js';
import type { ModelDefinition } from '../models/model.js';
import type { RoutedResult, Router } from './index.js';
import type { ExecuteHooks, Plan } from './router.js';

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

interface Item {
  model: ModelDefinition;
  input: Nchw;
  hooks: ExecuteHooks;
}

function cancelled(): GatewayError {
  return new GatewayError('CANCELLED', 'the request was cancelled');
}

/** Resolves with `work`, or rejects with CANCELLED as soon as `signal` aborts (the work goes on). */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(cancelled());
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
      if (signals.every((s) => s.aborted)) all.abort();
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
    private readonly router: Router,
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

  /** Encodes `input` (NCHW in the model's input range), batched with others when it can be. */
  async encode(model: ModelDefinition, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    this.stats.requests++;
    const [n, , height, width] = input.dims;
    const solo = this.router.plan(model, 'encode', width, height, n);
    if (!this.enabled || n !== 1 || solo.route !== 'LOCAL') return this.runPlanned(model, solo, input, hooks);
    if (hooks.signal?.aborted) throw cancelled();
    const key = `${model.id}/encode/${width}x${height}`;
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
    return unlessAborted(loader.load({ model, input, hooks }), hooks.signal);
  }

  private runPlanned(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks): Promise<RoutedResult> {
    this.stats.runs++;
    return this.router.run(model, plan, input, hooks);
  }

  /** A lone item: planned and run as if there were no batching (upstream and tiling included). */
  private runAlone(item: Item): Promise<RoutedResult> {
    const [n, , height, width] = item.input.dims;
    return this.runPlanned(
      item.model,
      this.router.plan(item.model, 'encode', width, height, n),
      item.input,
      item.hooks,
    );
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
    // The largest batch size that the router runs whole on the local device.
    const { model, input } = live[0].item;
    const [, , height, width] = input.dims;
    let size = live.length;
    while (size > 1 && this.router.plan(model, 'encode', width, height, size).route !== 'LOCAL') size--;
    const groups: Array<typeof live> = [];
    for (let start = 0; start < live.length; start += size) groups.push(live.slice(start, start + size));
    await Promise.all(groups.map(settle));
    return results;
  }

  private async runBatch(items: Item[]): Promise<Array<RoutedResult | Error>> {
    const [, , height, width] = items[0].input.dims;
    const model = items[0].model;
    const plan = this.router.plan(model, 'encode', width, height, items.length);
    if (plan.route !== 'LOCAL')
      return Promise.all(items.map((item) => this.runAlone(item).catch((e: unknown) => toError(e))));
    const hooks = fanOut(items.map((item) => item.hooks));
    this.stats.runs++;
    this.stats.batchedRuns++;
    this.stats.batchedRequests += items.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, items.length);
    try {
      // Straight to the local device: the batch exists only because it runs whole here.
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
      if (error instanceof GatewayError && error.code === 'CANCELLED') return items.map(() => error);
      return Promise.all(items.map((item) => this.runAlone(item).catch((e: unknown) => toError(e))));
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
