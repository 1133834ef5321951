/**
 * The TEXT_ENCODE stage: prompts → token ids (the folder's own tokenizers) → the text encoders →
 * what the UNet is conditioned on, as diffusers' `encode_prompt` builds it. With classifier-free
 * guidance the batch is [negative, prompt], in that order.
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

export interface PromptRequest {
  prompt: string;
  negativePrompt: string | null;
  guidance: boolean;
}

/** Tokenizers are read once per folder. */
const tokenizers = new Map<string, PromptTokenizer>();

function tokenizerFor(part: TextEncoderPart): PromptTokenizer {
  let tokenizer = tokenizers.get(part.tokenizerDir);
  if (!tokenizer) {
    tokenizer = loadPromptTokenizer(part.tokenizerDir);
    tokenizers.set(part.tokenizerDir, tokenizer);
  }
  return tokenizer;
}

/** Token ids of `text`, or PROMPT_TOO_LONG naming the limit (diffusers would cut the prompt and only warn). */
export function tokenize(part: TextEncoderPart, text: string, field: 'prompt' | 'negativePrompt'): Int32Array {
  const tokenizer = tokenizerFor(part);
  const { ids, tokens, truncated } = tokenizer.encode(text);
  if (truncated) {
    throw new GatewayError(
      'PROMPT_TOO_LONG',
      `${field} is ${tokens} tokens with the start and end tokens; this model's text encoder reads at most ` +
        `${tokenizer.maxLength}: shorten it`,
      { field, tokens, maxTokens: tokenizer.maxLength },
    );
  }
  return ids;
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
        `${modelId}/text_encoder${index === 0 ? '' : `_${index + 1}`}`,
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
}
