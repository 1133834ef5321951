/**
 * One upstream endpoint's state: its circuit breaker, its last health check, and its measured
 * latency (round trip from health checks, seconds per megapixel from real calls, both smoothed),
 * which make the expected completion time the router compares with the local device's.
 */
import { ewma } from '../common/ewma.js';
import type { Operation } from '../models/model.js';
import type { UpstreamView } from '../routing/router.js';
import { type BreakerState, CircuitBreaker } from './circuit-breaker.js';
import { endpointUrl, type UpstreamConfig, type UpstreamOperation } from './config.js';
import { describeNetworkError } from './http-client.js';

/** Round trip assumed before the first health check or call. */
export const DEFAULT_RTT_SECONDS = 0.05;
const HEALTH_TIMEOUT_MS = 5000;

export interface EndpointSnapshot {
  name: string;
  model: string;
  operations: UpstreamOperation[];
  circuit: BreakerState;
  consecutiveFailures: number;
  healthy: boolean;
  lastHealthError: string | null;
  inFlight: number;
  rttSeconds: number | null;
  /** img2img: per megapixel and denoising step. */
  secondsPerMegapixel: Partial<Record<UpstreamOperation, number>>;
}

export class Endpoint {
  readonly name: string;
  readonly breaker: CircuitBreaker;
  private healthOk = true;
  private lastHealthError: string | null = null;
  protected rtt: number | null = null;
  protected readonly rates = new Map<UpstreamOperation, number>();
  inFlight = 0;

  /** `kind` starts the route target: `upstream:<name>` for configured endpoints, `peer:<name>` for peers. */
  constructor(
    readonly config: UpstreamConfig,
    kind = 'upstream',
  ) {
    this.name = `${kind}:${config.name}`;
    this.breaker = new CircuitBreaker({ failureThreshold: config.failureThreshold, cooldownMs: config.cooldownMs });
  }

  serves(model: string, operation: UpstreamOperation): boolean {
    return this.config.model === model && this.config.operations.includes(operation);
  }

  url(operation: Operation): string {
    return endpointUrl(this.config, operation);
  }

  /** Planning may send work here: circuit not open and the last health check passed. */
  get healthy(): boolean {
    return this.healthOk && this.breaker.available;
  }

  takes(width: number, height: number): boolean {
    return this.config.maxPixels === null || width * height <= this.config.maxPixels;
  }

  /**
   * Round trip plus run time at the measured rate; requests already in flight here are assumed to
   * run before this one. For img2img, `pixels` counts each denoising step's pixels (pixels x steps).
   * `bytes` (the run's memory estimate) matters only to peers, which say how much they have free.
   */
  expectedSeconds(operation: UpstreamOperation, pixels: number, _bytes?: number): number {
    const rate = this.rates.get(operation) ?? this.config.expectedSecondsPerMegapixel;
    return (this.rtt ?? DEFAULT_RTT_SECONDS) + rate * (pixels / 1e6) * (1 + this.inFlight);
  }

  view(operation: Operation): UpstreamView {
    return {
      name: this.name,
      healthy: this.healthy,
      maxPixels: this.config.maxPixels,
      expectedSeconds: (pixels, bytes) => this.expectedSeconds(operation, pixels, bytes),
    };
  }

  /** Sent with every call: the token as a Bearer credential (peers add the forwarding mark). */
  requestHeaders(): Record<string, string> {
    return this.config.token ? { Authorization: `Bearer ${this.config.token}` } : {};
  }

  recordCall(operation: UpstreamOperation, pixels: number, seconds: number): void {
    const sample = Math.max(0, seconds - (this.rtt ?? 0)) / Math.max(pixels / 1e6, 1e-3);
    this.rates.set(operation, ewma(this.rates.get(operation), sample));
  }

  private recordRtt(seconds: number): void {
    this.rtt = ewma(this.rtt, seconds);
  }

  /** GET the health URL; any 2xx within the time limit is healthy. */
  async checkHealth(): Promise<boolean> {
    const url = this.config.healthUrl;
    if (!url) return this.healthOk;
    const started = performance.now();
    try {
      const headers: Record<string, string> = this.config.token ? { Authorization: `Bearer ${this.config.token}` } : {};
      const response = await fetch(url, {
        headers,
        signal: AbortSignal.timeout(Math.min(this.config.timeoutMs, HEALTH_TIMEOUT_MS)),
        redirect: 'error',
      });
      await response.arrayBuffer();
      if (response.status < 200 || response.status >= 300) throw new Error(`HTTP ${response.status}`);
      this.recordRtt((performance.now() - started) / 1000);
      this.healthOk = true;
      this.lastHealthError = null;
    } catch (error) {
      this.healthOk = false;
      this.lastHealthError = describeNetworkError(error);
    }
    return this.healthOk;
  }

  snapshot(): EndpointSnapshot {
    return {
      name: this.name,
      model: this.config.model,
      operations: this.config.operations,
      circuit: this.breaker.state,
      consecutiveFailures: this.breaker.consecutiveFailures,
      healthy: this.healthy,
      lastHealthError: this.lastHealthError,
      inFlight: this.inFlight,
      rttSeconds: this.rtt,
      secondsPerMegapixel: Object.fromEntries(this.rates),
    };
  }
}
