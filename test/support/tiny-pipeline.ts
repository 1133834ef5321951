/**
 * A tiny diffusion pipeline folder in optimum's diffusers ONNX layout (SD 1.5, LCM, SDXL, Flux), with
 * networks whose outputs are easy to compute by hand, built in-process (no weights to download):
 * - text encoders: 1.0 at content tokens (not bos / eos / pad) in every hidden channel, else 0;
 * - UNet: out_sample = (0.1 + 0.02 m) * sample + 0.05 * t / 1000 + 0.02 m, m = max of that batch
 *   row's encoder_hidden_states, so the empty prompt gives the img2img fixtures' unconditional model
 *   and a prompt with a word their conditional one; LCM / SDXL extra inputs enter with weight 0;
 * - VAE encoder: 8x8 means of R, G, B and grey, log-variance -20; decoder: channels 0..2, 8x nearest.
 * Flux: a CLIP text encoder (pooler_output), a T5-like text_encoder_2 (1.0 at content tokens, not </s> / <pad>)
 * with a Unigram tokenizer.json, a transformer out_hidden_states = 0.1 * hidden_states + 0.05 * timestep (the
 * fixtures' flow stand-in, timestep = t/1000) with its other inputs at weight 0, and a 16-channel VAE (latent
 * channel c is the 8x8 mean of R, G, B, grey for c % 4).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuiltModel, GraphBuilder, type ValueSpec, writeModel } from '../../src/gpu/onnx-builder.ts';

export type TinyVariant = 'sd' | 'lcm' | 'sdxl' | 'flux';
/** The UNet's `timestep`: int64 [steps], float32 [steps] or a float32 scalar. */
export type TinyTimestep = 'int64-batch' | 'float32-batch' | 'float32-scalar';

export interface TinyPipelineOptions {
  variant?: TinyVariant;
  /** Default int64-batch, as optimum exports it. */
  timestep?: TinyTimestep;
  /** VAE encoder output: `latent_parameters` (mean and log-variance, default) or older exports' `latent_sample`. */
  vaeOutput?: 'latent_parameters' | 'latent_sample';
  /**
   * scheduler/scheduler_config.json, `_class_name` included. Defaults: SD 1.5's PNDM config (sd), the LCM
   * config (lcm), SDXL's Euler config (sdxl), as the img2img fixtures have them.
   */
  scheduler?: Record<string, unknown>;
  /** UNet initializers in unet/model.onnx_data (TensorProto EXTERNAL), as exports over 2 GB have them. */
  externalData?: boolean;
  /** Also write tokenizer.json (HF tokenizers format) in each tokenizer folder. */
  tokenizerJson?: boolean;
  /** The pad token of tokenizer/ (default `<|endoftext|>`, as CLIP ViT-L); must be in the vocabulary. */
  padToken?: string;
  /** The pad token of tokenizer_2/ (SDXL; default `!`, as OpenCLIP bigG). */
  padToken2?: string;
  /** `input_ids` element type of the text encoders (default int32). */
  inputIds?: 'int32' | 'int64';
  /** model_index.json's force_zeros_for_empty_prompt (written for sdxl: default true unless a refiner). */
  forceZerosForEmptyPrompt?: boolean;
  /**
   * SDXL refiner layout: model_index requires_aesthetics_score true, no text_encoder / tokenizer (only the
   * second ones), UNet encoder_hidden_states hidden 1280 and time_ids [batch, 5].
   */
  requiresAestheticsScore?: boolean;
  /** VAE scaling_factor (default 0.18215; sdxl 0.13025). */
  scalingFactor?: number;
  /** VAE shift_factor, written only when given. */
  shiftFactor?: number;
  /** model_index.json's `_class_name` (default StableDiffusionPipeline, LatentConsistencyModelPipeline,
   * StableDiffusionXLPipeline, or StableDiffusionXLImg2ImgPipeline for a refiner). */
  className?: string;
  /** tokenizer_config.json model_max_length (default 77). */
  modelMaxLength?: number;
  /** Flux: transformer config guidance_embeds and a `guidance` input (dev: default true; schnell false). */
  guidanceEmbeds?: boolean;
  /** Flux: rank of img_ids / txt_ids, 2 ([seq, 3], diffusers >= 0.31 exports, default) or 3 ([batch, seq, 3]). */
  idsRank?: 2 | 3;
}

