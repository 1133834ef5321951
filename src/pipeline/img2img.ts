/**
 * img2img as diffusers' StableDiffusion(XL)Img2ImgPipeline / LatentConsistencyModelImg2ImgPipeline /
 * FluxImg2ImgPipeline run it:
 *
 *   image → VAE encode (posterior sample from the request's generator) → scale → noise at `strength`
 *   → denoising loop (UNet per step, classifier-free guidance as a batch of two; Flux: the transformer on
 *   packed latents, flux.ts) → unscale → VAE decode
 *
 * One stage flow serves every family; a `DenoiserFamily` gives what differs (the conditioning, the
 * loop's latent layout, the network call).
 * Every stage goes through the router: all four are planned before anything runs (a request that
 * fits nowhere is refused before it starts), the VAE stages run whole, tiled or upstream like
 * encode/decode, and the text-encoder and UNet stages hold one ledger reservation for their calls.
 * Random draws come from one generator seeded like torch's, in diffusers' order: posterior sample,
 * start noise, then each step's noise (Euler a, LCM), so a seed reproduces a diffusers run.
 */
import { configClassName, type SchedulerClassName } from '../diffusion/config.js';
import {
  classifierFreeGuidance,
  guidanceScaleEmbedding,
  sdxlTimeIds,
  usesClassifierFreeGuidance,
} from '../diffusion/guidance.js';
import { type DenoiseProgress, denoise } from '../diffusion/loop.js';
import { latentDistribution, sampleLatent } from '../diffusion/posterior.js';
import { drawSeed, TorchGenerator } from '../diffusion/random.js';
import { createScheduler } from '../diffusion/schedulers/index.js';
import type { Scheduler } from '../diffusion/schedulers/types.js';
import { type Img2ImgPlan, planImg2Img, startLatent } from '../diffusion/strength.js';
import { GatewayError, throwIfCancelled } from '../errors.js';
import { type FeedValue, runDeclared } from '../gpu/signature-feeds.js';
import type { Nchw } from '../gpu/tensor.js';
import { readImage, sizeForFactor } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import type { DiffusionComponents, PipelineNetwork } from '../models/pipeline-folder.js';
import type { PipelineNetworks } from '../routing/memory-profile.js';
import type { UpstreamView } from '../routing/planner.js';
import type { ExecuteHooks } from '../routing/router.js';
import type { AnyPlan } from '../routing/stage-planner.js';
import { deliverImages } from './decode.js';
import { deliver } from './delivery.js';
import { type PipelineDeps, prepareImage } from './encode.js';
import { fluxDenoiser, fluxMu } from './flux.js';
import { admitImg2Img } from './host-bytes.js';
import {
  type DefaultsFamily,
  type Img2ImgLatent,
  type Img2ImgProgress,
  type Img2ImgRequest,
  type Img2ImgRequestInput,
  type Img2ImgResult,
  type Img2ImgStage,
  type Img2ImgStageReport,
  SCHEDULER_CLASS_OF,
  type SchedulerName,
  withDefaults,
} from './img2img-types.js';
import { type Img2ImgUpstreamDeps, img2imgUpstreamViews, runImg2ImgUpstream } from './img2img-upstream.js';
import { applyScaling, encodeLatent, readLatent, reverseScaling, sha256 } from './latent-codec.js';
import type { PromptConditioning, PromptEncoder } from './prompt-encoding.js';

/** One denoising step's network call, guidance applied: the loop's latent and the scheduler's timestep. */
export type StepNetwork = (input: Float32Array, timestep: number) => Promise<Float32Array>;

/** What a family (SD / SDXL / LCM, Flux) gives the shared stage flow. */
export interface DenoiserFamily {
  /** Classifier-free guidance: the network's batch is two (planning counts it). */
  guidance: boolean;
  /** The loop's latent shape: the NCHW latent, or Flux's packed [1, tokens, 4C]; also the returned latent's. */
  loopShape: number[];
  /** The noised NCHW start latent in the loop's layout, and the loop's result back in NCHW for the decoder. */
  toLoop(latent: Float32Array): Float32Array;
  fromLoop(latent: Float32Array): Float32Array;
  /** TEXT_ENCODE: encodes the prompt(s) and gives the step network conditioned on them. */
  condition(): Promise<StepNetwork>;
}

