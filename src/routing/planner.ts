/**
 * The routing decision, pure over its inputs (model profiles, device budget, queue state, run
 * history, upstream health): it lists the candidates that fit (whole, tiled, upstream) and picks
 * the one expected to finish first (queue wait + run time). Running a plan is the Router's job.
 */
import type { TilePlan } from '../gpu/local-executor.js';
import { type EstimateInput, estimatePeakBytes } from './estimator.js';
import type { ModelMemoryProfiles } from './memory-profile.js';
import { largestTileThatFits, overlapFor } from './tiles.js';

export type RouteKind = 'LOCAL' | 'TILED' | 'UPSTREAM' | 'REJECT';

/** What a request asks of a device: the estimator's input, before a tile size is chosen. */
export type PlanRequest = Omit<EstimateInput, 'tile'>;

export interface PlanEstimates {
  whole: { bytes: number; calibrated: boolean };
  tiled: { bytes: number; tile: number; overlap: number; calibrated: boolean } | null;
}

export interface Plan extends PlanRequest {
  model: string;
  route: RouteKind;
  reason: string;
  /** Where it runs: `local:cpu`, `local:cuda`, or an upstream's name. */
  target: string;
  estimates: PlanEstimates;
  /** Bytes the chosen route reserves (0 for upstream and reject). */
  bytes: number;
  tiles?: TilePlan;
  /** Expected seconds until the result is back: the queue wait plus `runSeconds`. */
  expectedSeconds: number;
  /**
   * The run's own expected seconds, without queue wait: what the ledger is told (it adds the wait of
   * the queue ahead itself). Upstream: the endpoint's expected seconds; REJECT: 0.
   */
  runSeconds: number;
  budgetBytes: number;
  freeBytes: number;
}

/** What the router needs to know about the device it plans against. */
export interface DeviceView {
  name: string;
  budgetBytes: number;
  freeBytes: number;
  waitSeconds(bytes: number): number;
  /** True when a reservation of `bytes` would be refused now (BUSY: the wait queue is full). */
  refuses?(bytes: number): boolean;
}

/** An upstream endpoint as the router sees it (src/upstream keeps these up to date). */
export interface UpstreamView {
  /** The route's target, e.g. `upstream:10.0.0.2:4000`. */
  name: string;
  /** Circuit closed (or ready for a trial) and the last health check passed. */
  healthy: boolean;
  /** Largest image (width x height) it takes; null = any. */
  maxPixels: number | null;
  /**
   * Expected seconds until the result is back (network, queue and run), from measured latency;
   * `bytes` is the run's memory estimate here (a peer without room for it answers Infinity).
   */
  expectedSeconds(pixels: number, bytes?: number): number;
}

export interface PlanOptions {
  /** Upstream endpoints that serve this model and operation. */
  upstreams?: readonly UpstreamView[];
  /** False when this gateway has no local network for the operation (the model lives upstream). */
  local?: boolean;
  /**
   * Overlap (image pixels) with which the network's tiles join exactly (src/gpu/tiling.ts), used
   * when smaller than the tile; absent or null: tiles overlap by a quarter and are blended.
   */
  exactOverlap?: number | null;
}

export interface RunTimeModel {
  expectedSeconds(model: string, operation: string, kind: 'LOCAL' | 'TILED', pixels: number): { seconds: number };
}

