/**
 * A peer's models as upstream endpoints of the pool: encode/decode over its Hybrid Inference
 * routes, img2img over its GraphQL mutation (the `latentgate` protocol). What it advertised (free
 * memory, queue, measured speed) decides whether and how soon it can take a request; calls to it
 * carry the forwarding mark (./hop.ts) so it runs them itself.
 */
import { MAX_SEED } from '../diffusion/random.js';
import type { UpstreamConfig, UpstreamOperation } from '../upstream/config.js';
import { DEFAULT_RTT_SECONDS, Endpoint } from '../upstream/endpoint.js';
import { FORWARDED_HEADER } from './hop.js';
import type { PeerRecord } from './registry.js';

/** The latest record of one peer, shared by its endpoints and replaced on each heartbeat read. */
export interface PeerState {
  record: PeerRecord;
}

export class PeerEndpoint extends Endpoint {
  constructor(
    config: UpstreamConfig,
    private readonly peer: PeerState,
    /** This instance's name, sent in the forwarding mark. */
    private readonly selfName: string,
  ) {
    super(config, 'peer');
  }

  /**
   * Infinity when the peer could not take `bytes` (over its budget, or its queue is full so it would
   * answer BUSY); else the round trip, its queue's drain time unless the run fits there now, and the
   * run at its measured speed (then at what calls to it took, then the default), with the requests
   * this instance already sent there ahead of it.
   */
  override expectedSeconds(operation: UpstreamOperation, pixels: number, bytes = 0): number {
    const r = this.peer.record;
    if (bytes > r.budgetBytes) return Infinity;
    const fitsNow = r.queued === 0 && (1 + this.inFlight) * bytes <= r.freeBytes;
    if (!fitsNow && r.queued >= r.maxQueueLength) return Infinity;
    const advertised = r.speed.find((s) => s.model === this.config.model && s.operation === operation);
    const rate =
      advertised?.secondsPerMegapixel ?? this.rates.get(operation) ?? this.config.expectedSecondsPerMegapixel;
    const wait = fitsNow ? 0 : r.drainSeconds;
    return (this.rtt ?? DEFAULT_RTT_SECONDS) + wait + rate * (pixels / 1e6) * (1 + this.inFlight);
  }

  override requestHeaders(): Record<string, string> {
    return { ...super.requestHeaders(), [FORWARDED_HEADER]: this.selfName };
  }
}

/** One endpoint per model and kind of call the peer serves. */
export function peerEndpoints(state: PeerState, selfName: string, token: string | null): PeerEndpoint[] {
  const { record } = state;
  const common = {
    name: record.name,
    remoteModel: null,
    maxSeed: MAX_SEED,
    token,
    // Another instance is tried at once rather than a busy peer again (the router falls back locally).
    retries: 0,
    maxPixels: null,
    family: null,
    latentChannels: null,
    downscaleFactor: null,
    // Its heartbeat is its health check.
    healthUrl: null,
    healthIntervalMs: 15_000,
    failureThreshold: 3,
    cooldownMs: 15_000,
  };
  const configs: UpstreamConfig[] = [];
  for (const model of record.models) {
    const vae = model.operations.filter((op) => op === 'encode' || op === 'decode');
    if (vae.length > 0)
      configs.push({
        ...common,
        model: model.id,
        url: `${record.url}/v1/vae/${encodeURIComponent(model.id)}/{operation}`,
        operations: vae,
        protocol: 'hybrid-inference',
        timeoutMs: 30_000,
        expectedSecondsPerMegapixel: 2,
      });
    if (model.operations.includes('img2img'))
      configs.push({
        ...common,
        model: model.id,
        url: `${record.url}/graphql`,
        operations: ['img2img'],
        protocol: 'latentgate',
        timeoutMs: 300_000,
        expectedSecondsPerMegapixel: 0.5,
      });
  }
  return configs.map((config) => new PeerEndpoint(config, state, selfName));
}
