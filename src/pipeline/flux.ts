/**
 * The Flux parts of img2img, as diffusers' FluxImg2ImgPipeline runs them: `mu` from the packed sequence
 * length (dynamic shifting), the start latent packed into 2x2 patches ([1, (h/2)(w/2), 4C]), the prompt as
 * CLIP's pooled output and T5's hidden states, and the transformer called with `timestep` = t / 1000,
 * positional ids (`_prepare_latent_image_ids`, zero text ids) and, for guidance-distilled models (dev),
 * `guidance` = guidance_scale: one batch row, no classifier-free guidance.
 */
import {
  calculateShift,
  FlowMatchEulerDiscreteScheduler,
  fluxImageSeqLen,
  fluxTransformerTimestep,
} from '../diffusion/schedulers/flow-match.js';
import type { Scheduler } from '../diffusion/schedulers/types.js';
import { type FeedValue, runDeclared } from '../gpu/signature-feeds.js';
import type { Nchw } from '../gpu/tensor.js';
import type { DiffusionComponents } from '../models/pipeline-folder.js';
import { packLatents, unpackLatents } from '../protocol/packing.js';
import type { DenoiserFamily, Img2ImgDeps, StepNetwork } from './img2img.js';
import type { FluxConditioning } from './prompt-encoding.js';

/** calculate_shift(image_seq_len) when the scheduler shifts dynamically (dev); undefined for a static shift. */
export function fluxMu(scheduler: Scheduler, height: number, width: number, downscaleFactor: number) {
  if (!(scheduler instanceof FlowMatchEulerDiscreteScheduler) || !scheduler.config.use_dynamic_shifting)
    return undefined;
  return calculateShift(fluxImageSeqLen(height, width, downscaleFactor), scheduler.config);
}

/**
 * diffusers' `_prepare_latent_image_ids(height/2, width/2)`: per token (row i, column j) the triple (0, i, j).
 * Rank 2 [tokens, 3] as diffusers >= 0.31 exports declare it, rank 3 [batch, tokens, 3] before.
 */
export function latentImageIds(latentHeight: number, latentWidth: number, rank: number, batch = 1): FeedValue {
  const [rows, columns] = [latentHeight / 2, latentWidth / 2];
  const ids = new Float32Array(rows * columns * 3);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < columns; j++) {
      ids[(i * columns + j) * 3 + 1] = i;
      ids[(i * columns + j) * 3 + 2] = j;
    }
  }
  return batched(ids, [rows * columns, 3], rank, batch);
}

/** diffusers' `text_ids`: zeros [sequence, 3] (or [batch, sequence, 3] for older exports). */
export function textIds(sequence: number, rank: number, batch = 1): FeedValue {
  return batched(new Float32Array(sequence * 3), [sequence, 3], rank, batch);
}

function batched(data: Float32Array, dims: number[], rank: number, batch: number): FeedValue {
  if (rank === dims.length) return { data, dims };
  if (rank !== dims.length + 1) throw new RangeError(`ids of rank ${dims.length} or ${dims.length + 1}; got ${rank}`);
  const out = new Float32Array(batch * data.length);
  for (let b = 0; b < batch; b++) out.set(data, b * data.length);
  return { data: out, dims: [batch, ...dims] };
}

export interface FluxDenoiserOptions {
  modelId: string;
  diffusion: DiffusionComponents;
  prompt: string;
  guidanceScale: number;
  /** The unpacked latent [1, C, h, w] the loop starts from. */
  latentDims: Nchw['dims'];
}

/** Flux in the shared img2img stage flow: packed latents, T5 + CLIP conditioning, the transformer call. */
export function fluxDenoiser(deps: Img2ImgDeps, options: FluxDenoiserOptions): DenoiserFamily {
  const { modelId, diffusion, latentDims } = options;
  const [batch, channels, h, w] = latentDims;
  const packedShape: [number, number, number] = [batch, (h / 2) * (w / 2), channels * 4];
  const declaredRank = (name: string) => diffusion.denoiser.io.inputs.find((i) => i.name === name)?.shape.length ?? 2;
  return {
    guidance: false,
    loopShape: packedShape,
    toLoop: (latent) => packLatents(latent, latentDims).data,
    // unpackLatents derives the latent side from the image size; this is that size for the latent we packed.
    fromLoop: (latent) => unpackLatents(latent, packedShape, h * 8, w * 8, 8).data,
    async condition(): Promise<StepNetwork> {
      const conditioning = await deps.prompts.encodeFlux(modelId, diffusion, options.prompt);
      return transformerCaller(deps, options, conditioning, packedShape, declaredRank);
    },
  };
}

function transformerCaller(
  deps: Img2ImgDeps,
  { modelId, diffusion, guidanceScale, latentDims }: FluxDenoiserOptions,
  conditioning: FluxConditioning,
  packedShape: [number, number, number],
  declaredRank: (name: string) => number,
): StepNetwork {
  const sequence = conditioning.hiddenStates.dims[1];
  const feeds: Record<string, FeedValue> = {
    encoder_hidden_states: conditioning.hiddenStates,
    pooled_projections: conditioning.pooled,
    img_ids: latentImageIds(latentDims[2], latentDims[3], declaredRank('img_ids')),
    txt_ids: textIds(sequence, declaredRank('txt_ids')),
    // Sent only when the export declares it (guidance_embeds: dev yes, schnell no), as diffusers does.
    guidance: { data: Float32Array.of(guidanceScale), dims: [1] },
  };
  return async (input, timestep) => {
    const out = await runDeclared(
      deps.router.local.executor.runtime,
      `${modelId}/transformer`,
      diffusion.denoiser.path,
      {
        ...feeds,
        hidden_states: { data: input, dims: [...packedShape] },
        timestep: { data: Float32Array.of(fluxTransformerTimestep(timestep)), dims: [1] },
      },
      ['out_hidden_states'],
      1,
    );
    return out.out_hidden_states.data;
  };
}
