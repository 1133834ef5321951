/**
 * Conditioning math around the network call: classifier-free guidance (with SDXL's
 * `guidance_rescale`), LCM's guidance-scale embedding (`timestep_cond`), and SDXL's `add_time_ids`.
 * float32 op for op as torch computes it.
 */
import { f32, torchExpF32 } from './numeric.js';

/** SD / SDXL run CFG iff guidance_scale > 1 and the UNet has no `time_cond_proj_dim` (LCM-distilled UNets). */
export function usesClassifierFreeGuidance(guidanceScale: number, timeCondProjDim: number | null | undefined): boolean {
  return guidanceScale > 1 && (timeCondProjDim === null || timeCondProjDim === undefined);
}

/** guided = uncond + g * (cond - uncond), elementwise. */
export function classifierFreeGuidance(uncond: Float32Array, cond: Float32Array, guidanceScale: number): Float32Array {
  if (uncond.length !== cond.length) throw new RangeError(`CFG: ${uncond.length} uncond values against ${cond.length}`);
  const g = f32(guidanceScale);
  // A loop, not TypedArray.map: the callback per element was 2-3x slower (2 ms a step at 128x128 latents).
  const out = new Float32Array(uncond.length);
  for (let i = 0; i < out.length; i++) out[i] = f32(uncond[i] + f32(g * f32(cond[i] - uncond[i])));
  return out;
}

/**
 * diffusers' `rescale_noise_cfg` (Lin et al. 2023, section 3.4): per batch row,
 * r * guided * std(cond) / std(guided) + (1 - r) * guided, with torch's unbiased std (n - 1).
 */
export function rescaleGuidance(
  guided: Float32Array,
  cond: Float32Array,
  guidanceRescale: number,
  batch: number,
): Float32Array {
  if (guided.length !== cond.length || guided.length % batch !== 0)
    throw new RangeError(`rescaleGuidance: ${guided.length} and ${cond.length} values do not split into ${batch} rows`);
  const row = guided.length / batch;
  const out = new Float32Array(guided.length);
  const r = f32(guidanceRescale);
  const keep = f32(1 - guidanceRescale);
  for (let b = 0; b < batch; b++) {
    const start = b * row;
    const ratio = f32(unbiasedStd(cond, start, row) / unbiasedStd(guided, start, row));
    for (let i = start; i < start + row; i++) {
      const rescaled = f32(guided[i] * ratio);
      out[i] = f32(f32(r * rescaled) + f32(keep * guided[i]));
    }
  }
  return out;
}

/** torch.std (correction 1) of a float32 slice: accumulated in double, returned as float32. */
function unbiasedStd(values: Float32Array, start: number, count: number): number {
  let mean = 0;
  for (let i = start; i < start + count; i++) mean += values[i];
  mean /= count;
  let squares = 0;
  for (let i = start; i < start + count; i++) squares += (values[i] - mean) ** 2;
  return f32(Math.sqrt(squares / (count - 1)));
}

/**
 * LCM's `get_guidance_scale_embedding(w, embedding_dim)` for w = guidance_scale - 1 (one batch row):
 * w*1000 times exp(-ln(10000) k / (d/2 - 1)), k < d/2, as [sin..., cos...] (zero-padded to an odd d).
 * The arguments reach thousands of radians, so the float32 rounding of each factor matters, torch's
 * SIMD exp included (sin / cos then agree with torch's to one float32 ulp).
 */
export function guidanceScaleEmbedding(guidanceScale: number, embeddingDim = 512): Float32Array {
  const w = f32(f32(guidanceScale - 1) * 1000);
  const half = Math.floor(embeddingDim / 2);
  const step = f32(f32(Math.log(10000)) / (half - 1));
  const out = new Float32Array(embeddingDim);
  // torch's elementwise loop runs 16 values (two AVX2 vectors) at a time and the rest with libm.
  const vectorised = half - (half % 16);
  for (let k = 0; k < half; k++) {
    const frequency = torchExpF32(f32(k * -step), k < vectorised);
    const angle = f32(w * frequency);
    out[k] = f32(Math.sin(angle));
    out[half + k] = f32(Math.cos(angle));
  }
  return out;
}

export interface SdxlTimeIdsOptions {
  /** The latent's size times the VAE factor unless given: (height, width). */
  originalSize: [number, number];
  targetSize: [number, number];
  cropsCoordsTopLeft?: [number, number];
  /** Refiner-style UNets (`requires_aesthetics_score`) take a score instead of the target size. */
  requiresAestheticsScore?: boolean;
  aestheticScore?: number;
  negativeAestheticScore?: number;
  negativeOriginalSize?: [number, number];
  negativeTargetSize?: [number, number];
  negativeCropsCoordsTopLeft?: [number, number];
}

/** SDXL img2img `_get_add_time_ids`: [orig_h, orig_w, crop_top, crop_left, target_h, target_w | aesthetic]. */
export function sdxlTimeIds(options: SdxlTimeIdsOptions): { addTimeIds: number[]; addNegTimeIds: number[] } {
  const crop = options.cropsCoordsTopLeft ?? [0, 0];
  const negativeOriginal = options.negativeOriginalSize ?? options.originalSize;
  const negativeTarget = options.negativeTargetSize ?? options.targetSize;
  const negativeCrop = options.negativeCropsCoordsTopLeft ?? crop;
  if (options.requiresAestheticsScore) {
    return {
      addTimeIds: [...options.originalSize, ...crop, options.aestheticScore ?? 6],
      addNegTimeIds: [...negativeOriginal, ...negativeCrop, options.negativeAestheticScore ?? 2.5],
    };
  }
  return {
    addTimeIds: [...options.originalSize, ...crop, ...options.targetSize],
    addNegTimeIds: [...negativeOriginal, ...negativeCrop, ...negativeTarget],
  };
}
