/**
 * Shipped memory profiles (see estimator.ts for the model and the evidence). All numbers are at
 * float16: the measurements are fp16 VAE encode on CUDA (PyTorch), peak bytes of the caching
 * allocator, CUDA context excluded.
 *
 * - sd15 / sdxl encode: fitted (relative least squares, `fitProfile`) to every non-OOM row, whole
 *   and tiled, of /shared/fixtures/vram/vae-encode-measured.csv (RTX 4090, 3090, 3080). The test
 *   test/estimator.test.ts refits from the CSV and checks these constants, so they cannot drift.
 * - decode (all KL families) and flux1: derived, uncalibrated (see estimator.ts header).
 * - tiny autoencoders: derived from activation sizes, uncalibrated (see taeProfiles).
 */
import type { FitStats, MemoryProfile, ModelMemoryProfiles } from './estimator.js';

const MEASURED = 'fixtures/vram/vae-encode-measured.csv';

/**
 * Weights of the SD-style AutoencoderKL at fp16: ~83.7M parameters (assumed round figure for the
 * 128/256/512/512-channel encoder + decoder; not re-counted here) x 2 bytes. The part of a fitted
 * intercept up to this size is taken to scale with dtype; the rest does not.
 */
export const KL_WEIGHT_BYTES_FP16 = 167_000_000;

/** Decode / encode bytes-per-pixel ratio assumed for AutoencoderKL (InvokeAI: 2200 vs 1100). */
export const KL_DECODE_OVER_ENCODE = 2;

// Fitted to the CSV (relative least squares over all non-OOM whole + tiled rows, fp16).
// `fit` is the fit over those samples (fractions): sd15 never under-estimates by more than 4.5%
// (its 26% over-estimate is sd15 2048^2 on the 10 GiB 3080, which ran leaner than on 24 GiB
// cards); sdxl under-estimates by up to 15.4% (2048^2 on the RTX 3090) and over-estimates the
// RTX 4090 by up to 13%: callers that must not OOM should add maxUnderestimate as headroom.
const SD15_ENCODE = { fixedBytes: 165_289_495, bytesPerPixel: 2745.27, fit: { samples: 24, mape: 0.0327, maxUnderestimate: 0.0451, maxOverestimate: 0.254 } };
const SDXL_ENCODE = { fixedBytes: 356_397_006, bytesPerPixel: 3958.5, fit: { samples: 23, mape: 0.0613, maxUnderestimate: 0.1544, maxOverestimate: 0.1315 } };

function klProfiles(model: string, encode: { fixedBytes: number; bytesPerPixel: number; fit?: FitStats }, opts: { encodeCalibrated: boolean; encodeSource: string; latentChannels: number; defaultTile: number }): ModelMemoryProfiles {
  const weightBytes = Math.min(encode.fixedBytes, KL_WEIGHT_BYTES_FP16);
  const enc: MemoryProfile = {
    id: `${model}/encode`,
    fixedBytes: encode.fixedBytes,
    weightBytes,
    bytesPerPixel: encode.bytesPerPixel,
    dtype: 'float16',
    calibrated: opts.encodeCalibrated,
    source: opts.encodeSource,
    ...(opts.encodeCalibrated && encode.fit ? { fit: { ...encode.fit } } : {}),
  };
  const dec: MemoryProfile = {
    id: `${model}/decode`,
    fixedBytes: encode.fixedBytes,
    weightBytes,
    bytesPerPixel: encode.bytesPerPixel * KL_DECODE_OVER_ENCODE,
    dtype: 'float16',
    calibrated: false,
    source: `derived: ${model} encode profile with bytesPerPixel x${KL_DECODE_OVER_ENCODE} (decoder runs 128-256 channels at full resolution; InvokeAI vae_working_memory.py uses decode = 2x encode); uncalibrated until measured`,
  };
  return { model, encode: enc, decode: dec, defaultTile: opts.defaultTile, latentChannels: opts.latentChannels, downscaleFactor: 8, encoderOutputChannels: 2 * opts.latentChannels };
}

export interface TaeProfileOptions {
  model: string;
  latentChannels: number;
  /** 8 for taesd-style, 32 for taesana. */
  downscaleFactor: number;
  /** Channels of the full-resolution layers (64 in taesd/taesdxl/taef1; assumed 64 for others). */
  internalChannels?: number;
  /** Weight bytes of one network at fp16; default 8 MiB (assumed upper bound: taesd-style halves are on the order of 1M parameters, not re-counted). */
  weightBytes?: number;
  defaultTile?: number;
}

