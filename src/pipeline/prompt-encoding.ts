/**
 * The TEXT_ENCODE stage: prompts → token ids (the folder's own tokenizers) → the text encoders →
 * what the UNet is conditioned on, as diffusers' `encode_prompt` builds it. With classifier-free
 * guidance the batch is [negative, prompt], in that order.
 */
import { GatewayError } from '../errors.js';
import { type PromptTokenizer, loadPromptTokenizer } from '../diffusion/text/tokenizer.js';
import type { OnnxRuntime } from '../gpu/onnx-runtime.js';
import { runDeclared } from '../gpu/signature-feeds.js';
import type { DiffusionComponents, TextEncoderPart } from '../models/pipeline-folder.js';

export interface FloatTensor {
  data: Float32Array;
  dims: number[];
}

export interface PromptConditioning {
  /** `encoder_hidden_states`: [batch, sequence, hidden]; batch 2 under CFG ([negative, prompt]). */
  hiddenStates: FloatTensor;
  /** SDXL's pooled `text_embeds` [batch, 1280]; null for SD. */
  pooled: FloatTensor | null;
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

/** SDXL takes the penultimate hidden state: `hidden_states.{L-1}` of outputs hidden_states.0 .. L. */
export function penultimateHiddenState(outputNames: readonly string[]): string {
  const layers = outputNames
    .map((name) => /^hidden_states\.(\d+)$/.exec(name)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
  if (layers.length < 2) throw new Error(`the text encoder exports no hidden_states.N outputs (${outputNames})`);
  return `hidden_states.${Math.max(...layers) - 1}`;
}

/** Rows of [1, ...] tensors stacked into one batch. */
export function stackRows(rows: FloatTensor[]): FloatTensor {
  const size = rows[0].data.length;
  const data = new Float32Array(size * rows.length);
  rows.forEach((row, i) => {
    data.set(row.data, i * size);
  });
  return { data, dims: [rows.length, ...rows[0].dims.slice(1)] };
}

/** Concatenates [batch, sequence, a] and [batch, sequence, b] on the last axis. */
export function concatFeatures(a: FloatTensor, b: FloatTensor): FloatTensor {
  const [batch, sequence, widthA] = a.dims;
  const widthB = b.dims[2];
  const out = new Float32Array(batch * sequence * (widthA + widthB));
  for (let row = 0; row < batch * sequence; row++) {
    out.set(a.data.subarray(row * widthA, (row + 1) * widthA), row * (widthA + widthB));
    out.set(b.data.subarray(row * widthB, (row + 1) * widthB), row * (widthA + widthB) + widthA);
  }
  return { data: out, dims: [batch, sequence, widthA + widthB] };
}

function zerosLike(t: FloatTensor): FloatTensor {
  return { data: new Float32Array(t.data.length), dims: [...t.dims] };
}

export class PromptEncoder {
  constructor(private readonly runtime: Pick<OnnxRuntime, 'describe' | 'runTensors'>) {}

  async encode(modelId: string, diffusion: DiffusionComponents, request: PromptRequest): Promise<PromptConditioning> {
    const [first, second] = diffusion.textEncoders;
    const sdxl = diffusion.kind === 'sdxl';
    // SDXL with force_zeros_for_empty_prompt: no negative prompt means zero conditioning, not the empty prompt's.
    const zeroNegative = sdxl && diffusion.forceZerosForEmptyPrompt && !request.negativePrompt;
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

    let conditioning: PromptConditioning;
    if (!sdxl) {
      const out = await encode(first, 0, ['last_hidden_state']);
      conditioning = { hiddenStates: out.last_hidden_state, pooled: null };
    } else {
      const firstLayer = penultimateHiddenState(first.io.outputs.map((o) => o.name));
      const secondLayer = penultimateHiddenState(second.io.outputs.map((o) => o.name));
      const a = await encode(first, 0, [firstLayer]);
      const b = await encode(second, 1, [secondLayer, 'text_embeds']);
      conditioning = { hiddenStates: concatFeatures(a[firstLayer], b[secondLayer]), pooled: b.text_embeds };
    }
    if (!zeroNegative || !request.guidance) return conditioning;
    return {
      hiddenStates: stackRows([zerosLike(conditioning.hiddenStates), conditioning.hiddenStates]),
      pooled: conditioning.pooled && stackRows([zerosLike(conditioning.pooled), conditioning.pooled]),
    };
  }
}