/** Standard normal draws in the generator's order (torch.randn with a seeded CPU generator). */
export interface NoiseSource {
  randn(shape: readonly number[]): Float32Array;
}

export interface Img2ImgDeps extends PipelineDeps, Img2ImgUpstreamDeps {
  prompts: PromptEncoder;
  /** Where random draws come from for a seed; default the torch-compatible generator (tests inject fixture noise). */
  noiseFor?: (seed: bigint) => NoiseSource;
}

export interface Img2ImgHooks {
  signal?: AbortSignal;
  /** A stage's plan: once planned, again when it runs (failover, upstream). */
  onRouted?: (stage: Img2ImgStage, plan: AnyPlan) => void;
  onQueued?: (stage: Img2ImgStage, position: number) => void;
  /** One event per tile of the VAE stages, per text encoder run, and exactly one per denoising network call. */
  onProgress?: (progress: Img2ImgProgress) => void;
  /** Each denoising step's tensors (what the network saw and gave, the latent after it), for previews. */
  onDenoiseStep?: (progress: DenoiseProgress) => void;
}

/** A pipeline model as the router plans its TEXT_ENCODE and DENOISE stages: with its networks' files. */
export function stageModelOf(model: ModelDefinition) {
  return {
    id: model.id,
    family: model.family,
    ...(model.diffusion ? { networks: stageNetworks(model, model.diffusion) } : {}),
  };
}

function stageNetworks(model: ModelDefinition, diffusion: DiffusionComponents): PipelineNetworks {
  const file = ({ path, bytes, config }: PipelineNetwork) => ({ path, bytes, ...(config ? { config } : {}) });
  const sample = diffusion.denoiser.io.inputs.find((i) => i.name === 'sample' || i.name === 'hidden_states');
  return {
    textEncoders: diffusion.textEncoders.map(file),
    unet: file(diffusion.denoiser),
    dtype: sample?.type === 'float16' ? 'float16' : 'float32',
    downscaleFactor: model.downscaleFactor,
  };
}

const SCHEDULER_NAME_OF = Object.fromEntries(
  Object.entries(SCHEDULER_CLASS_OF).map(([name, className]) => [className, name]),
) as Record<SchedulerClassName, SchedulerName>;

/** The scheduler class a request runs: its choice, or the folder's own (refused when the gateway lacks it). */
export function schedulerClassFor(
  model: ModelDefinition,
  diffusion: DiffusionComponents,
  chosen: SchedulerName | null,
) {
  const className: SchedulerClassName = chosen
    ? SCHEDULER_CLASS_OF[chosen]
    : (() => {
        try {
          return configClassName(diffusion.scheduler, `${model.id}/scheduler/scheduler_config.json`);
        } catch {
          throw new GatewayError(
            'UNSUPPORTED_SCHEDULER',
            `model "${model.id}" names scheduler ${diffusion.schedulerClass}, which this gateway does not implement; ` +
              `pick one with \`scheduler\`: ${Object.keys(SCHEDULER_CLASS_OF).join(', ')}`,
            { scheduler: diffusion.schedulerClass, supported: Object.keys(SCHEDULER_CLASS_OF) },
          );
        }
      })();
  const flowModel = diffusion.kind === 'flux';
  if ((className === 'FlowMatchEulerDiscreteScheduler') !== flowModel) {
    throw new GatewayError(
      'UNSUPPORTED_SCHEDULER',
      flowModel
        ? `model "${model.id}" is a flow-matching model; it runs only FLOW_MATCH_EULER`
        : `FLOW_MATCH_EULER is for flow-matching models; "${model.id}" takes ` +
            `${Object.keys(SCHEDULER_CLASS_OF)
              .filter((n) => n !== 'FLOW_MATCH_EULER')
              .join(', ')}`,
      { scheduler: chosen ?? diffusion.schedulerClass },
    );
  }
  return className;
}

interface Prepared {
  model: ModelDefinition;
  diffusion: DiffusionComponents;
  scheduler: Scheduler;
  schedulerName: SchedulerName;
  timesteps: number[];
  plan: Img2ImgPlan;
  family: DenoiserFamily;
  seed: bigint;
  width: number;
  height: number;
  /** The clean latent's NCHW shape (what ENCODE gives, or the init latent's). */
  latentDims: Nchw['dims'];
  /** Planar pixels in [-1, 1], or the given init latent. */
  input: { kind: 'pixels'; pixels: Nchw } | { kind: 'latent'; latent: Nchw };
}