/** Token ids of one written tokenizer folder. */
export interface TinyTokenizerInfo {
  bosId: number;
  eosId: number;
  padId: number;
  /** Token -> id, as in vocab.json. */
  vocab: Record<string, number>;
}

export interface TinyPipelineInfo {
  dir: string;
  /** tokenizer/ (absent for an SDXL refiner). */
  tokenizer?: TinyTokenizerInfo;
  /** tokenizer_2/ (sdxl). */
  tokenizer2?: TinyTokenizerInfo;
  /** encoder_hidden_states' last dim: 768 (sd, lcm), 2048 (sdxl), 1280 (sdxl refiner). */
  crossAttentionDim: number;
}

export const BOS_TOKEN = '<|startoftext|>';
export const EOS_TOKEN = '<|endoftext|>';
/** Words with merges, so each is one token (`cat</w>`); other text falls back to byte-level characters. */
export const TINY_WORDS = ['a', 'photo', 'of', 'cat', 'dog', 'red', 'blue', 'house', 'painting', 'the'];
/** The LCM UNet's `timestep_cond` width (its unet config time_cond_proj_dim). */
export const TIME_COND_DIM = 256;
export const TEXT_EMBEDS_DIM = 1280;
/** Transformer layers of the tiny text encoders: `hidden_states.0..2`. */
export const TINY_TEXT_LAYERS = 2;

const DIFFUSERS_VERSION = '0.30.0';
const SD15_BETAS = { num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear' };
const DEFAULT_SCHEDULERS: Record<TinyVariant, Record<string, unknown>> = {
  sd: {
    _class_name: 'PNDMScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    ...SD15_BETAS,
    skip_prk_steps: true,
    set_alpha_to_one: false,
    steps_offset: 1,
    timestep_spacing: 'leading',
    prediction_type: 'epsilon',
  },
  lcm: {
    _class_name: 'LCMScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    ...SD15_BETAS,
    original_inference_steps: 50,
    set_alpha_to_one: true,
    steps_offset: 1,
    clip_sample: false,
    timestep_spacing: 'leading',
    timestep_scaling: 10.0,
    prediction_type: 'epsilon',
  },
  sdxl: {
    _class_name: 'EulerDiscreteScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    ...SD15_BETAS,
    timestep_spacing: 'leading',
    steps_offset: 1,
    prediction_type: 'epsilon',
  },
  // FLUX.1-dev's.
  flux: {
    _class_name: 'FlowMatchEulerDiscreteScheduler',
    _diffusers_version: DIFFUSERS_VERSION,
    num_train_timesteps: 1000,
    shift: 3.0,
    use_dynamic_shifting: true,
    base_shift: 0.5,
    max_shift: 1.15,
    base_image_seq_len: 256,
    max_image_seq_len: 4096,
  },
};

/** The tiny UNet's formula, elementwise, in float64 (tests compare with a tolerance). */
export function tinyUnet(sample: number, timestep: number, m: number): number {
  return (0.1 + 0.02 * m) * sample + (0.05 * timestep) / 1000 + 0.02 * m;
}

/** Writes the pipeline folder `dir` (created if missing). */
export function writeTinyPipeline(dir: string, options: TinyPipelineOptions = {}): TinyPipelineInfo {
  const variant = options.variant ?? 'sd';
  if (variant === 'flux') return writeTinyFlux(dir, options);
  const refiner = variant === 'sdxl' && options.requiresAestheticsScore === true;
  const inputIds = options.inputIds ?? 'int32';
  const part = (name: string) => {
    mkdirSync(join(dir, name), { recursive: true });
    return join(dir, name);
  };
  const json = (path: string, value: unknown) => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);

  let tokenizer: TinyTokenizerInfo | undefined;
  let tokenizer2: TinyTokenizerInfo | undefined;
  if (!refiner) {
    tokenizer = writeTokenizer(part('tokenizer'), options.padToken ?? EOS_TOKEN, options);
    const hidden = 768;
    const outputs = variant === 'sdxl' ? 'hidden-states' : 'pooled';
    writeModel(join(part('text_encoder'), 'model.onnx'), textEncoder(specialIds(tokenizer), hidden, outputs, inputIds));
    json(join(dir, 'text_encoder', 'config.json'), textEncoderConfig(tokenizer, hidden, 'CLIPTextModel'));
  }
  if (variant === 'sdxl') {
    tokenizer2 = writeTokenizer(part('tokenizer_2'), options.padToken2 ?? '!', options);
    writeModel(
      join(part('text_encoder_2'), 'model.onnx'),
      textEncoder(specialIds(tokenizer2), TEXT_EMBEDS_DIM, 'projection', inputIds),
    );
    json(
      join(dir, 'text_encoder_2', 'config.json'),
      textEncoderConfig(tokenizer2, TEXT_EMBEDS_DIM, 'CLIPTextModelWithProjection'),
    );
  }

  const crossAttentionDim = variant === 'sdxl' ? (refiner ? 1280 : 2048) : 768;
  const timeIds = refiner ? 5 : 6;
  const unet = unetGraph({
    timestep: options.timestep ?? 'int64-batch',
    crossAttentionDim,
    timestepCond: variant === 'lcm',
    timeIds: variant === 'sdxl' ? timeIds : undefined,
    externalData: options.externalData === true,
  });
  writeModel(join(part('unet'), 'model.onnx'), unet);
  json(join(dir, 'unet', 'config.json'), unetConfig(variant, crossAttentionDim, timeIds));

  const vaeOutput = options.vaeOutput ?? 'latent_parameters';
  writeModel(join(part('vae_encoder'), 'model.onnx'), vaeEncoder(vaeOutput, 4));
  writeModel(join(part('vae_decoder'), 'model.onnx'), vaeDecoder(4));
  const vae = vaeConfig(variant, options);
  json(join(dir, 'vae_encoder', 'config.json'), vae);
  json(join(dir, 'vae_decoder', 'config.json'), vae);

  const scheduler = options.scheduler ?? DEFAULT_SCHEDULERS[variant];
  json(join(part('scheduler'), 'scheduler_config.json'), scheduler);
  json(join(dir, 'model_index.json'), modelIndex(variant, refiner, String(scheduler._class_name), options));
  return { dir, tokenizer, tokenizer2, crossAttentionDim };
}