export function planRoute(
  model: string,
  profiles: ModelMemoryProfiles,
  request: PlanRequest,
  device: DeviceView,
  times: RunTimeModel,
  planOptions: PlanOptions = {},
): Plan {
  const { width, height, batch, dtype, operation } = request;
  const pixels = width * height * batch;
  const whole = estimatePeakBytes(profiles, { operation, width, height, batch, dtype });
  const factor = profiles.downscaleFactor;
  const multiple = Math.max(64, factor);
  // The largest tile that fits: the fewer tiles, the less overlap is computed twice (where tiles
  // join exactly, the executor then evens them out to what that count needs, see tiling.ts).
  // Sized to what is free now when possible, else to the whole budget (and then wait).
  const fitTile = (budget: number) =>
    largestTileThatFits(profiles, { operation, width, height, batch, dtype }, budget, {
      multiple,
      minTile: Math.max(4 * multiple, 256),
    });
  const candidateTile = fitTile(device.freeBytes) ?? fitTile(device.budgetBytes);
  const exact = planOptions.exactOverlap ?? null;
  const overlapOf = (tile: number) => (exact !== null && exact < tile ? exact : overlapFor(tile, factor));
  const tiledEstimate =
    candidateTile !== null && (width > candidateTile || height > candidateTile)
      ? estimatePeakBytes(profiles, { operation, width, height, batch, dtype, tile: candidateTile })
      : null;
  const estimates: PlanEstimates = {
    whole: { bytes: whole.bytes, calibrated: whole.calibrated },
    tiled: tiledEstimate && {
      bytes: tiledEstimate.bytes,
      tile: candidateTile!,
      overlap: overlapOf(candidateTile!),
      calibrated: tiledEstimate.calibrated,
    },
  };
  const base = { model, ...request, estimates, budgetBytes: device.budgetBytes, freeBytes: device.freeBytes };
  const options: Plan[] = [];
  const local = planOptions.local !== false;
  if (local && whole.bytes <= device.budgetBytes) {
    const wait = device.waitSeconds(whole.bytes);
    const run = times.expectedSeconds(model, operation, 'LOCAL', pixels).seconds;
    options.push({
      ...base,
      route: 'LOCAL',
      target: device.name,
      bytes: whole.bytes,
      expectedSeconds: wait + run,
      runSeconds: run,
      reason: reasonFor('whole', whole.bytes, device, wait),
    });
  }
  if (local && estimates.tiled) {
    const t = estimates.tiled;
    const wait = device.waitSeconds(t.bytes);
    const run = times.expectedSeconds(model, operation, 'TILED', pixels).seconds;
    const why =
      whole.bytes > device.budgetBytes
        ? `the whole run needs ${gib(whole.bytes)}, over the ${gib(device.budgetBytes)} budget; `
        : '';
    options.push({
      ...base,
      route: 'TILED',
      target: device.name,
      bytes: t.bytes,
      tiles: { tile: t.tile, overlap: t.overlap },
      expectedSeconds: wait + run,
      runSeconds: run,
      reason: `${why}${reasonFor(`tiled (${t.tile} px tiles)`, t.bytes, device, wait)}`,
    });
  }
  const upstreams = upstreamOptions<Plan>(base, pixels, width * height, whole.bytes, planOptions.upstreams ?? []);
  // Local work the ledger would refuse now (queue full) goes upstream when an upstream can take it.
  const localOptions =
    upstreams.length > 0 && device.refuses ? options.filter((o) => !device.refuses!(o.bytes)) : options;
  const saturated = localOptions.length < options.length;
  const candidates = [...localOptions, ...upstreams];
  if (candidates.length === 0) {
    const upstreamNote = noUpstreamNote(planOptions.upstreams?.length ?? 0, width, height);
    return rejected(
      base,
      local
        ? `nothing fits: the whole run needs ${gib(whole.bytes)} ` +
            `and even the smallest tile does not fit the ${gib(device.budgetBytes)} ` +
            `budget of ${device.name}${upstreamNote}`
        : `model "${model}" runs only upstream for ${operation}` +
            `${upstreamNote || '; no upstream endpoint is configured'}`,
    );
  }
  // Ties go to the local device (listed first).
  const best = candidates.reduce((b, o) => (o.expectedSeconds < b.expectedSeconds ? o : b));
  if (best.route !== 'UPSTREAM') return best;
  const bestLocal =
    localOptions.length > 0 ? localOptions.reduce((b, o) => (o.expectedSeconds < b.expectedSeconds ? o : b)) : null;
  const why = !local
    ? 'no local weights for this operation'
    : bestLocal
      ? `expected sooner than ${bestLocal.route.toLowerCase()} on ${device.name} ` +
        `(${bestLocal.expectedSeconds.toFixed(2)} s)`
      : saturated
        ? `${device.name} is saturated (its wait queue is full)`
        : `nothing fits ${device.name}: the whole run needs ${gib(whole.bytes)} ` +
          `of its ${gib(device.budgetBytes)} budget and no tile fits`;
  return { ...best, reason: `${best.reason}; ${why}` };
}

