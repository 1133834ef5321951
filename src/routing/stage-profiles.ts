/**
 * Default (uncalibrated) profiles of the text-encoder and UNet stages, derived without measuring:
 * weights are the networks' files on disk (or, for a bare family, its parameter count), activations
 * are counted from the network's config.json. `latentgate calibrate --operation denoise` replaces the
 * UNet's with a fit to measurements. The derivation and its assumptions: docs/memory-model.md.
 */
import { z } from 'zod';
import {
  COMPUTE_BYTES_PER_ELEMENT,
  type ComputeDType,
  type ModelStageProfiles,
  type NetworkFile,
  type PipelineNetworks,
  type StageProfile,
} from './memory-profile.js';

/** Runtime buffers besides the weights (cuDNN workspace, the arena's first chunk), as for the tiny VAEs. */
export const STAGE_RUNTIME_BYTES = 64 * 2 ** 20;
/** onnxruntime's BFC arena rounds chunks up (next power of two): x1.5 on counted activations. */
export const STAGE_ARENA_FACTOR = 1.5;

const count = z.number().int().positive();
const perLevel = z.union([count, z.array(count)]);

/** The UNet2DConditionModel config fields the derivation reads (diffusers' names); SD 1.5's where absent. */
const unetConfig = z.object({
  block_out_channels: z.array(count).min(1).catch([320, 640, 1280, 1280]),
  layers_per_block: count.catch(2),
  down_block_types: z.array(z.string()).optional().catch(undefined),
  // diffusers' naming quirk: without num_attention_heads, attention_head_dim IS the head count.
  attention_head_dim: perLevel.catch(8),
  num_attention_heads: perLevel.nullish().catch(null),
});

/** A Flux-style transformer (tokens are 2x2 latent patches, joint attention with the text). */
const transformerConfig = z.object({
  num_attention_heads: count,
  attention_head_dim: count,
  num_single_layers: count,
});

/** CLIP (hidden_size ...) or T5 (d_model ...) text encoder; CLIP ViT-bigG's where absent (the larger, so safe). */
const textConfig = z.object({
  hidden_size: count.optional().catch(undefined),
  d_model: count.optional().catch(undefined),
  intermediate_size: count.optional().catch(undefined),
  d_ff: count.optional().catch(undefined),
  num_attention_heads: count.optional().catch(undefined),
  num_heads: count.optional().catch(undefined),
  num_hidden_layers: count.optional().catch(undefined),
  num_layers: count.optional().catch(undefined),
  max_position_embeddings: count.optional().catch(undefined),
});

/** Tokens of the cross-attention context (CLIP's 77; Flux's T5 sequence is 512). */
const CLIP_SEQUENCE = 77;
const T5_SEQUENCE = 512;

function at(levels: number | number[], level: number): number {
  return Array.isArray(levels) ? (levels[level] ?? levels[levels.length - 1]) : levels;
}

/** Activation elements per batch item: per latent pixel, and per latent pixel squared. */
interface ActivationCount {
  perPixel: number;
  perPixelSquared: number;
  what: string;
}

/**
 * A UNet keeps every down block's outputs for the skip connections ((layers + 1) x c_l at 1/4^l of
 * the latent pixels at level l) while the widest block works: a transformer block's GEGLU
 * feed-forward (8c + 4c + 4c around its c-channel residual: 17c) or, without attention, a resnet on
 * the concatenated skip (~8c). Attention: each head's scores and softmax over tokens^2 (unfused, as
 * optimum exports it) plus the same over the 77 text tokens.
 */
function unetActivations(raw: Record<string, unknown> | undefined): ActivationCount {
  const c = unetConfig.parse(raw ?? {});
  const levels = c.block_out_channels.length;
  const attention = (l: number) => (c.down_block_types ? /CrossAttn/.test(c.down_block_types[l] ?? '') : true);
  const heads = (l: number) => at(c.num_attention_heads ?? c.attention_head_dim, l);
  let skips = 0;
  let working = 0;
  let squared = 0;
  for (let l = 0; l < levels; l++) {
    const share = 1 / 4 ** l;
    const ch = c.block_out_channels[l];
    skips += (c.layers_per_block + 1) * ch * share;
    const cross = attention(l) ? 2 * heads(l) * CLIP_SEQUENCE : 0;
    working = Math.max(working, ((attention(l) ? 17 : 8) * ch + cross) * share);
    if (attention(l)) squared = Math.max(squared, 2 * heads(l) * share * share);
  }
  return {
    perPixel: skips + working,
    perPixelSquared: squared,
    what:
      `UNet blocks ${c.block_out_channels.join('/')}: skips + widest block ` +
      `${(skips + working).toFixed(0)} elements per latent pixel, attention scores ${squared.toFixed(3)} per pixel^2`,
  };
}

/**
 * Flux transformer: tokens are 2x2 patches (P/4) joined by the text's 512; per image token a block
 * holds q, k, v, its output and a 4x MLP (~14 x hidden), and every head's scores over all tokens.
 */
function transformerActivations(raw: Record<string, unknown>): ActivationCount {
  const c = transformerConfig.parse(raw);
  const hidden = c.num_attention_heads * c.attention_head_dim;
  const perToken = 14 * hidden + 2 * c.num_attention_heads * 2 * T5_SEQUENCE;
  const squared = (2 * c.num_attention_heads) / 16;
  return {
    perPixel: perToken / 4,
    perPixelSquared: squared,
    what:
      `transformer ${c.num_attention_heads} x ${c.attention_head_dim}: ${(perToken / 4).toFixed(0)} elements ` +
      `per latent pixel, attention scores ${squared.toFixed(3)} per pixel^2`,
  };
}