function modelIndex(
  variant: Exclude<TinyVariant, 'flux'>,
  refiner: boolean,
  scheduler: string,
  options: TinyPipelineOptions,
) {
  const className =
    options.className ??
    {
      sd: 'StableDiffusionPipeline',
      lcm: 'LatentConsistencyModelPipeline',
      sdxl: refiner ? 'StableDiffusionXLImg2ImgPipeline' : 'StableDiffusionXLPipeline',
    }[variant];
  const index: Record<string, unknown> = {
    _class_name: className,
    _diffusers_version: DIFFUSERS_VERSION,
    scheduler: ['diffusers', scheduler],
    text_encoder: refiner ? [null, null] : ['transformers', 'CLIPTextModel'],
    tokenizer: refiner ? [null, null] : ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    // optimum keeps diffusers' own index: one `vae` entry for the vae_encoder / vae_decoder folders.
    vae: ['diffusers', 'AutoencoderKL'],
  };
  if (variant === 'sdxl') {
    index.text_encoder_2 = ['transformers', 'CLIPTextModelWithProjection'];
    index.tokenizer_2 = ['transformers', 'CLIPTokenizer'];
    index.requires_aesthetics_score = refiner;
    index.force_zeros_for_empty_prompt = options.forceZerosForEmptyPrompt ?? !refiner;
  } else {
    index.feature_extractor = [null, null];
    index.safety_checker = [null, null];
    index.requires_safety_checker = false;
    if (options.forceZerosForEmptyPrompt !== undefined)
      index.force_zeros_for_empty_prompt = options.forceZerosForEmptyPrompt;
    if (options.requiresAestheticsScore !== undefined)
      index.requires_aesthetics_score = options.requiresAestheticsScore;
  }
  return index;
}

/* ---------------------------------------------------------------- tokenizer */

/** GPT-2 / CLIP byte-to-character table: printable bytes map to themselves, the rest to U+0100 on. */
function byteCharacters(): string[] {
  const chars: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCodePoint(printable ? b : next++);
  }
  return chars;
}

