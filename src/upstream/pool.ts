/**
 * All configured upstream endpoints: views for the router's planning, periodic health checks, and
 * running a planned request with failover across a model's endpoints. The router falls back to
 * the local device when this gives up (src/routing/index.ts). Whole img2img requests go through
 * `img2imgViews` and `runImg2Img` (src/upstream/img2img/).
 */
import { GatewayError, throwIfCancelled } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import type { ModelDefinition, Operation } from '../models/model.js';
import { forwardedBy } from '../peers/hop.js';
import type { Img2ImgRequest } from '../pipeline/img2img-types.js';
import type { RoutedResult, UpstreamRunner } from '../routing/index.js';
import type { ExecuteHooks, Plan, UpstreamView } from '../routing/router.js';
import { recordFailedAttempt } from './attempt.js';
import { buildRequest, maxResponseBytes, readResponse } from './codec.js';
import type { UpstreamConfig, UpstreamOperation } from './config.js';
import { Endpoint, type EndpointSnapshot } from './endpoint.js';
import { callUpstream } from './http-client.js';
import {
  type Img2ImgRunHooks,
  type Img2ImgView,
  img2imgView,
  runImg2ImgOn,
  type UpstreamImg2ImgRun,
} from './img2img/index.js';

/** What the img2img pipeline calls (UpstreamPool implements it). */
export interface UpstreamImg2ImgRunner {
  /** Model ids with at least one img2img endpoint. */
  img2imgModels(): string[];
  /** The model's img2img endpoints for planning; with `request`, each says whether it can take it. */
  img2imgViews(model: string, request?: Img2ImgRequest): Img2ImgView[];
  runImg2Img(model: string, request: Img2ImgRequest, hooks?: Img2ImgRunHooks): Promise<UpstreamImg2ImgRun>;
}

export class UpstreamPool implements UpstreamRunner, UpstreamImg2ImgRunner {
  readonly endpoints: Endpoint[];
  /** Other instances' endpoints, replaced as their heartbeats come and go (src/peers/directory.ts). */
  private peers: readonly Endpoint[] = [];
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(configs: readonly UpstreamConfig[]) {
    this.endpoints = configs.map((c) => new Endpoint(c));
  }

  /** Checks every endpoint that has a health URL now and then every `healthIntervalMs`. */
  start(): void {
    for (const endpoint of this.endpoints) {
      if (!endpoint.config.healthUrl) continue;
      void endpoint.checkHealth();
      const timer = setInterval(() => void endpoint.checkHealth(), endpoint.config.healthIntervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  close(): void {
    for (const timer of this.timers.splice(0)) clearInterval(timer);
  }

  /** Model ids with encode/decode endpoints, and the operations they serve (img2img: `img2imgModels`). */
  models(): Map<string, Operation[]> {
    const models = new Map<string, Set<Operation>>();
    for (const e of this.endpoints) {
      for (const op of e.config.operations) {
        if (op === 'img2img') continue;
        const ops = models.get(e.config.model) ?? new Set<Operation>();
        models.set(e.config.model, ops.add(op));
      }
    }
    return new Map([...models].map(([id, ops]) => [id, [...ops]]));
  }

  img2imgModels(): string[] {
    return [
      ...new Set(this.endpoints.filter((e) => e.config.operations.includes('img2img')).map((e) => e.config.model)),
    ];
  }

  img2imgViews(model: string, request?: Img2ImgRequest): Img2ImgView[] {
    return this.forModel(model, 'img2img').map((e) => img2imgView(e, request));
  }

  runImg2Img(model: string, request: Img2ImgRequest, hooks: Img2ImgRunHooks = {}): Promise<UpstreamImg2ImgRun> {
    return runImg2ImgOn(this.forModel(model, 'img2img'), model, request, hooks);
  }

  /** The live peers' endpoints; the pool keeps no other state for them. */
  setPeers(endpoints: readonly Endpoint[]): void {
    this.peers = endpoints;
  }

  /** Configured endpoints, then peers unless this request came from a peer (it is never forwarded twice). */
  forModel(model: string, operation?: UpstreamOperation): Endpoint[] {
    const all = forwardedBy() === undefined ? [...this.endpoints, ...this.peers] : this.endpoints;
    return all.filter((e) => (operation ? e.serves(model, operation) : e.config.model === model));
  }

  views(model: string, operation: Operation): UpstreamView[] {
    return this.forModel(model, operation).map((e) => e.view(operation));
  }

  snapshot(): EndpointSnapshot[] {
    return this.endpoints.map((e) => e.snapshot());
  }

  async run(model: ModelDefinition, plan: Plan, input: Nchw, hooks: ExecuteHooks = {}): Promise<RoutedResult> {
    const operation = plan.operation;
    const pixels = plan.width * plan.height * plan.batch;
    const candidates = this.forModel(model.id, operation);
    const planned = candidates.find((e) => e.name === plan.target);
    // A peer without room for the run expects Infinity: it is not tried.
    const bytes = plan.estimates.whole.bytes;
    const expected = (e: Endpoint) => e.expectedSeconds(operation, pixels, bytes);
    const others = candidates
      .filter((e) => e !== planned && e.healthy && e.takes(plan.width, plan.height) && Number.isFinite(expected(e)))
      .sort((a, b) => expected(a) - expected(b));
    const order = planned ? [planned, ...others] : others;
    const failures: string[] = [];
    // One step: an upstream reports no tiles, so progress goes 0/1 when sent and 1/1 when answered.
    hooks.onStarted?.(1);
    for (const endpoint of order) {
      throwIfCancelled(hooks.signal);
      if (!endpoint.breaker.tryAcquire()) {
        failures.push(`${endpoint.name}: circuit open`);
        continue;
      }
      endpoint.inFlight++;
      try {
        const request = await buildRequest(operation, endpoint.url(operation), model, input);
        request.headers = { ...request.headers, ...endpoint.requestHeaders() };
        const response = await callUpstream(request, {
          deadlineMs: endpoint.config.timeoutMs,
          retries: endpoint.config.retries,
          maxResponseBytes: maxResponseBytes(operation, model, input),
          signal: hooks.signal,
        });
        const output = readResponse(operation, model, input, response.headers, response.body);
        endpoint.breaker.recordSuccess();
        endpoint.recordCall(operation, pixels, response.seconds);
        hooks.onProgress?.(1, 1);
        const ran: Plan =
          endpoint === planned
            ? plan
            : {
                ...plan,
                target: endpoint.name,
                reason: `${plan.reason}; failed over to ${endpoint.name} after ${failures.join('; ')}`,
              };
        return { output, plan: ran, seconds: response.seconds };
      } catch (error) {
        recordFailedAttempt(endpoint, error, hooks.signal, failures);
      } finally {
        endpoint.inFlight--;
      }
    }
    const what = `${model.id} ${operation} ${plan.width}x${plan.height}x${plan.batch}`;
    throw new GatewayError(
      'UPSTREAM_FAILED',
      failures.length > 0
        ? `every upstream failed for ${what}: ${failures.join('; ')}`
        : `no healthy upstream takes ${what}`,
      { model: model.id, operation, failures },
    );
  }
}
