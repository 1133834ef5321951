/**
 * img2img requests that run whole on an upstream endpoint (another latentgate, a Hugging Face
 * image-to-image endpoint, AUTOMATIC1111): the endpoints that can take a request, and the result of
 * one made into an Img2ImgResult like a local run's. The upstream runs every stage; the result lists
 * one DENOISE stage naming the endpoint, with the round trip.
 */
import { GatewayError } from '../errors.js';
import { readImage, writeImage } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import type { UpstreamView } from '../routing/planner.js';
import type { AnyPlan } from '../routing/stage-planner.js';
import type { Img2ImgView } from '../upstream/img2img/index.js';
import type { UpstreamImg2ImgRunner } from '../upstream/pool.js';
import { deliver } from './delivery.js';
import type { PipelineDeps } from './encode.js';
import type { Img2ImgRequest, Img2ImgResult, SchedulerName } from './img2img-types.js';
import { sha256 } from './latent-codec.js';

export interface Img2ImgUpstreamDeps extends PipelineDeps {
  /** Configured img2img endpoints (UPSTREAMS entries with operations ["img2img"]); absent or null = none. */
  img2imgUpstreams?: UpstreamImg2ImgRunner | null;
}

/** The endpoints that can take `request` now, and why the others cannot. */
export function img2imgUpstreamViews(
  deps: Img2ImgUpstreamDeps,
  model: ModelDefinition,
  request: Img2ImgRequest,
): { usable: UpstreamView[]; refused: string[] } {
  const views: Img2ImgView[] = deps.img2imgUpstreams?.img2imgViews(model.id, request) ?? [];
  const usable: UpstreamView[] = [];
  const refused: string[] = [];
  for (const view of views) {
    const why = request.returnLatent
      ? 'returnLatent: upstream img2img APIs return images only'
      : (view.refusal ?? (view.healthy ? null : 'unhealthy (circuit open or health check failing)'));
    if (why) refused.push(`${view.name}: ${why}`);
    else usable.push(view);
  }
  return { usable, refused };
}

/** Runs the whole request on the planned endpoint (failing over to the model's others). */
export async function runImg2ImgUpstream(
  deps: Img2ImgUpstreamDeps,
  model: ModelDefinition,
  request: Img2ImgRequest,
  plan: AnyPlan,
  context: {
    signal?: AbortSignal;
    onRouted?: (plan: AnyPlan) => void;
    timesteps: number[];
    scheduler: SchedulerName | null;
  },
): Promise<Img2ImgResult> {
  const upstreams = deps.img2imgUpstreams;
  if (!upstreams) throw new GatewayError('INTERNAL', `plan for ${plan.target} but no img2img upstreams are configured`);
  const started = performance.now();
  context.onRouted?.(plan);
  const answer = await upstreams.runImg2Img(model.id, request, {
    target: plan.target,
    signal: context.signal,
    onRouted: (endpoint) => {
      if (endpoint !== plan.target)
        context.onRouted?.({ ...plan, target: endpoint, reason: `${plan.target} failed; failed over to ${endpoint}` });
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const ran = answer.endpoint === plan.target ? plan : { ...plan, target: answer.endpoint };
  // The endpoint's image in the asked format: as sent when it already is, else its pixels written again.
  const decoded = await readImage(answer.image, deps.config.limits);
  const wanted = `image/${request.format}`;
  const bytes =
    answer.contentType === wanted
      ? answer.image
      : await writeImage({ pixels: decoded.pixels, width: decoded.width, height: decoded.height }, request.format);
  const delivered = await deliver(deps, request.delivery, { kind: 'image', bytes, contentType: wanted }, 'images');
  return {
    model: model.id,
    images: [
      {
        ...delivered,
        format: request.format,
        mimeType: wanted,
        width: decoded.width,
        height: decoded.height,
        sha256: sha256(bytes),
        byteLength: bytes.length,
      },
    ],
    latent: null,
    seed: answer.seed,
    scheduler: context.scheduler,
    timesteps: context.timesteps,
    stages: [{ stage: 'DENOISE', plan: ran, seconds }],
    width: decoded.width,
    height: decoded.height,
    seconds,
  };
}