/** CLIP's vocabulary order: byte characters (printable first), the same with `</w>`, merges, bos, eos. */
function tinyBpe(): { vocab: Record<string, number>; merges: [string, string][] } {
  const table = byteCharacters();
  const printableFirst = [
    ...table.filter((c) => c.codePointAt(0)! < 256),
    ...table.filter((c) => c.codePointAt(0)! >= 256),
  ];
  const tokens = [...printableFirst, ...printableFirst.map((c) => `${c}</w>`)];
  const merges: [string, string][] = [];
  for (const word of TINY_WORDS) {
    const symbols = [...word].map((c, i) => (i === word.length - 1 ? `${c}</w>` : c));
    let left = symbols[0];
    for (const right of symbols.slice(1)) {
      if (!merges.some(([a, b]) => a === left && b === right)) {
        merges.push([left, right]);
        tokens.push(left + right);
      }
      left += right;
    }
  }
  tokens.push(BOS_TOKEN, EOS_TOKEN);
  return { vocab: Object.fromEntries(tokens.map((t, id) => [t, id])), merges };
}

function writeTokenizer(dir: string, padToken: string, options: TinyPipelineOptions): TinyTokenizerInfo {
  const { vocab, merges } = tinyBpe();
  const padId = vocab[padToken];
  if (padId === undefined) throw new Error(`pad token ${JSON.stringify(padToken)} is not in the tiny vocabulary`);
  const json = (name: string, value: unknown) => writeFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  json('vocab.json', vocab);
  writeFileSync(join(dir, 'merges.txt'), `#version: 0.2\n${merges.map(([a, b]) => `${a} ${b}`).join('\n')}\n`);
  // As SD 1.5's files: bos / eos / unk as AddedToken objects, pad as a plain string.
  const added = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  json('special_tokens_map.json', {
    bos_token: added(BOS_TOKEN),
    eos_token: added(EOS_TOKEN),
    pad_token: padToken,
    unk_token: added(EOS_TOKEN),
  });
  json('tokenizer_config.json', {
    add_prefix_space: false,
    bos_token: { __type: 'AddedToken', ...added(BOS_TOKEN) },
    do_lower_case: true,
    eos_token: { __type: 'AddedToken', ...added(EOS_TOKEN) },
    errors: 'replace',
    model_max_length: options.modelMaxLength ?? 77,
    pad_token: padToken,
    tokenizer_class: 'CLIPTokenizer',
    unk_token: { __type: 'AddedToken', ...added(EOS_TOKEN) },
  });
  const bosId = vocab[BOS_TOKEN];
  const eosId = vocab[EOS_TOKEN];
  if (options.tokenizerJson) json('tokenizer.json', tokenizerJson(vocab, merges, bosId, eosId));
  return { bosId, eosId, padId, vocab };
}

/** The tokenizer.json of openai/clip-vit-large-patch14, over the tiny vocabulary. */
function tokenizerJson(vocab: Record<string, number>, merges: [string, string][], bosId: number, eosId: number) {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(bosId, BOS_TOKEN), special(eosId, EOS_TOKEN)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'NFC' },
        { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' },
        { type: 'Lowercase' },
      ],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [EOS_TOKEN, eosId],
      cls: [BOS_TOKEN, bosId],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: EOS_TOKEN,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

/** The ids a tiny text encoder does not flag as content. */
function specialIds(ids: TinyTokenizerInfo): number[] {
  return [ids.bosId, ids.eosId, ids.padId];
}

/* ---------------------------------------------------------------- flux */

export const T5_EOS = '</s>';
export const T5_PAD = '<pad>';
/** T5-XXL's d_model: the transformer's joint_attention_dim. */
export const T5_HIDDEN = 4096;
/** The transformer's packed features: 16 latent channels x 2 x 2. */
export const FLUX_FEATURES = 64;

/** The tiny transformer's formula, elementwise: the fixtures' flow stand-in v = 0.1 x + 0.05 sigma. */
export function tinyFluxTransformer(sample: number, sigma: number): number {
  return 0.1 * sample + 0.05 * sigma;
}

