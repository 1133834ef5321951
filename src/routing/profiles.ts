/**
 * Shipped memory profiles, all at float16. sd15/sdxl encode are fitted to measured peaks (CUDA);
 * decode, flux1 and the tiny autoencoders are derived and marked uncalibrated until `latentgate
 * calibrate` measures them. The numbers, their sources and their errors: docs/memory-model.md.
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

// Fitted to the CSV; test/estimator.test.ts refits and checks them. sdxl under-estimates by up
// to 15%: callers that must not OOM should add `fit.maxUnderestimate` as headroom.
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
    source:
      `derived: ${model} encode profile with bytesPerPixel x${KL_DECODE_OVER_ENCODE} ` +
      `(decoder runs 128-256 channels at full resolution; ` +
      `InvokeAI vae_working_memory.py uses decode = 2x encode); uncalibrated until measured`,
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
  /**
   * Weight bytes of one network at fp16; default 8 MiB (assumed upper bound: taesd-style halves are on the order of 1M
   * parameters, not re-counted).
   */
  weightBytes?: number;
  defaultTile?: number;
}

/**
 * Tiny autoencoder (TAESD family, run through ONNX Runtime) profile, DERIVED, uncalibrated: ~4
 * live `internalChannels` tensors per pixel in the full-resolution layers, x1.5 for the arena's
 * rounding; a tiled run adds its latent stage (whole-map, or in tiles with whole-map GroupNorm
 * statistics where the network has GroupNorm branches). Measured on CPU the derived numbers are
 * above every measurement, as a shipped default must be (docs/memory-model.md has both).
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
      `derived: tiny autoencoder, ~4 live ${channels}-channel tensors at ` +
      (operation === 'encode' && internalDownscale > 1
        ? `1/${internalDownscale ** 2} of the pixels`
        : 'full resolution') +
      ' x 1.5 arena headroom' +
      (globalChannels
        ? `, ${globalChannels}-channel GroupNorm branches at latent resolution (tiled, whole-map statistics)`
        : '') +
      '; uncalibrated until measured',
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
      'derived: sd15 encode fit (same AutoencoderKL trunk; ' +
      '16 latent channels only change the 1/8-resolution layers); uncalibrated until measured',
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
