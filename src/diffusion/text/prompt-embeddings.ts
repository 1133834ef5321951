/**
 * What the UNet takes from the text encoders' outputs, assembled as diffusers' `encode_prompt` does.
 * SD 1.x / 2.x: `encoder_hidden_states` is the text encoder's `last_hidden_state` [1, 77, H].
 * SDXL: each encoder's penultimate hidden state (`hidden_states[-2]`), concatenated on the feature axis
 * in encoder order ([1, 77, 768 + 1280]), and `text_embeds`, the pooled output of the projection encoder
 * (text_encoder_2). With classifier-free guidance the UNet's batch is cat([uncond, cond]).
 */
import type { Tensor } from '../../gpu/tensor.js';

export type Float32Tensor = Extract<Tensor, { type: 'float32' }>;

/** One text-encoder run's outputs by name, as `runTensors` returns them. */
export type EncoderOutputs = Readonly<Record<string, Tensor>>;

export interface SdxlPromptEmbeds {
  /** `prompt_embeds` [1, S, H1 + H2]: the UNet's `encoder_hidden_states`. */
  promptEmbeds: Float32Tensor;
  /** `pooled_prompt_embeds` [1, P]: the UNet's `text_embeds`. */
  pooled: Float32Tensor;
}

/** SD 1.x / 2.x: one prompt's `encoder_hidden_states`, the text encoder's `last_hidden_state` [1, S, H]. */
export function sdPromptEmbeds(outputs: EncoderOutputs): Float32Tensor {
  return output(outputs, 'last_hidden_state', 3);
}

/**
 * The name of diffusers' `hidden_states[-2]` among an encoder's outputs: `hidden_states.{L-1}` where the
 * export has `hidden_states.0` (the embeddings) .. `hidden_states.L` (the last layer).
 */
export function penultimateHiddenStateName(outputNames: readonly string[]): string {
  const layers = outputNames.flatMap((name) => {
    const match = /^hidden_states\.(\d+)$/.exec(name);
    return match ? [Number(match[1])] : [];
  });
  const last = Math.max(...layers);
  if (layers.length < 2 || layers.length !== last + 1)
    throw new Error(
      `a text encoder needs outputs hidden_states.0 .. hidden_states.L (L >= 1) for its penultimate hidden state; ` +
        `it has ${outputNames.join(', ')}`,
    );
  return `hidden_states.${last - 1}`;
}

/**
 * SDXL's `encode_prompt` for one prompt, from the runs of its encoders in order (text_encoder, text_encoder_2;
 * the refiner has text_encoder_2 alone): penultimate hidden states concatenated on features; pooled is the
 * `text_embeds` of the first encoder that has one (diffusers: the first whose output 0 is 2-D).
 */
export function sdxlPromptEmbeds(
  encoders: readonly EncoderOutputs[],
  /** Each encoder's penultimate output name, when the runs returned only the outputs asked for. */
  layers: readonly string[] = encoders.map((outputs) => penultimateHiddenStateName(Object.keys(outputs))),
): SdxlPromptEmbeds {
  const hidden = encoders.map((outputs, i) => output(outputs, layers[i], 3));
  const withPooled = encoders.find((outputs) => 'text_embeds' in outputs);
  if (!withPooled) throw new Error('SDXL needs a text encoder with a text_embeds output (text_encoder_2); none has');
  return { promptEmbeds: concatFeatures(hidden), pooled: output(withPooled, 'text_embeds', 2) };
}

/** diffusers' `zero_out_negative_prompt`: negative_prompt is None (not "") and force_zeros_for_empty_prompt. */
export function zeroesNegativePrompt(negativePrompt: string | null, forceZerosForEmptyPrompt: boolean): boolean {
  return negativePrompt === null && forceZerosForEmptyPrompt;
}

/** SDXL's zeroed negative: `torch.zeros_like` of both the prompt's embeddings and its pooled embeddings. */
export function sdxlZeroNegative(cond: SdxlPromptEmbeds): SdxlPromptEmbeds {
  return { promptEmbeds: zerosLike(cond.promptEmbeds), pooled: zerosLike(cond.pooled) };
}

export function zerosLike(tensor: Float32Tensor): Float32Tensor {
  return { type: 'float32', data: new Float32Array(tensor.data.length), dims: [...tensor.dims] };
}

/** `torch.cat([uncond, cond])` on the batch axis: the CFG batch of any [1, ...] (or [B, ...]) tensor pair. */
export function cfgBatch(uncond: Float32Tensor, cond: Float32Tensor): Float32Tensor {
  if (uncond.dims.length === 0 || uncond.dims.join() !== cond.dims.join())
    throw new RangeError(`cfgBatch: uncond [${uncond.dims}] and cond [${cond.dims}] must have one shape, with a batch`);
  const data = new Float32Array(uncond.data.length + cond.data.length);
  data.set(uncond.data);
  data.set(cond.data, uncond.data.length);
  return { type: 'float32', data, dims: [uncond.dims[0] * 2, ...uncond.dims.slice(1)] };
}

/** `torch.concat(parts, dim=-1)` of [..., Hi] tensors alike but for their last axis. */
export function concatFeatures(parts: readonly Float32Tensor[]): Float32Tensor {
  const lead = parts[0].dims.slice(0, -1);
  if (parts.some((part) => part.dims.length === 0 || part.dims.slice(0, -1).join() !== lead.join()))
    throw new RangeError(`concatFeatures: [${parts.map((p) => `[${p.dims}]`)}] differ before their last axis`);
  const widths = parts.map((part) => part.dims[part.dims.length - 1]);
  const width = widths.reduce((sum, w) => sum + w, 0);
  const rows = lead.reduce((product, n) => product * n, 1);
  const data = new Float32Array(rows * width);
  for (let row = 0; row < rows; row++) {
    let at = row * width;
    for (const [i, part] of parts.entries()) {
      data.set(part.data.subarray(row * widths[i], (row + 1) * widths[i]), at);
      at += widths[i];
    }
  }
  return { type: 'float32', data, dims: [...lead, width] };
}

/** The named float32 output of `rank`, or an error that says what the encoder gave instead. */
function output(outputs: EncoderOutputs, name: string, rank: number): Float32Tensor {
  const tensor = outputs[name];
  if (!tensor) throw new Error(`the text encoder has no ${name} output; it has ${Object.keys(outputs).join(', ')}`);
  if (tensor.type !== 'float32' || tensor.dims.length !== rank)
    throw new Error(
      `the text encoder's ${name} is ${tensor.type} [${tensor.dims}]; it must be float32 of rank ${rank}`,
    );
  return tensor;
}