function writeTinyFlux(dir: string, options: TinyPipelineOptions): TinyPipelineInfo {
  const part = (name: string) => {
    mkdirSync(join(dir, name), { recursive: true });
    return join(dir, name);
  };
  const json = (path: string, value: unknown) => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
  const inputIds = options.inputIds ?? 'int64';
  const guidanceEmbeds = options.guidanceEmbeds ?? true;

  const tokenizer = writeTokenizer(part('tokenizer'), options.padToken ?? EOS_TOKEN, options);
  writeModel(join(part('text_encoder'), 'model.onnx'), textEncoder(specialIds(tokenizer), 768, 'pooled', inputIds));
  json(join(dir, 'text_encoder', 'config.json'), textEncoderConfig(tokenizer, 768, 'CLIPTextModel'));
  const tokenizer2 = writeT5Tokenizer(part('tokenizer_2'));
  writeModel(join(part('text_encoder_2'), 'model.onnx'), t5Encoder([tokenizer2.eosId, tokenizer2.padId], inputIds));
  json(join(dir, 'text_encoder_2', 'config.json'), {
    architectures: ['T5EncoderModel'],
    model_type: 't5',
    d_model: T5_HIDDEN,
    vocab_size: Object.keys(tokenizer2.vocab).length,
    eos_token_id: tokenizer2.eosId,
    pad_token_id: tokenizer2.padId,
  });

  writeModel(join(part('transformer'), 'model.onnx'), fluxTransformer(guidanceEmbeds, options.idsRank ?? 2));
  json(join(dir, 'transformer', 'config.json'), {
    _class_name: 'FluxTransformer2DModel',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: FLUX_FEATURES,
    patch_size: 1,
    num_layers: 1,
    num_single_layers: 1,
    attention_head_dim: 128,
    num_attention_heads: 24,
    joint_attention_dim: T5_HIDDEN,
    pooled_projection_dim: 768,
    guidance_embeds: guidanceEmbeds,
    axes_dims_rope: [16, 56, 56],
  });

  writeModel(join(part('vae_encoder'), 'model.onnx'), vaeEncoder(options.vaeOutput ?? 'latent_parameters', 16));
  writeModel(join(part('vae_decoder'), 'model.onnx'), vaeDecoder(16));
  const vae = {
    _class_name: 'AutoencoderKL',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: 3,
    out_channels: 3,
    latent_channels: 16,
    block_out_channels: [128, 256, 512, 512],
    sample_size: 1024,
    scaling_factor: options.scalingFactor ?? 0.3611,
    shift_factor: options.shiftFactor ?? 0.1159,
    use_quant_conv: false,
    use_post_quant_conv: false,
  };
  json(join(dir, 'vae_encoder', 'config.json'), vae);
  json(join(dir, 'vae_decoder', 'config.json'), vae);

  const scheduler = options.scheduler ?? DEFAULT_SCHEDULERS.flux;
  json(join(part('scheduler'), 'scheduler_config.json'), scheduler);
  json(join(dir, 'model_index.json'), {
    _class_name: options.className ?? 'FluxPipeline',
    _diffusers_version: DIFFUSERS_VERSION,
    scheduler: ['diffusers', String(scheduler._class_name)],
    text_encoder: ['transformers', 'CLIPTextModel'],
    text_encoder_2: ['transformers', 'T5EncoderModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    tokenizer_2: ['transformers', 'T5TokenizerFast'],
    transformer: ['diffusers', 'FluxTransformer2DModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  return { dir, tokenizer, tokenizer2, crossAttentionDim: T5_HIDDEN };
}

/**
 * A T5 tokenizer folder as FLUX.1's tokenizer_2/ has it (tokenizer.json with a Unigram model, Metaspace
 * pre-tokenizer and `$A </s>` post-processor; no bos), over whole-word pieces for TINY_WORDS and single
 * characters for other text.
 */
function writeT5Tokenizer(dir: string): TinyTokenizerInfo {
  const pieces: [string, number][] = [
    [T5_PAD, 0],
    [T5_EOS, 0],
    ['<unk>', 0],
    ['\u2581', -2],
    ...TINY_WORDS.map((word): [string, number] => [`\u2581${word}`, -1]),
    ...[...'abcdefghijklmnopqrstuvwxyz0123456789,.!?'].map((c): [string, number] => [c, -5]),
  ];
  const vocab = Object.fromEntries(pieces.map(([piece], id) => [piece, id]));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const file = (name: string, value: unknown) => writeFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  file('tokenizer.json', {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, T5_PAD), special(1, T5_EOS), special(2, '<unk>')],
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'WhitespaceSplit' },
        { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
      ],
    },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: T5_EOS, type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: T5_EOS, type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: T5_EOS, type_id: 0 } },
      ],
      special_tokens: { [T5_EOS]: { id: T5_EOS, ids: [1], tokens: [T5_EOS] } },
    },
    decoder: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab: pieces, byte_fallback: false },
  });
  file('special_tokens_map.json', { eos_token: T5_EOS, pad_token: T5_PAD, unk_token: '<unk>' });
  file('tokenizer_config.json', {
    eos_token: T5_EOS,
    pad_token: T5_PAD,
    unk_token: '<unk>',
    extra_ids: 0,
    additional_special_tokens: [],
    model_max_length: 512,
    tokenizer_class: 'T5Tokenizer',
    legacy: true,
  });
  return { bosId: -1, eosId: vocab[T5_EOS], padId: vocab[T5_PAD], vocab };
}

