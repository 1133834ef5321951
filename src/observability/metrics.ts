/**
 * Prometheus metrics (prom-client), one registry per gateway, exposed at GET /metrics. Counters are
 * fed where things happen (routed runs: `ran`; answered errors: src/observability/answers.ts);
 * gauges of state (ledger, queue, upstreams, host memory) are read from the services at scrape time.
 * Every name starts with `latentgate_`, Node's default process metrics included.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_CODES } from '../errors.js';
import type { RunObserver, RunOutcome } from '../routing/hooks.js';
import type { LedgerSnapshot } from '../routing/ledger.js';
import type { EndpointSnapshot } from '../upstream/endpoint.js';

const PREFIX = 'latentgate_';

/** What the scrape-time gauges read. */
export interface MetricSources {
  ledger: { snapshot(): LedgerSnapshot };
  upstreams: { snapshot(): EndpointSnapshot[] } | null;
}

/** Host memory held by admitted requests, and the budget it is admitted against (HOST_MEMORY). */
export interface HostMemory {
  heldBytes: number;
  budgetBytes: number;
}

const CIRCUIT_STATES: readonly EndpointSnapshot['circuit'][] = ['closed', 'half-open', 'open'];

/** From a 10 ms tile to a 10-minute img2img loop. */
const RUN_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const RETRY_AFTER_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export class GatewayMetrics implements RunObserver {
  readonly registry = new Registry();
  /** Routed runs: `outcome` is `ok` or the error code; `route` the one it ran (or was refused) on. */
  readonly requests: Counter<'operation' | 'route' | 'outcome'>;
  /** Every error code a client was answered with (GraphQL, HTTP, failed jobs); BUSY answers included. */
  readonly rejections: Counter<'reason'>;
  /** The `retryAfterSeconds` each BUSY answer gave. */
  readonly busyRetryAfter: Histogram;
  /** Seconds of each successful run (device or upstream time, not queue wait). */
  readonly runSeconds: Histogram<'model' | 'operation' | 'route'>;
  private hostMemory: (() => HostMemory) | null = null;

  constructor(sources: MetricSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    this.requests = new Counter({
      name: `${PREFIX}requests_total`,
      help: 'Routed encode/decode runs and local img2img stages, by operation, route and outcome (ok or error code)',
      labelNames: ['operation', 'route', 'outcome'],
      registers,
    });
    this.rejections = new Counter({
      name: `${PREFIX}rejections_total`,
      help: 'Errors answered to clients, by code (BUSY answers included)',
      labelNames: ['reason'],
      registers,
    });
    // Every known code from the start, so a rate over a code that has not happened yet is 0, not absent.
    for (const reason of ERROR_CODES) this.rejections.inc({ reason }, 0);
    this.busyRetryAfter = new Histogram({
      name: `${PREFIX}busy_retry_after_seconds`,
      help: 'retryAfterSeconds given with each BUSY answer',
      buckets: RETRY_AFTER_BUCKETS,
      registers,
    });
    this.runSeconds = new Histogram({
      name: `${PREFIX}run_seconds`,
      help: 'Seconds of each successful run, by model, operation and route',
      labelNames: ['model', 'operation', 'route'],
      buckets: RUN_SECONDS_BUCKETS,
      registers,
    });
    const ledgerGauge = (name: string, help: string, read: (s: LedgerSnapshot) => number) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames: ['device'],
        registers,
        collect() {
          const snapshot = sources.ledger.snapshot();
          this.reset();
          this.set({ device: snapshot.name }, read(snapshot));
        },
      });
    ledgerGauge('queue_depth', 'Requests waiting for device memory', (s) => s.queued);
    ledgerGauge('queue_bytes', 'Device bytes the waiting requests ask for', (s) => s.queuedBytes);
    ledgerGauge('running', 'Runs holding a device reservation', (s) => s.running);
    ledgerGauge('ledger_reserved_bytes', 'Device bytes reserved by running requests', (s) => s.reservedBytes);
    ledgerGauge(
      'ledger_budget_bytes',
      'Device budget reservations are admitted against (headroom taken off)',
      (s) => s.budgetBytes,
    );
    const upstreamGauge = (
      name: string,
      help: string,
      set: (gauge: Gauge, e: EndpointSnapshot) => void,
      labelNames = ['endpoint', 'model'],
    ) =>
      new Gauge({
        name: `${PREFIX}${name}`,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          for (const endpoint of sources.upstreams?.snapshot() ?? []) set(this, endpoint);
        },
      });
    upstreamGauge(
      'upstream_healthy',
      '1 when the endpoint takes work (health check passed, circuit not open)',
      (g, e) => g.set({ endpoint: e.name, model: e.model }, e.healthy ? 1 : 0),
    );
    upstreamGauge(
      'upstream_circuit_state',
      '1 for the circuit breaker state the endpoint is in',
      (g, e) => {
        for (const state of CIRCUIT_STATES)
          g.set({ endpoint: e.name, model: e.model, state }, e.circuit === state ? 1 : 0);
      },
      ['endpoint', 'model', 'state'],
    );
    upstreamGauge('upstream_rtt_seconds', 'Smoothed health-check round trip (absent before the first)', (g, e) => {
      if (e.rttSeconds !== null) g.set({ endpoint: e.name, model: e.model }, e.rttSeconds);
    });
    upstreamGauge('upstream_in_flight', 'Requests being sent to the endpoint now', (g, e) =>
      g.set({ endpoint: e.name, model: e.model }, e.inFlight),
    );
    upstreamGauge('upstream_consecutive_failures', 'Failures since the last success', (g, e) =>
      g.set({ endpoint: e.name, model: e.model }, e.consecutiveFailures),
    );
  }

  ran(run: RunOutcome): void {
    const { model, operation, route, outcome, seconds } = run;
    this.requests.inc({ operation, route, outcome });
    if (outcome === 'ok' && seconds !== null) this.runSeconds.observe({ model, operation, route }, seconds);
  }

  /**
   * Host memory (the admission ledger's): `latentgate_host_memory_held_bytes` and
   * `latentgate_host_memory_budget_bytes`, read from `source` at each scrape. Absent until registered;
   * a later call replaces the source.
   */
  registerHostMemory(source: () => HostMemory): void {
    const first = this.hostMemory === null;
    this.hostMemory = source;
    if (!first) return;
    const read = () => this.hostMemory!();
    new Gauge({
      name: `${PREFIX}host_memory_held_bytes`,
      help: 'Host bytes held by admitted requests (inputs, pixels, tensors, results awaiting delivery)',
      registers: [this.registry],
      collect() {
        this.set(read().heldBytes);
      },
    });
    new Gauge({
      name: `${PREFIX}host_memory_budget_bytes`,
      help: 'Host memory budget requests are admitted against (HOST_MEMORY)',
      registers: [this.registry],
      collect() {
        this.set(read().budgetBytes);
      },
    });
  }

  /**
   * Redis (src/observability/redis-health.ts): `latentgate_redis_up` (1 when the last PING was answered)
   * and `latentgate_redis_failures_total` (failed PINGs), read from `source` at each scrape.
   */
  registerRedis(source: () => { ok: boolean; failures: number }): void {
    new Gauge({
      name: `${PREFIX}redis_up`,
      help: '1 when Redis answered the last health check (PING), else 0',
      registers: [this.registry],
      collect() {
        this.set(source().ok ? 1 : 0);
      },
    });
    new Counter({
      name: `${PREFIX}redis_failures_total`,
      help: 'Redis health checks (PING) that failed or timed out',
      registers: [this.registry],
      collect() {
        // The monitor keeps the count; the counter shows it as it is.
        this.reset();
        this.inc(source().failures);
      },
    });
  }

  /** The Prometheus text exposition, and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
