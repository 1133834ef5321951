/** Validation of stored memory profiles (a calibration file under DATA_DIR/profiles). */
import { z } from 'zod';
import type { ModelMemoryProfiles, ModelStageProfiles } from './memory-profile.js';

const bytes = z.number().finite().nonnegative();
const positiveInteger = z.number().int().positive();

const fitStats = z.object({
  samples: z.number().int().nonnegative(),
  mape: bytes,
  maxUnderestimate: bytes,
  maxOverestimate: bytes,
});

const memoryProfile = z
  .object({
    id: z.string(),
    fixedBytes: bytes,
    weightBytes: bytes,
    bytesPerPixel: z.number().finite().positive(),
    dtype: z.enum(['float32', 'float16', 'bfloat16']),
    latentStage: z.object({ fixedBytes: bytes, bytesPerPixel: bytes, tileBytesPerPixel: bytes.optional() }).optional(),
    calibrated: z.boolean(),
    source: z.string(),
    fit: fitStats.optional(),
  })
  .refine((p) => p.weightBytes <= p.fixedBytes, {
    message: 'weightBytes must not exceed fixedBytes',
    path: ['weightBytes'],
  });

export const modelMemoryProfilesSchema = z.object({
  model: z.string(),
  encode: memoryProfile,
  decode: memoryProfile,
  defaultTile: positiveInteger,
  latentChannels: positiveInteger,
  downscaleFactor: positiveInteger,
  encoderOutputChannels: positiveInteger,
});

/** Validates parsed JSON as ModelMemoryProfiles; throws TypeError naming what is wrong. */
export function parseModelMemoryProfiles(value: unknown): ModelMemoryProfiles {
  const parsed = modelMemoryProfilesSchema.safeParse(value);
  if (!parsed.success) throw new TypeError(`memory profiles: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

const stageProfile = z
  .object({
    id: z.string(),
    fixedBytes: bytes,
    weightBytes: bytes,
    bytesPerBatchItem: bytes,
    bytesPerLatentPixel: bytes,
    attentionBytesPerLatentPixelSquared: bytes,
    dtype: z.enum(['float32', 'float16', 'bfloat16']),
    calibrated: z.boolean(),
    source: z.string(),
    fit: fitStats.optional(),
  })
  .refine((p) => p.weightBytes <= p.fixedBytes, {
    message: 'weightBytes must not exceed fixedBytes',
    path: ['weightBytes'],
  });

export const modelStageProfilesSchema = z.object({
  model: z.string(),
  textEncode: stageProfile,
  denoise: stageProfile,
  downscaleFactor: positiveInteger,
});

/** Validates parsed JSON as ModelStageProfiles (a stage calibration file); throws TypeError naming what is wrong. */
export function parseModelStageProfiles(value: unknown): ModelStageProfiles {
  const parsed = modelStageProfilesSchema.safeParse(value);
  if (!parsed.success) throw new TypeError(`stage memory profiles: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