/** [batch, sequence, 1]: 1.0 where `input_ids` is a content token (none of `specials`), else 0.0. */
function contentColumn(g: GraphBuilder, specials: number[], inputType: 'int32' | 'int64'): string {
  const id = (name: string, value: number) =>
    inputType === 'int32'
      ? g.constant(name, [], new Int32Array([value]))
      : g.constant(name, [], new BigInt64Array([BigInt(value)]));
  const special = specials
    .map((value, i) => g.node('Equal', ['input_ids', id(`special_${i}`, value)]))
    .reduce((a, b) => g.node('Or', [a, b]));
  const content = g.node('Cast', [g.node('Not', [special])], { to: 1 /* FLOAT */ });
  return g.node('Unsqueeze', [content, g.int64Constant('axis_2', [2])]);
}

/** T5EncoderModel's export: input_ids -> last_hidden_state, 1.0 at content tokens in every channel. */
function t5Encoder(specials: number[], inputType: 'int32' | 'int64'): BuiltModel {
  const g = new GraphBuilder();
  const column = contentColumn(g, specials, inputType);
  g.node(
    'Mul',
    [column, g.constant('ones', [T5_HIDDEN], new Float32Array(T5_HIDDEN).fill(1))],
    {},
    'last_hidden_state',
  );
  return g.buildModel(
    [{ name: 'input_ids', type: inputType, dims: ['batch_size', 'sequence_length'] }],
    [{ name: 'last_hidden_state', dims: ['batch_size', 'sequence_length', T5_HIDDEN] }],
    'text_encoder_2',
  );
}

/**
 * optimum's FluxTransformer export: hidden_states [b, packed_height_width, 64], encoder_hidden_states
 * [b, seq, 4096], pooled_projections [b, 768], timestep [step], img_ids / txt_ids ([n, 3], or [b, n, 3] before
 * diffusers 0.31), guidance [b] (dev) -> out_hidden_states. Inputs other than hidden_states and timestep
 * enter through sums times 0, so the session declares them and their shapes must agree.
 */
function fluxTransformer(guidanceEmbeds: boolean, idsRank: 2 | 3): BuiltModel {
  const g = new GraphBuilder();
  const batch = 'batch_size';
  const t = g.node('Reshape', ['timestep', g.int64Constant('to_column', [-1, 1, 1])]);
  let out = g.node('Add', [
    g.node('Mul', ['hidden_states', g.scalar('a', 0.1)]),
    g.node('Mul', [t, g.scalar('b', 0.05)]),
  ]);
  const inputs: ValueSpec[] = [
    { name: 'hidden_states', dims: [batch, 'packed_height_width', FLUX_FEATURES] },
    { name: 'encoder_hidden_states', dims: [batch, 'sequence_length', T5_HIDDEN] },
    { name: 'pooled_projections', dims: [batch, 768] },
    { name: 'timestep', dims: ['step'] },
    { name: 'img_ids', dims: idsRank === 2 ? ['packed_height_width', 3] : [batch, 'packed_height_width', 3] },
    { name: 'txt_ids', dims: idsRank === 2 ? ['sequence_length', 3] : [batch, 'sequence_length', 3] },
  ];
  if (guidanceEmbeds) inputs.push({ name: 'guidance', dims: [batch] });
  for (const { name } of inputs.slice(1)) {
    if (name === 'timestep') continue;
    const zero = g.node('Mul', [g.node('ReduceSum', [name], { keepdims: 0 }), g.scalar(`${name}_weight`, 0)]);
    out = g.node('Add', [out, zero]);
  }
  g.node('Identity', [out], {}, 'out_hidden_states');
  return g.buildModel(
    inputs,
    [{ name: 'out_hidden_states', dims: [batch, 'packed_height_width', FLUX_FEATURES] }],
    'transformer',
  );
}

/* ---------------------------------------------------------------- networks */