/** Checks everything that does not need a network: model, scheduler, steps and strength, the image or latent. */
export async function prepareImg2Img(
  deps: Img2ImgDeps,
  model: ModelDefinition,
  request: Img2ImgRequest,
): Promise<Prepared> {
  const diffusion = model.diffusion;
  if (!diffusion || !model.encoder || !model.decoder)
    throw new GatewayError('UNSUPPORTED_OPERATION', `model "${model.id}" has no local img2img pipeline`, {
      model: model.id,
    });
  const flux = diffusion.kind === 'flux';
  if (!(request.guidanceScale >= 0) || !Number.isFinite(request.guidanceScale))
    throw new GatewayError('BAD_REQUEST', `guidanceScale must be a finite number >= 0; got ${request.guidanceScale}`);
  if (flux && request.negativePrompt !== null)
    throw new GatewayError(
      'BAD_REQUEST',
      `model "${model.id}" is a Flux pipeline, which takes no negativePrompt (its guidance is embedded in the ` +
        'transformer; guidanceScale sets it): leave negativePrompt out',
      { field: 'negativePrompt', model: model.id },
    );
  const className = schedulerClassFor(model, diffusion, request.scheduler);
  const scheduler = createScheduler(diffusion.scheduler, className, `${model.id}/scheduler/scheduler_config.json`);

  let input: Prepared['input'];
  let width: number;
  let height: number;
  const factor = model.downscaleFactor;
  if (request.latent) {
    const latent = readLatent(request.latent, model, deps.config.limits.maxLatentBytes);
    if (latent.dims[0] !== 1)
      throw new GatewayError('LATENT_SHAPE_MISMATCH', `img2img takes one latent; got a batch of ${latent.dims[0]}`);
    if (flux && (latent.dims[2] % 2 !== 0 || latent.dims[3] % 2 !== 0))
      throw new GatewayError(
        'LATENT_SHAPE_MISMATCH',
        `a Flux latent is packed in 2x2 patches: its height and width must be even; got [${latent.dims}]`,
        { shape: latent.dims },
      );
    input = { kind: 'latent', latent };
    [height, width] = [latent.dims[2] * factor, latent.dims[3] * factor];
  } else if (request.image) {
    // FluxImg2ImgPipeline's image processor sizes images to multiples of vae_scale_factor * 2 (packing).
    const image = await prepareImage(deps, flux ? { ...model, downscaleFactor: factor * 2 } : model, request.image);
    input = { kind: 'pixels', pixels: image.pixels };
    ({ width, height } = image);
  } else {
    throw new GatewayError('BAD_REQUEST', 'img2img needs an image or an init latent');
  }
  const latentDims: Nchw['dims'] = [1, model.latentChannels, height / factor, width / factor];
  const plan = planImg2Img(scheduler, {
    steps: request.steps,
    strength: request.strength,
    mu: flux ? fluxMu(scheduler, height, width, factor) : undefined,
  });
  const family = flux
    ? fluxDenoiser(deps, {
        modelId: model.id,
        diffusion,
        prompt: request.prompt,
        guidanceScale: request.guidanceScale,
        latentDims,
      })
    : sdDenoiser(deps, model, diffusion, request, latentDims);
  return {
    model,
    diffusion,
    scheduler,
    schedulerName: SCHEDULER_NAME_OF[className],
    timesteps: plan.timesteps,
    plan,
    family,
    seed: request.seed ?? drawSeed(),
    width,
    height,
    latentDims,
    input,
  };
}

/** Which diffusers pipeline's call defaults apply to `model` (SD's for a model served only upstream). */
export function defaultsFamilyOf(model: ModelDefinition): DefaultsFamily {
  const diffusion = model.diffusion;
  if (!diffusion) return 'sd';
  if (diffusion.kind !== 'sd') return diffusion.kind;
  return diffusion.denoiser.timeCondProjDim !== null ? 'lcm' : 'sd';
}

