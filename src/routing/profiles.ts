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
import type { FitStats, MemoryProfile, ModelMemoryProfiles } from './memory-profile.js';

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
const SD15_ENCODE = {
  fixedBytes: 165_289_495,
  bytesPerPixel: 2745.27,
  fit: { samples: 24, mape: 0.0327, maxUnderestimate: 0.0451, maxOverestimate: 0.254 },
};
const SDXL_ENCODE = {
  fixedBytes: 356_397_006,
  bytesPerPixel: 3958.5,
  fit: { samples: 23, mape: 0.0613, maxUnderestimate: 0.1544, maxOverestimate: 0.1315 },
};

function klProfiles(
  model: string,
  encode: { fixedBytes: number; bytesPerPixel: number; fit?: FitStats },
  opts: { encodeCalibrated: boolean; encodeSource: string; latentChannels: number; defaultTile: number },
): ModelMemoryProfiles {
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
  return {
    model,
    encode: enc,
    decode: dec,
    defaultTile: opts.defaultTile,
    latentChannels: opts.latentChannels,
    downscaleFactor: 8,
    encoderOutputChannels: 2 * opts.latentChannels,
  };
}

export interface TaeProfileOptions {
  model: string;
  latentChannels: number;
  /** 8 for taesd-style, 32 for taesana. */
  downscaleFactor: number;
  /** Channels of the full-resolution layers (64 in taesd/taesdxl/taef1; assumed 64 for others). */
  internalChannels?: number;
  /**
   * How much smaller (per side) than the image the highest-resolution internal layer is: 1 for
   * taesd-style encoders/decoders (a 64-channel conv at full resolution), 2 for taesana (its first
   * convolution has stride 2). Default 1 (the conservative choice for an unknown network).
   */
  internalDownscale?: number;
  /**
   * Channels of the GroupNorm branches at latent resolution (taef2: 256); 0 when there are none.
   * Default 256, the conservative choice for an unknown tiny autoencoder.
   */
  globalBranchChannels?: number;
  /** GroupNorm blocks at latent resolution (taef2: 3); default 3 where there are branches. */
  globalBlocks?: number;
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
 * Fixed: weights + 64 MiB for cuDNN workspace / arena initial chunk.
 *
 * Latent stage of a tiled run (see estimator.ts):
 * - without GroupNorm branches it runs whole: ~6 live `internalChannels` tensors at 1/f^2 of the
 *   pixels, x1.5 arena headroom: (6 x 64) x 2 B x 1.5 / 64 = 18 B/px at fp16 (taesd-style), plus
 *   96 MiB for creating its onnxruntime session (a fresh session of the taef2 or taesana latent
 *   stage measured 20..73 MiB on CPU at sizes where its activations are negligible).
 * - with them (taef2) it runs in tiles with whole-map GroupNorm statistics (src/gpu/latent-
 *   stage.ts). Whole map: 4 `internalChannels` float32 maps in the host process (a step's input
 *   and output, and one of each not yet collected) = 4 x 64 x 4 B / 64 = 16 B/px at float32,
 *   stated as 8 at fp16 (so float32 gives 16). Per tile pixel, each GroupNorm block has two
 *   sessions whose arenas keep one tile's activations: the statistics pass (2 `globalBranch
 *   Channels` tensors) and the block (3 of them plus ~6 `internalChannels`), x1.6 for the halo
 *   (a 32 px latent core with 4 px each side is 1.56x the core): taef2
 *   3 x (5 x 256 + 6 x 64) x 2 B x 1.6 / 64 = 250 B per tile pixel at fp16. No arena factor on
 *   top: measured, this term is 1.7x under the derived one (below). Fixed: 48 MiB for its 6-7
 *   small sessions (weights under 1 MiB each; the whole stage measured 40 MiB in all for a 512 px
 *   image in 48 px cores).
 *
 * Measured on CPU (onnxruntime-node 1.30, float32, 2 cores; peak RSS growth of a fresh process
 * over one run, session creation included; see `latentgate calibrate`), against these derived
 * numbers at float32 (twice the fp16 ones), so the shipped default never under-estimates:
 * - taef2 whole encode: 101 / 294 / 497 / 1094 / 2316 MiB at 256 / 512 / 768 / 1024 / 1536 px,
 *   i.e. ~1000-1100 B/px at the larger sizes; derived 1536 B/px + 80 MiB (+40..60%).
 *   Whole decode: 95 / 296 / 1111 MiB at 256 / 512 / 1024 px (same per-pixel cost).
 * - taef2 latent stage run whole (before it ran in tiles): 101 / 348 / 1295 MiB at the latent
 *   maps of 1024 / 2048 / 4096 px images (encode; decode within 3%), slope 79 B per image pixel.
 *   Run in tiles (64 px latent cores, i.e. 512 px image tiles): 78..90 / 125 / 284 MiB encode
 *   (decode 298 MiB at 4096 px), input map included: slope 13.2 B per image pixel, derived 16;
 *   128 px cores took +190 MiB at 4096 px: ~234 B per extra (haloed) tile pixel, ~297 per core
 *   pixel at 64 px cores; derived 499 at float32. 512 px image with 48 px cores: 40 MiB
 *   (derived 122); 2048 px with 32 px cores: 105 MiB (derived 143). At 512 px tiles the derived
 *   stage is 48 + 256 + 125 = 429 MiB at 4096 px. A 4096x4096 taef2 tiled encode (512 px tiles, float32,
 *   2 GiB budget) measured a 734-763 MiB peak in all against 1118 MiB planned (bench/peak-memory.ts).
 * - taesana encode: 49 / 90 / 346 MiB at 512 / 1024 / 2048 px (~86 B/px); derived with
 *   internalDownscale 2: 384 B/px (4.5x over). Its latent stage: 24 / 45 / 133 MiB at 1024 /
 *   4096 / 8192 px (1.7 B/px); derived 2.25 B/px + 96 MiB.
 * - taef2 tiled encode (512 px tiles, overlap 128): 1024 px 583 MiB, 2048 px 836 MiB with
 *   onnxruntime's memory pattern on (each tile run after the first planned a second, larger
 *   block: +200 MiB), 625 MiB with it off, which is why the CPU sessions turn it off
 *   (src/gpu/onnx-runtime.ts).
 */
export function taeProfiles(options: TaeProfileOptions): ModelMemoryProfiles {
  const channels = options.internalChannels ?? 64;
  const weightBytes = options.weightBytes ?? 8 * 2 ** 20;
  const internalDownscale = options.internalDownscale ?? 1;
  const globalChannels = options.globalBranchChannels ?? 256;
  // internalDownscale describes the encoder's first layers; a decoder's last layers are assumed full resolution.
  const bytesPerPixel = { encode: (4 * channels * 2 * 1.5) / internalDownscale ** 2, decode: 4 * channels * 2 * 1.5 };
  const latentPixels = options.downscaleFactor ** 2;
  const latentStage = globalChannels
    ? {
        fixedBytes: 48 * 2 ** 20,
        bytesPerPixel: (4 * channels * 2) / latentPixels,
        tileBytesPerPixel: ((options.globalBlocks ?? 3) * (5 * globalChannels + 6 * channels) * 2 * 1.6) / latentPixels,
      }
    : { fixedBytes: 96 * 2 ** 20, bytesPerPixel: (6 * channels * 2 * 1.5) / latentPixels };
  const make = (operation: 'encode' | 'decode'): MemoryProfile => ({
    id: `${options.model}/${operation}`,
    fixedBytes: weightBytes + 64 * 2 ** 20,
    weightBytes,
    bytesPerPixel: bytesPerPixel[operation],
    latentStage: { ...latentStage },
    dtype: 'float16',
    calibrated: false,
    source:
      `derived: tiny autoencoder, ~4 live ${channels}-channel tensors at ${operation === 'encode' && internalDownscale > 1 ? `1/${internalDownscale ** 2} of the pixels` : 'full resolution'} x 1.5 arena headroom` +
      `${globalChannels ? `, ${globalChannels}-channel GroupNorm branches at latent resolution (tiled, whole-map statistics)` : ''}; uncalibrated until measured`,
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

/** Known tiny autoencoders: latent channels, downscale factor, and what shapes their memory. */
export const TAE_MODELS: Readonly<
  Record<
    string,
    {
      latentChannels: number;
      downscaleFactor: number;
      internalDownscale?: number;
      globalBranchChannels: number;
      globalBlocks?: number;
    }
  >
> = {
  taesd: { latentChannels: 4, downscaleFactor: 8, globalBranchChannels: 0 },
  taesdxl: { latentChannels: 4, downscaleFactor: 8, globalBranchChannels: 0 },
  taesd3: { latentChannels: 16, downscaleFactor: 8, globalBranchChannels: 0 },
  taef1: { latentChannels: 16, downscaleFactor: 8, globalBranchChannels: 0 },
  taef2: { latentChannels: 32, downscaleFactor: 8, globalBranchChannels: 256, globalBlocks: 3 },
  taesana: { latentChannels: 32, downscaleFactor: 32, internalDownscale: 2, globalBranchChannels: 0 },
};

const SHIPPED: Record<string, ModelMemoryProfiles> = {
  sd15: klProfiles('sd15', SD15_ENCODE, {
    encodeCalibrated: true,
    encodeSource: `fitted to ${MEASURED} (sd15 rows, whole + tiled, 3 GPUs)`,
    latentChannels: 4,
    defaultTile: 512,
  }),
  sdxl: klProfiles('sdxl', SDXL_ENCODE, {
    encodeCalibrated: true,
    encodeSource: `fitted to ${MEASURED} (sdxl rows, whole + tiled, 3 GPUs)`,
    latentChannels: 4,
    defaultTile: 1024,
  }),
  flux1: klProfiles('flux1', SD15_ENCODE, {
    encodeCalibrated: false,
    encodeSource:
      'derived: sd15 encode fit (same AutoencoderKL trunk; 16 latent channels only change the 1/8-resolution layers); uncalibrated until measured',
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
  const found = Object.hasOwn(SHIPPED, id) ? SHIPPED[id] : undefined;
  return found ? structuredClone(found) : undefined;
}