/**
 * Tiny autoencoder (TAESD family, run through ONNX Runtime) profile, DERIVED, uncalibrated.
 * Activations: the peak is in the full-resolution layers (encoder: first conv + block; decoder:
 * last upsample + conv + block), where a residual block keeps its input (for the skip), one
 * intermediate and its output alive, plus the upsampled/conv input: ~4 tensors of
 * `internalChannels` per pixel. x1.5 headroom for the ONNX Runtime BFC arena, whose default
 * extend strategy rounds chunk sizes up (next power of two). 4 x 64 ch x 2 B x 1.5 = 768 B/px at
 * fp16, i.e. ~0.75 GiB at 1024^2 and ~3 GiB at 2048^2 (an AutoencoderKL encode needs ~3.6x more).
 * Fixed: weights + 64 MiB for cuDNN workspace / arena initial chunk. The latent-resolution stage
 * run on the whole map is 1/downscale^2 of that and is covered by the headroom.
 */
export function taeProfiles(options: TaeProfileOptions): ModelMemoryProfiles {
  const channels = options.internalChannels ?? 64;
  const weightBytes = options.weightBytes ?? 8 * 2 ** 20;
  const bytesPerPixel = 4 * channels * 2 * 1.5;
  const make = (operation: 'encode' | 'decode'): MemoryProfile => ({
    id: `${options.model}/${operation}`,
    fixedBytes: weightBytes + 64 * 2 ** 20,
    weightBytes,
    bytesPerPixel,
    dtype: 'float16',
    calibrated: false,
    source: `derived: tiny autoencoder, ~4 live ${channels}-channel full-resolution tensors x 1.5 arena headroom; uncalibrated until measured`,
  });
  return {
    model: options.model,
    encode: make('encode'),
    decode: make('decode'),
    defaultTile: options.defaultTile ?? 512,
    latentChannels: options.latentChannels,
    downscaleFactor: options.downscaleFactor,
    encoderOutputChannels: options.latentChannels,
  };
}

/** Known tiny autoencoders: latent channels and downscale factor. */
export const TAE_MODELS: Readonly<Record<string, { latentChannels: number; downscaleFactor: number }>> = {
  taesd: { latentChannels: 4, downscaleFactor: 8 },
  taesdxl: { latentChannels: 4, downscaleFactor: 8 },
  taesd3: { latentChannels: 16, downscaleFactor: 8 },
  taef1: { latentChannels: 16, downscaleFactor: 8 },
  taef2: { latentChannels: 32, downscaleFactor: 8 },
  taesana: { latentChannels: 32, downscaleFactor: 32 },
};

const SHIPPED: Record<string, ModelMemoryProfiles> = {
  sd15: klProfiles('sd15', SD15_ENCODE, { encodeCalibrated: true, encodeSource: `fitted to ${MEASURED} (sd15 rows, whole + tiled, 3 GPUs)`, latentChannels: 4, defaultTile: 512 }),
  sdxl: klProfiles('sdxl', SDXL_ENCODE, { encodeCalibrated: true, encodeSource: `fitted to ${MEASURED} (sdxl rows, whole + tiled, 3 GPUs)`, latentChannels: 4, defaultTile: 1024 }),
  flux1: klProfiles('flux1', SD15_ENCODE, {
    encodeCalibrated: false,
    encodeSource: 'derived: sd15 encode fit (same AutoencoderKL trunk; 16 latent channels only change the 1/8-resolution layers); uncalibrated until measured',
    latentChannels: 16,
    defaultTile: 1024,
  }),
  // Generic tiny autoencoder for the `tae` family (taesd-like); prefer the per-model entries.
  tae: taeProfiles({ model: 'tae', latentChannels: 4, downscaleFactor: 8 }),
  ...Object.fromEntries(Object.entries(TAE_MODELS).map(([model, m]) => [model, taeProfiles({ model, ...m })])),
};

/**
 * Shipped profiles for a family id (sd15, sdxl, flux1, tae) or a known tiny-autoencoder id
 * (taesd, taesdxl, taesd3, taef1, taef2, taesana); undefined otherwise. Returns a fresh copy
 * (safe to mutate or serialise).
 */
export function shippedProfiles(id: string): ModelMemoryProfiles | undefined {
  const found = Object.prototype.hasOwnProperty.call(SHIPPED, id) ? SHIPPED[id] : undefined;
  return found ? structuredClone(found) : undefined;
}