export async function img2img(
  deps: Img2ImgDeps,
  input: Img2ImgRequestInput,
  hooks: Img2ImgHooks = {},
): Promise<Img2ImgResult> {
  const started = performance.now();
  const model = deps.registry.require(input.model, 'img2img');
  const request = withDefaults(input, defaultsFamilyOf(model));
  const upstream = img2imgUpstreamViews(deps, model, request);
  if (!model.diffusion) return img2imgOnlyUpstream(deps, model, request, hooks, upstream);
  // Host memory (the input, its pixels, the loop's tensors, the answer) is counted from acceptance; the
  // image is decoded once it is admitted. A job's admission was taken when it was submitted.
  const admission = input.admission ?? (await admitImg2Img(deps, model, request, 0));
  try {
    return await admission.work(() => img2imgAdmitted(deps, model, request, upstream, hooks, started), hooks.signal);
  } finally {
    if (!input.admission) admission.release();
  }
}

async function img2imgAdmitted(
  deps: Img2ImgDeps,
  model: ModelDefinition,
  request: Img2ImgRequest,
  upstream: { usable: UpstreamView[]; refused: string[] },
  hooks: Img2ImgHooks,
  started: number,
): Promise<Img2ImgResult> {
  const prepared = await prepareImg2Img(deps, model, request);
  const { scheduler, plan, family, width, height, latentDims } = prepared;
  const { guidance } = family;
  const router = deps.router;

  // Every stage planned before any runs: one that fits nowhere refuses the request now.
  const stageModel = stageModelOf(model);
  const plans = {
    TEXT_ENCODE: router.planStage(stageModel, 'textEncode', { width, height, batch: 1, steps: 1, guidance }),
    ENCODE: prepared.input.kind === 'pixels' ? router.plan(model, 'encode', width, height, 1) : null,
    DENOISE: router.planStage(
      stageModel,
      'denoise',
      { width, height, batch: 1, steps: plan.timesteps.length, guidance },
      { upstreams: upstream.usable },
    ),
    DECODE: router.plan(model, 'decode', width, height, 1),
  };
  // An upstream expected sooner than the local UNet (or the only place it fits) takes the whole request.
  if (plans.DENOISE.route === 'UPSTREAM')
    return runImg2ImgUpstream(deps, model, request, plans.DENOISE, {
      signal: hooks.signal,
      onRouted: (p) => hooks.onRouted?.('DENOISE', p),
      timesteps: plan.timesteps,
      scheduler: prepared.schedulerName,
    });
  for (const [stage, stagePlan] of Object.entries(plans)) {
    if (stagePlan?.route === 'REJECT')
      throw new GatewayError(
        'DOES_NOT_FIT',
        `img2img stage ${stage} fits nowhere: ${stagePlan.reason}${refusals(upstream.refused)}`,
        { stage, model: model.id, width, height },
      );
  }

  const noise = deps.noiseFor?.(prepared.seed) ?? new TorchGenerator(prepared.seed);
  const stages: Img2ImgStageReport[] = [];
  const stageHooks = (stage: Img2ImgStage): ExecuteHooks => ({
    signal: hooks.signal,
    onRouted: (p) => hooks.onRouted?.(stage, p),
    onQueued: (position) => hooks.onQueued?.(stage, position),
    onProgress: (done, total) => hooks.onProgress?.({ stage, step: done, total, timestep: null }),
  });

  // TEXT_ENCODE
  const textPlan = plans.TEXT_ENCODE;
  hooks.onRouted?.('TEXT_ENCODE', textPlan);
  let stageStart = performance.now();
  const { result: network } = await router.local.hold(textPlan, stageHooks('TEXT_ENCODE'), async () => {
    const conditioned = await family.condition();
    hooks.onProgress?.({ stage: 'TEXT_ENCODE', step: 1, total: 1, timestep: null });
    return conditioned;
  });
  stages.push({ stage: 'TEXT_ENCODE', plan: textPlan, seconds: (performance.now() - stageStart) / 1000 });

  // ENCODE: the clean latent x0 in the UNet's space.
  const scaling = { scalingFactor: model.family.scalingFactor, shiftFactor: model.family.shiftFactor };
  let x0: Nchw;
  if (prepared.input.kind === 'latent') {
    x0 = prepared.input.latent;
  } else {
    stageStart = performance.now();
    const ran = await router.run(model, plans.ENCODE!, prepared.input.pixels, stageHooks('ENCODE'));
    const moments = ran.output;
    const channels = model.latentChannels;
    let sample: Float32Array;
    let dims: Nchw['dims'];
    if (moments.dims[1] === 2 * channels) {
      // retrieve_latents(sample_mode="sample"): mean + std * randn, the generator's first draw.
      const distribution = latentDistribution(moments.data, moments.dims);
      sample = sampleLatent(distribution, noise);
      dims = distribution.dims;
    } else {
      // An encoder without log-variance (latent_sample export, or an upstream encode) gives the latent itself.
      sample = moments.data;
      dims = moments.dims;
    }
    if (dims.join() !== latentDims.join())
      throw new GatewayError(
        'LATENT_SHAPE_MISMATCH',
        `the VAE encoder gave a [${dims}] latent for a ${width}x${height} image; expected [${latentDims}]`,
      );
    x0 = { data: applyScaling(sample, scaling), dims };
    stages.push({ stage: 'ENCODE', plan: ran.plan, seconds: (performance.now() - stageStart) / 1000 });
  }
  throwIfCancelled(hooks.signal);

  // DENOISE: the start noise has the NCHW latent's shape (Flux packs after noising, as diffusers does).
  const startNoise = noise.randn(latentDims);
  const start = family.toLoop(startLatent(scheduler, plan, x0.data, startNoise));
  const denoisePlan = plans.DENOISE;
  hooks.onRouted?.('DENOISE', denoisePlan);
  stageStart = performance.now();
  const { result: final } = await router.local.hold(denoisePlan, stageHooks('DENOISE'), (held) =>
    denoise({
      scheduler,
      plan,
      latent: start,
      model: network,
      stepNoise: () => noise.randn(family.loopShape),
      signal: hooks.signal,
      onStep: (progress) => {
        held.stepDone();
        hooks.onDenoiseStep?.(progress);
        hooks.onProgress?.({
          stage: 'DENOISE',
          step: progress.step,
          total: progress.total,
          timestep: progress.timestep,
        });
      },
    }),
  );
  stages.push({ stage: 'DENOISE', plan: denoisePlan, seconds: (performance.now() - stageStart) / 1000 });

  // DECODE
  stageStart = performance.now();
  const decoded = await router.run(
    model,
    plans.DECODE,
    { data: reverseScaling(family.fromLoop(final), scaling), dims: latentDims },
    stageHooks('DECODE'),
  );
  stages.push({ stage: 'DECODE', plan: decoded.plan, seconds: (performance.now() - stageStart) / 1000 });
  const images = await deliverImages(deps, decoded.output, model.family.inputRange, request.format, request.delivery);

  // diffusers' output_type="latent": the loop's latent as it is (Flux: still packed).
  let latent: Img2ImgLatent | null = null;
  if (request.returnLatent) {
    const bytes = encodeLatent({ data: final, dims: latentDims }, request.dtype);
    const shape = [...family.loopShape];
    const delivered = await deliver(
      deps,
      request.delivery,
      { kind: 'latent', bytes, shape, dtype: request.dtype, contentType: 'application/octet-stream' },
      'latents',
    );
    latent = {
      ...delivered,
      shape,
      dtype: request.dtype,
      sha256: sha256(bytes),
      byteLength: bytes.length,
    };
  }
  return {
    model: model.id,
    images,
    latent,
    seed: prepared.seed,
    scheduler: prepared.schedulerName,
    timesteps: plan.timesteps,
    stages,
    width,
    height,
    seconds: (performance.now() - started) / 1000,
  };
}