/** One UPSTREAM option per healthy endpoint that takes the image size (and, for a peer, has room for `bytes`). */
export function upstreamOptions<
  P extends Pick<Plan, 'route' | 'target' | 'bytes' | 'expectedSeconds' | 'runSeconds' | 'reason'>,
>(
  base: Omit<P, 'route' | 'target' | 'bytes' | 'expectedSeconds' | 'runSeconds' | 'reason' | 'tiles'>,
  pixels: number,
  imagePixels: number,
  bytes: number,
  views: readonly UpstreamView[],
): P[] {
  const options: P[] = [];
  for (const view of views) {
    if (!view.healthy || (view.maxPixels !== null && imagePixels > view.maxPixels)) continue;
    const seconds = view.expectedSeconds(pixels, bytes);
    if (!Number.isFinite(seconds)) continue;
    options.push({
      ...base,
      route: 'UPSTREAM',
      target: view.name,
      bytes: 0,
      expectedSeconds: seconds,
      runSeconds: seconds,
      reason: `upstream ${view.name}: expected back in ${seconds.toFixed(2)} s`,
    } as P);
  }
  return options;
}

/** A plan that runs nowhere: it reserves nothing and takes no time. */
export function rejected<B extends object>(base: B, reason: string) {
  return {
    ...base,
    route: 'REJECT' as const,
    target: 'none',
    bytes: 0,
    expectedSeconds: 0,
    runSeconds: 0,
    reason,
  };
}

/** Why no configured upstream is a candidate (empty when none is configured). */
export function noUpstreamNote(configured: number, width: number, height: number): string {
  return configured > 0
    ? `; none of its ${configured} upstream endpoint(s) is healthy and takes ${width}x${height}`
    : '';
}

export function reasonFor(what: string, bytes: number, device: DeviceView, wait: number): string {
  const fits =
    bytes <= device.freeBytes
      ? `fits the ${gib(device.freeBytes)} free now`
      : `waits about ${wait.toFixed(1)} s for ${gib(bytes)} to free up`;
  return `${what}: needs ${gib(bytes)} of ${device.name}'s ${gib(device.budgetBytes)} budget, ${fits}`;
}

export function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

/**
 * `member` (a LOCAL plan for one image) widened to `batch` such images run together whole: the
 * batch's estimate and reservation, its expected run time.
 */
export function planLocalBatch(
  profiles: ModelMemoryProfiles,
  member: Plan,
  batch: number,
  device: DeviceView,
  times: RunTimeModel,
): Plan {
  if (member.route !== 'LOCAL') throw new Error(`only a LOCAL plan can be batched, not ${member.route}`);
  const { operation, width, height, dtype } = member;
  const whole = estimatePeakBytes(profiles, { operation, width, height, batch, dtype });
  const wait = device.waitSeconds(whole.bytes);
  const run = times.expectedSeconds(member.model, operation, 'LOCAL', width * height * batch).seconds;
  return {
    ...member,
    batch,
    estimates: { whole: { bytes: whole.bytes, calibrated: whole.calibrated }, tiled: null },
    bytes: whole.bytes,
    expectedSeconds: wait + run,
    runSeconds: run,
    budgetBytes: device.budgetBytes,
    freeBytes: device.freeBytes,
    reason: `batch of ${batch}: ${reasonFor('whole', whole.bytes, device, wait)}`,
  };
}
