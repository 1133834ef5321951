/**
 * Whole img2img requests on upstream endpoints: which endpoints can take a request (and why not),
 * and running one with failover across the model's other img2img endpoints, with the same circuit
 * breaker and latency bookkeeping as encode and decode (src/upstream/pool.ts).
 */
import { GatewayError, throwIfCancelled } from '../../errors.js';
import type { Img2ImgRequest } from '../../pipeline/img2img-types.js';
import type { UpstreamView } from '../../routing/router.js';
import { recordFailedAttempt } from '../attempt.js';
import type { Img2ImgProtocol, UpstreamConfig } from '../config.js';
import type { Endpoint } from '../endpoint.js';
import { callUpstream } from '../http-client.js';
import { a1111Client } from './a1111.js';
import {
  denoisingSteps,
  drawSeed,
  type Img2ImgClient,
  initImage,
  maxImg2ImgResponseBytes,
  type UpstreamImg2ImgAnswer,
} from './common.js';
import { hfImageToImageClient } from './hf-image-to-image.js';
import { latentgateClient } from './latentgate.js';

export type { UpstreamImg2ImgAnswer } from './common.js';

export const IMG2IMG_CLIENTS: Record<Img2ImgProtocol, Img2ImgClient> = {
  latentgate: latentgateClient,
  'hf-image-to-image': hfImageToImageClient,
  a1111: a1111Client,
};

/** An img2img endpoint as planning sees it. `expectedSeconds(pixels)` takes the init image's pixels. */
export interface Img2ImgView extends UpstreamView {
  protocol: Img2ImgProtocol;
  /** Why this endpoint cannot take the request the views were made for; null when it can. */
  refusal: string | null;
}

export interface Img2ImgRunHooks {
  /** The planned endpoint (`upstream:<name>`), tried first; the others follow by expected time. */
  target?: string;
  signal?: AbortSignal;
  /** Called as each endpoint is tried. */
  onRouted?(endpoint: string): void;
}

export interface UpstreamImg2ImgRun extends UpstreamImg2ImgAnswer {
  /** The endpoint that answered (`upstream:<name>`). */
  endpoint: string;
  /** Its round trip. */
  seconds: number;
  /** Each endpoint tried or skipped before it, with why. */
  failures: string[];
}

function protocolOf(config: UpstreamConfig): Img2ImgProtocol {
  if (config.protocol === 'hybrid-inference') throw new Error(`${config.name} does not serve img2img`);
  return config.protocol;
}

/** Why `config`'s endpoint cannot take `request`: the init latent, the seed, or what its API cannot express. */
export function img2imgRefusal(config: UpstreamConfig, request: Img2ImgRequest): string | null {
  const protocol = protocolOf(config);
  if (!request.image) return `an init latent cannot be sent to protocol "${protocol}"; it takes the init image`;
  if (request.seed !== null && request.seed > config.maxSeed)
    return `seed ${request.seed} is over ${config.maxSeed}, the largest this endpoint is sent (maxSeed)`;
  return IMG2IMG_CLIENTS[protocol].refusal(request);
}

export function img2imgView(endpoint: Endpoint, request?: Img2ImgRequest): Img2ImgView {
  const steps = request ? denoisingSteps(request) : 1;
  return {
    name: endpoint.name,
    protocol: protocolOf(endpoint.config),
    healthy: endpoint.healthy,
    maxPixels: endpoint.config.maxPixels,
    expectedSeconds: (pixels, bytes) => endpoint.expectedSeconds('img2img', pixels * steps, bytes),
    refusal: request ? img2imgRefusal(endpoint.config, request) : null,
  };
}

/**
 * Runs `request` on the first endpoint of `candidates` that takes it and answers: the planned one
 * first, then the healthy others by expected time. Endpoints that cannot take the request are
 * skipped with the reason; when none answers, UPSTREAM_FAILED names each endpoint and what it did.
 */
export async function runImg2ImgOn(
  candidates: readonly Endpoint[],
  model: string,
  request: Img2ImgRequest,
  hooks: Img2ImgRunHooks = {},
): Promise<UpstreamImg2ImgRun> {
  throwIfCancelled(hooks.signal);
  if (!request.image) throw new GatewayError('BAD_REQUEST', 'an upstream img2img needs the init image, not a latent');
  const image = await initImage(request.image);
  const pixels = image.outputWidth * image.outputHeight;
  const work = pixels * denoisingSteps(request);
  const planned = candidates.find((e) => e.name === hooks.target);
  // A peer whose queue is full expects Infinity: it is not tried.
  const others = candidates
    .filter((e) => e !== planned && e.healthy && Number.isFinite(e.expectedSeconds('img2img', work)))
    .sort((a, b) => a.expectedSeconds('img2img', work) - b.expectedSeconds('img2img', work));
  const failures: string[] = [];
  for (const endpoint of planned ? [planned, ...others] : others) {
    throwIfCancelled(hooks.signal);
    const refusal = img2imgRefusal(endpoint.config, request);
    if (refusal || !endpoint.takes(image.outputWidth, image.outputHeight)) {
      failures.push(`${endpoint.name}: ${refusal ?? `takes at most ${endpoint.config.maxPixels} pixels`}`);
      continue;
    }
    if (!endpoint.breaker.tryAcquire()) {
      failures.push(`${endpoint.name}: circuit open`);
      continue;
    }
    const client = IMG2IMG_CLIENTS[protocolOf(endpoint.config)];
    const call = { request, image, seed: request.seed ?? drawSeed(endpoint.config.maxSeed) };
    hooks.onRouted?.(endpoint.name);
    endpoint.inFlight++;
    try {
      const built = client.build(call, endpoint.config);
      built.headers = { ...built.headers, ...endpoint.requestHeaders() };
      const response = await callUpstream(built, {
        deadlineMs: endpoint.config.timeoutMs,
        retries: endpoint.config.retries,
        maxResponseBytes: maxImg2ImgResponseBytes(image),
        signal: hooks.signal,
      });
      const answer = await client.read(call, response);
      endpoint.breaker.recordSuccess();
      endpoint.recordCall('img2img', work, response.seconds);
      return { ...answer, endpoint: endpoint.name, seconds: response.seconds, failures };
    } catch (error) {
      recordFailedAttempt(endpoint, error, hooks.signal, failures);
    } finally {
      endpoint.inFlight--;
    }
  }
  const what = `${model} img2img ${image.outputWidth}x${image.outputHeight}`;
  throw new GatewayError(
    'UPSTREAM_FAILED',
    failures.length > 0
      ? `no img2img upstream answered ${what}: ${failures.join('; ')}`
      : `no healthy img2img upstream takes ${what}`,
    { model, operation: 'img2img', failures },
  );
}