function refusals(refused: string[]): string {
  return refused.length > 0 ? `; upstream endpoints that cannot take it: ${refused.join('; ')}` : '';
}

/** A model served only by img2img endpoints: planned among them, run on the best. */
async function img2imgOnlyUpstream(
  deps: Img2ImgDeps,
  model: ModelDefinition,
  request: Img2ImgRequest,
  hooks: Img2ImgHooks,
  upstream: { usable: UpstreamView[]; refused: string[] },
): Promise<Img2ImgResult> {
  if (!request.image)
    throw new GatewayError('BAD_REQUEST', `model "${model.id}" runs only upstream, which takes an image, not a latent`);
  if (upstream.usable.length === 0)
    throw new GatewayError(
      'UPSTREAM_FAILED',
      `model "${model.id}" runs img2img only on upstream endpoints, and none can take this request` +
        refusals(upstream.refused),
      { model: model.id, refused: upstream.refused },
    );
  const image = await readImage(request.image, deps.config.limits);
  const { width, height } = sizeForFactor(image.width, image.height, model.downscaleFactor);
  const plan = deps.router.planStage(
    { id: model.id, family: model.family },
    'denoise',
    { width, height, batch: 1, steps: Math.max(1, Math.floor(request.steps * request.strength)), guidance: false },
    { upstreams: upstream.usable, local: false },
  );
  if (plan.route !== 'UPSTREAM')
    throw new GatewayError('UPSTREAM_FAILED', `${plan.reason}${refusals(upstream.refused)}`, { model: model.id });
  return runImg2ImgUpstream(deps, model, request, plan, {
    signal: hooks.signal,
    onRouted: (p) => hooks.onRouted?.('DENOISE', p),
    timesteps: [],
    scheduler: request.scheduler,
  });
}