/**
 * pooled: last_hidden_state, pooler_output (SD's CLIPTextModel); hidden-states: those and
 * hidden_states.0..L (SDXL's first encoder); projection: text_embeds, last_hidden_state,
 * hidden_states.0..L (SDXL's CLIPTextModelWithProjection).
 */
function textEncoder(
  specials: number[],
  hidden: number,
  outputs: 'pooled' | 'hidden-states' | 'projection',
  inputType: 'int32' | 'int64',
): BuiltModel {
  const g = new GraphBuilder();
  const column = contentColumn(g, specials, inputType);
  const states = g.node('Mul', [column, g.constant('ones', [hidden], new Float32Array(hidden).fill(1))]);
  const batch = 'batch_size';
  const sequence = 'sequence_length';
  const specs: ValueSpec[] = [];
  const emit = (name: string, dims: ValueSpec['dims'], from: string) => {
    g.node('Identity', [from], {}, name);
    specs.push({ name, dims });
  };
  const pooled = g.node('ReduceMax', [states], { axes: [1], keepdims: 0 });
  if (outputs === 'projection') emit('text_embeds', [batch, hidden], pooled);
  emit('last_hidden_state', [batch, sequence, hidden], states);
  if (outputs !== 'projection') emit('pooler_output', [batch, hidden], pooled);
  if (outputs !== 'pooled')
    for (let layer = 0; layer <= TINY_TEXT_LAYERS; layer++)
      emit(`hidden_states.${layer}`, [batch, sequence, hidden], states);
  return g.buildModel([{ name: 'input_ids', type: inputType, dims: [batch, sequence] }], specs, 'text_encoder');
}

interface UnetShape {
  timestep: TinyTimestep;
  crossAttentionDim: number;
  /** LCM: `timestep_cond` [batch, 256]. */
  timestepCond: boolean;
  /** SDXL: `text_embeds` [batch, 1280] and `time_ids` [batch, this]. */
  timeIds?: number;
  externalData: boolean;
}

function unetGraph(shape: UnetShape): BuiltModel {
  const g = new GraphBuilder();
  const toColumn = g.int64Constant('to_column', [-1, 1, 1, 1]);
  const t = g.node('Reshape', [g.node('Cast', ['timestep'], { to: 1 /* FLOAT */ }), toColumn]);
  const m = g.node('Unsqueeze', [
    g.node('ReduceMax', ['encoder_hidden_states'], { axes: [1, 2], keepdims: 1 }),
    g.int64Constant('axis_3', [3]),
  ]);
  const mScaled = g.node('Mul', [m, g.scalar('c_m', 0.02)]);
  const gain = g.node('Add', [g.scalar('a_base', 0.1), mScaled]);
  const timeTerm = g.node('Mul', [g.node('Div', [t, g.scalar('t_scale', 1000)]), g.scalar('b_t', 0.05)]);
  let out = g.node('Add', [g.node('Add', [g.node('Mul', [gain, 'sample']), timeTerm]), mScaled]);

  const batch = 'batch_size';
  const inputs: ValueSpec[] = [
    { name: 'sample', dims: [batch, 4, 'height', 'width'] },
    shape.timestep === 'int64-batch'
      ? { name: 'timestep', type: 'int64', dims: ['steps'] }
      : { name: 'timestep', dims: shape.timestep === 'float32-batch' ? ['steps'] : [] },
    { name: 'encoder_hidden_states', dims: [batch, 'sequence_length', shape.crossAttentionDim] },
  ];
  // Inputs the formula ignores still reach the output through zero weights, so the session declares them.
  const ignored = (name: string, width: number) => {
    inputs.push({ name, dims: [batch, width] });
    const zero = g.node('MatMul', [name, g.constant(`${name}_weight`, [width, 1], new Float32Array(width))]);
    out = g.node('Add', [out, g.node('Reshape', [zero, toColumn])]);
  };
  if (shape.timeIds !== undefined) {
    ignored('text_embeds', TEXT_EMBEDS_DIM);
    ignored('time_ids', shape.timeIds);
  }
  if (shape.timestepCond) ignored('timestep_cond', TIME_COND_DIM);
  g.node('Identity', [out], {}, 'out_sample');
  return g.buildModel(
    inputs,
    [{ name: 'out_sample', dims: [batch, 4, 'height', 'width'] }],
    'unet',
    shape.externalData ? { location: 'model.onnx_data' } : undefined,
  );
}

