/**
 * The TEXT_ENCODE stage: prompts → token ids (the folder's own tokenizers) → the text encoders →
 * what the UNet is conditioned on, as diffusers' `encode_prompt` builds it. With classifier-free
 * guidance the batch is [negative, prompt], in that order. Flux: the CLIP encoder's pooled output and
 * the T5 encoder's last hidden state, one prompt (its guidance is embedded, not a second batch row).
 */

import {
  cfgBatch,
  type Float32Tensor,
  penultimateHiddenStateName,
  sdPromptEmbeds,
  sdxlPromptEmbeds,
  sdxlZeroNegative,
  zeroesNegativePrompt,
} from '../diffusion/text/prompt-embeddings.js';
import { loadPromptTokenizer, type PromptTokenizer } from '../diffusion/text/tokenizer.js';
import { GatewayError } from '../errors.js';
import type { OnnxRuntime } from '../gpu/onnx-runtime.js';
import { runDeclared } from '../gpu/signature-feeds.js';
import type { DiffusionComponents, TextEncoderPart } from '../models/pipeline-folder.js';

export interface PromptConditioning {
  /** `encoder_hidden_states`: [batch, sequence, hidden]; batch 2 under CFG ([negative, prompt]). */
  hiddenStates: Float32Tensor;
  /** SDXL's pooled `text_embeds` [batch, 1280]; null for SD. */
  pooled: Float32Tensor | null;
}

/** What a Flux transformer is conditioned on (FluxPipeline.encode_prompt). */
export interface FluxConditioning {
  /** `encoder_hidden_states`: text_encoder_2 (T5)'s last_hidden_state [1, max_sequence_length, 4096]. */
  hiddenStates: Float32Tensor;
  /** `pooled_projections`: text_encoder (CLIP)'s pooler_output [1, 768]. */
  pooled: Float32Tensor;
}

/** FluxPipeline's default `max_sequence_length`: T5 ids are padded (and limited) to it. */
export const FLUX_MAX_SEQUENCE_LENGTH = 512;

export interface PromptRequest {
  prompt: string;
  negativePrompt: string | null;
  guidance: boolean;
}

/** Tokenizers are read once per folder (and length). */
const tokenizers = new Map<string, PromptTokenizer>();

function tokenizerFor(part: TextEncoderPart, maxLength?: number): PromptTokenizer {
  const key = `${part.tokenizerDir}#${maxLength ?? ''}`;
  let tokenizer = tokenizers.get(key);
  if (!tokenizer) {
    tokenizer = loadPromptTokenizer(part.tokenizerDir, { maxLength });
    tokenizers.set(key, tokenizer);
  }
  return tokenizer;
}

/** Token ids of `text`, or PROMPT_TOO_LONG naming the limit (diffusers would cut the prompt and only warn). */
export function tokenize(
  part: TextEncoderPart,
  text: string,
  field: 'prompt' | 'negativePrompt',
  maxLength?: number,
): Int32Array {
  const tokenizer = tokenizerFor(part, maxLength);
  const { ids, tokens, truncated } = tokenizer.encode(text);
  if (truncated) {
    throw new GatewayError(
      'PROMPT_TOO_LONG',
      `${field} is ${tokens} tokens with its special tokens; this model's text encoder reads at most ` +
        `${tokenizer.maxLength}: shorten it`,
      { field, tokens, maxTokens: tokenizer.maxLength },
    );
  }
  return ids;
}

function encoderKey(modelId: string, index: number): string {
  return `${modelId}/text_encoder${index === 0 ? '' : `_${index + 1}`}`;
}

export class PromptEncoder {
  constructor(private readonly runtime: Pick<OnnxRuntime, 'describe' | 'runTensors'>) {}

  async encode(modelId: string, diffusion: DiffusionComponents, request: PromptRequest): Promise<PromptConditioning> {
    const [first] = diffusion.textEncoders;
    const sdxl = diffusion.kind === 'sdxl';
    // SDXL with force_zeros_for_empty_prompt: no negative prompt means zero conditioning, not the empty prompt's.
    const zeroNegative = sdxl && zeroesNegativePrompt(request.negativePrompt, diffusion.forceZerosForEmptyPrompt);
    const texts = request.guidance && !zeroNegative ? [request.negativePrompt ?? '', request.prompt] : [request.prompt];
    const fields = texts.length === 2 ? (['negativePrompt', 'prompt'] as const) : (['prompt'] as const);

    const encode = async (part: TextEncoderPart, index: number, outputs: string[]) => {
      const rows = texts.map((text, i) => tokenize(part, text, fields[i]));
      const sequence = rows[0].length;
      const ids = new Int32Array(rows.length * sequence);
      rows.forEach((row, i) => {
        ids.set(row, i * sequence);
      });
      return runDeclared(
        this.runtime,
        encoderKey(modelId, index),
        part.path,
        { input_ids: { data: ids, dims: [rows.length, sequence] } },
        outputs,
        rows.length,
      );
    };

    if (!sdxl) {
      const out = await encode(first, 0, ['last_hidden_state']);
      return { hiddenStates: sdPromptEmbeds(out), pooled: null };
    }
    const layers = diffusion.textEncoders.map((part) => penultimateHiddenStateName(part.io.outputs.map((o) => o.name)));
    const encoders = diffusion.textEncoders.map((part, i) => {
      const pooled = part.io.outputs.some((o) => o.name === 'text_embeds') ? ['text_embeds'] : [];
      return encode(part, i, [layers[i], ...pooled]);
    });
    const embeds = sdxlPromptEmbeds(await Promise.all(encoders), layers);
    if (!zeroNegative || !request.guidance) return { hiddenStates: embeds.promptEmbeds, pooled: embeds.pooled };
    const negative = sdxlZeroNegative(embeds);
    return {
      hiddenStates: cfgBatch(negative.promptEmbeds, embeds.promptEmbeds),
      pooled: cfgBatch(negative.pooled, embeds.pooled),
    };
  }

  /**
   * FluxPipeline.encode_prompt for one prompt (prompt_2 = prompt): `pooler_output` of the CLIP encoder on ids
   * padded to its model_max_length, `last_hidden_state` of the T5 encoder on ids padded to max_sequence_length.
   * CLIP's ids are cut at its length as diffusers cuts them: it only gives the pooled vector, T5 reads the prompt.
   */
  async encodeFlux(
    modelId: string,
    diffusion: DiffusionComponents,
    prompt: string,
    maxSequenceLength = FLUX_MAX_SEQUENCE_LENGTH,
  ): Promise<FluxConditioning> {
    const [clip, t5] = diffusion.textEncoders;
    const run = (part: TextEncoderPart, index: number, ids: Int32Array, output: string) =>
      runDeclared(
        this.runtime,
        encoderKey(modelId, index),
        part.path,
        { input_ids: { data: ids, dims: [1, ids.length] } },
        [output],
        1,
      ).then((outputs) => outputs[output]);
    // Both tokenized before either runs: a refused prompt leaves no run behind.
    const clipIds = tokenizerFor(clip).encode(prompt).ids;
    const t5Ids = tokenize(t5, prompt, 'prompt', maxSequenceLength);
    const [pooled, hiddenStates] = await Promise.all([
      run(clip, 0, clipIds, 'pooler_output'),
      run(t5, 1, t5Ids, 'last_hidden_state'),
    ]);
    return { hiddenStates, pooled };
  }
}