/** SD 1.x / 2.x, SDXL and LCM: NCHW latents, CLIP conditioning, the UNet call. */
function sdDenoiser(
  deps: Img2ImgDeps,
  model: ModelDefinition,
  diffusion: DiffusionComponents,
  request: Img2ImgRequest,
  latentDims: Nchw['dims'],
): DenoiserFamily {
  const guidance = usesClassifierFreeGuidance(request.guidanceScale, diffusion.denoiser.timeCondProjDim);
  return {
    guidance,
    loopShape: [...latentDims],
    toLoop: (latent) => latent,
    fromLoop: (latent) => latent,
    async condition() {
      const conditioning = await deps.prompts.encode(model.id, diffusion, {
        prompt: request.prompt,
        negativePrompt: request.negativePrompt,
        guidance,
      });
      return unetCaller(deps, model, diffusion, request, guidance, conditioning, latentDims);
    },
  };
}

/**
 * The network call of one denoising step, with guidance: the UNet runs once on [negative, prompt]
 * (the latent twice), and the halves combine as uncond + g * (cond - uncond). Inputs the folder's
 * UNet declares beyond sample / timestep / encoder_hidden_states come from its conventions: SDXL's
 * text_embeds and time_ids, an LCM UNet's guidance embedding.
 */
export function unetCaller(
  deps: Img2ImgDeps,
  model: ModelDefinition,
  diffusion: DiffusionComponents,
  request: Img2ImgRequest,
  guidance: boolean,
  conditioning: PromptConditioning,
  latentDims: Nchw['dims'],
): StepNetwork {
  const [, , h, w] = latentDims;
  const [height, width] = [h * model.downscaleFactor, w * model.downscaleFactor];
  const batch = guidance ? 2 : 1;
  const feeds: Record<string, FeedValue> = { encoder_hidden_states: conditioning.hiddenStates };
  if (conditioning.pooled) {
    feeds.text_embeds = conditioning.pooled;
    const { addTimeIds, addNegTimeIds } = sdxlTimeIds({
      originalSize: [height, width],
      targetSize: [height, width],
      requiresAestheticsScore: diffusion.requiresAestheticsScore,
    });
    const rows = guidance ? [...addNegTimeIds, ...addTimeIds] : addTimeIds;
    feeds.time_ids = { data: Float32Array.from(rows), dims: [batch, addTimeIds.length] };
  }
  if (diffusion.denoiser.timeCondProjDim !== null) {
    feeds.timestep_cond = {
      data: guidanceScaleEmbedding(request.guidanceScale, diffusion.denoiser.timeCondProjDim),
      dims: [1, diffusion.denoiser.timeCondProjDim],
    };
  }
  // The same for the whole loop: cast once and kept in the runtime's worker, not copied every step.
  const constants = Object.fromEntries(
    Object.entries(feeds).map(([name, { data, dims }]) => [name, { data, dims, use: 'constant' as const }]),
  );
  const channels = latentDims[1];
  const size = channels * h * w;
  return async (input, timestep) => {
    const sample = new Float32Array(batch * size);
    for (let b = 0; b < batch; b++) sample.set(input, b * size);
    const out = await runDeclared(
      deps.router.local.executor.runtime,
      `${model.id}/${diffusion.denoiser.kind}`,
      diffusion.denoiser.path,
      {
        ...constants,
        sample: { data: sample, dims: [batch, channels, h, w], use: 'once' },
        timestep: { data: Float32Array.of(timestep), dims: [1] },
      },
      ['out_sample'],
      batch,
    );
    const prediction = out.out_sample.data;
    if (!guidance) return prediction;
    return classifierFreeGuidance(prediction.subarray(0, size), prediction.subarray(size), request.guidanceScale);
  };
}