function vaeEncoder(output: 'latent_parameters' | 'latent_sample', latentChannels: number): BuiltModel {
  const g = new GraphBuilder();
  const channels = output === 'latent_parameters' ? 2 * latentChannels : latentChannels;
  const w = new Float32Array(channels * 3 * 64);
  const tap = (out: number, inCh: number, value: number) =>
    w.fill(value, (out * 3 + inCh) * 64, (out * 3 + inCh + 1) * 64);
  for (let out = 0; out < latentChannels; out++) {
    if (out % 4 < 3) tap(out, out % 4, 1 / 64);
    else for (let c = 0; c < 3; c++) tap(out, c, 1 / 192);
  }
  // Log-variance -20 (std 4.5e-5): a posterior sample stays within ~1e-4 of the mean.
  const bias = new Float32Array(channels);
  bias.fill(-20, latentChannels);
  g.node(
    'Conv',
    ['sample', g.constant('weight', [channels, 3, 8, 8], w), g.constant('bias', [channels], bias)],
    { kernel_shape: [8, 8], strides: [8, 8] },
    output,
  );
  return g.buildModel(
    [{ name: 'sample', dims: ['batch_size', 3, 'height', 'width'] }],
    [{ name: output, dims: ['batch_size', channels, 'height_latent', 'width_latent'] }],
    'vae_encoder',
  );
}

function vaeDecoder(latentChannels: number): BuiltModel {
  const g = new GraphBuilder();
  const d = new Float32Array(3 * latentChannels);
  for (let c = 0; c < 3; c++) d[c * latentChannels + c] = 1;
  const rgb = g.node('Conv', ['latent_sample', g.constant('weight', [3, latentChannels, 1, 1], d)], {
    kernel_shape: [1, 1],
  });
  g.node(
    'Resize',
    [rgb, g.constant('roi', [0], new Float32Array(0)), g.constant('scales', [4], new Float32Array([1, 1, 8, 8]))],
    { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    'sample',
  );
  return g.buildModel(
    [{ name: 'latent_sample', dims: ['batch_size', latentChannels, 'height_latent', 'width_latent'] }],
    [{ name: 'sample', dims: ['batch_size', 3, 'height', 'width'] }],
    'vae_decoder',
  );
}

/* ---------------------------------------------------------------- configs */

function textEncoderConfig(ids: TinyTokenizerInfo, hidden: number, architecture: string) {
  return {
    architectures: [architecture],
    model_type: 'clip_text_model',
    hidden_size: hidden,
    projection_dim: hidden,
    num_hidden_layers: TINY_TEXT_LAYERS,
    max_position_embeddings: 77,
    vocab_size: Object.keys(ids.vocab).length,
    bos_token_id: ids.bosId,
    eos_token_id: ids.eosId,
    pad_token_id: ids.padId,
    hidden_act: 'quick_gelu',
    torch_dtype: 'float32',
  };
}

function unetConfig(variant: TinyVariant, crossAttentionDim: number, timeIds: number) {
  const config: Record<string, unknown> = {
    _class_name: 'UNet2DConditionModel',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: 4,
    out_channels: 4,
    sample_size: variant === 'sdxl' ? 128 : 64,
    cross_attention_dim: crossAttentionDim,
    block_out_channels: variant === 'sdxl' ? [320, 640, 1280] : [320, 640, 1280, 1280],
    time_cond_proj_dim: variant === 'lcm' ? TIME_COND_DIM : null,
  };
  if (variant === 'sdxl') {
    config.addition_embed_type = 'text_time';
    config.addition_time_embed_dim = 256;
    config.projection_class_embeddings_input_dim = timeIds * 256 + TEXT_EMBEDS_DIM;
  }
  return config;
}

function vaeConfig(variant: TinyVariant, options: TinyPipelineOptions) {
  const config: Record<string, unknown> = {
    _class_name: 'AutoencoderKL',
    _diffusers_version: DIFFUSERS_VERSION,
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    block_out_channels: [128, 256, 512, 512],
    sample_size: variant === 'sdxl' ? 1024 : 512,
    scaling_factor: options.scalingFactor ?? (variant === 'sdxl' ? 0.13025 : 0.18215),
    force_upcast: variant === 'sdxl',
  };
  if (options.shiftFactor !== undefined) config.shift_factor = options.shiftFactor;
  return config;
}