/** Elements one sequence holds: a layer's working set, the attention scores, and every layer's hidden states. */
function textActivations(raw: Record<string, unknown> | undefined): number {
  const c = textConfig.parse(raw ?? {});
  const hidden = c.hidden_size ?? c.d_model ?? 1280;
  const inner = c.intermediate_size ?? c.d_ff ?? 4 * hidden;
  const heads = c.num_attention_heads ?? c.num_heads ?? 20;
  const layers = c.num_hidden_layers ?? c.num_layers ?? 32;
  const t5 = c.d_model !== undefined && c.hidden_size === undefined;
  const sequence = c.max_position_embeddings ?? (t5 ? T5_SEQUENCE : CLIP_SEQUENCE);
  return sequence * (4 * hidden + 2 * inner) + 2 * heads * sequence * sequence + (layers + 1) * sequence * hidden;
}

function stageProfile(
  id: string,
  dtype: ComputeDType,
  weightBytes: number,
  activations: { perItem: number; perPixel: number; perPixelSquared: number },
  source: string,
): StageProfile {
  const e = COMPUTE_BYTES_PER_ELEMENT[dtype] * STAGE_ARENA_FACTOR;
  return {
    id,
    fixedBytes: weightBytes + STAGE_RUNTIME_BYTES,
    weightBytes,
    bytesPerBatchItem: activations.perItem * e,
    bytesPerLatentPixel: activations.perPixel * e,
    attentionBytesPerLatentPixelSquared: activations.perPixelSquared * e,
    dtype,
    calibrated: false,
    source: `derived: ${source}, x${STAGE_ARENA_FACTOR} arena headroom; uncalibrated until measured`,
  };
}

function isTransformer(config: Record<string, unknown> | undefined): config is Record<string, unknown> {
  return transformerConfig.safeParse(config ?? {}).success;
}

function textEncodeProfile(
  model: string,
  dtype: ComputeDType,
  encoders: readonly Pick<NetworkFile, 'bytes' | 'config'>[],
  weightsFrom: string,
): StageProfile {
  const weights = encoders.reduce((sum, n) => sum + n.bytes, 0);
  const perItem = encoders.reduce((sum, n) => sum + textActivations(n.config), 0);
  return stageProfile(
    `${model}/textEncode`,
    dtype,
    weights,
    { perItem, perPixel: 0, perPixelSquared: 0 },
    `${encoders.length} text encoder(s), weights ${weightsFrom}, ${perItem} activation elements per sequence`,
  );
}

function denoiseProfile(
  model: string,
  dtype: ComputeDType,
  unet: Pick<NetworkFile, 'bytes' | 'config'>,
  weightsFrom: string,
): StageProfile {
  const a = isTransformer(unet.config) ? transformerActivations(unet.config) : unetActivations(unet.config);
  return stageProfile(
    `${model}/denoise`,
    dtype,
    unet.bytes,
    { perItem: 0, perPixel: a.perPixel, perPixelSquared: a.perPixelSquared },
    `weights ${weightsFrom}; ${a.what}`,
  );
}

/** Derived profiles of a pipeline folder's stage networks (weights: their files' sizes). */
export function derivedStageProfiles(model: string, networks: PipelineNetworks): ModelStageProfiles {
  const files = (list: readonly NetworkFile[]) => `${list.map((n) => n.bytes).join(' + ')} B on disk`;
  return {
    model,
    textEncode: textEncodeProfile(model, networks.dtype, networks.textEncoders, files(networks.textEncoders)),
    denoise: denoiseProfile(model, networks.dtype, networks.unet, files([networks.unet])),
    downscaleFactor: networks.downscaleFactor,
  };
}

const CLIP_L = { hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12 };
const CLIP_BIG_G = { hidden_size: 1280, intermediate_size: 5120, num_attention_heads: 20, num_hidden_layers: 32 };

/**
 * Families without a folder (planning only), at fp16 from parameter counts (assumed round figures
 * as published, not re-counted): SD 1.5 UNet 859.5M, CLIP ViT-L text 123.1M; SDXL UNet 2567M,
 * CLIP ViT-L 123.1M + OpenCLIP ViT-bigG text 694.7M.
 */
const FAMILY_STAGES: Record<
  string,
  { unet: number; unetConfig?: Record<string, unknown>; text: { params: number; config: Record<string, unknown> }[] }
> = {
  sd15: { unet: 859_520_964, text: [{ params: 123_060_480, config: CLIP_L }] },
  sdxl: {
    unet: 2_567_463_684,
    unetConfig: {
      block_out_channels: [320, 640, 1280],
      down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
      attention_head_dim: [5, 10, 20],
    },
    text: [
      { params: 123_060_480, config: CLIP_L },
      { params: 694_659_840, config: CLIP_BIG_G },
    ],
  },
};

/** Derived stage profiles of a family id (sd15, sdxl) at fp16; undefined for others. Fresh objects. */
export function shippedStageProfiles(id: string): ModelStageProfiles | undefined {
  const family = Object.hasOwn(FAMILY_STAGES, id) ? FAMILY_STAGES[id] : undefined;
  if (!family) return undefined;
  const fp16 = 2;
  return {
    model: id,
    textEncode: textEncodeProfile(
      id,
      'float16',
      family.text.map((t) => ({ bytes: t.params * fp16, config: t.config })),
      `${family.text.map((t) => t.params).join(' + ')} parameters at fp16`,
    ),
    denoise: denoiseProfile(
      id,
      'float16',
      { bytes: family.unet * fp16, config: family.unetConfig },
      `${family.unet} parameters at fp16`,
    ),
    downscaleFactor: 8,
  };
}
