/** Latents in and out of the gateway: scaling conventions, dtype codecs and validation. */
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Nchw } from '../gpu/tensor.js';
import type { ModelDefinition } from '../models/model.js';
import {
  BYTES_PER_ELEMENT,
  decodeTensor,
  elementCount,
  encodeTensor,
  FLOAT_DTYPES,
  type FloatDType,
  isFloatDType,
} from '../tensors/dtype.js';

export type LatentDType = FloatDType;

export interface Scaling {
  scalingFactor: number;
  shiftFactor: number;
}

/** Explicit factors win; otherwise the model's defaults. Zero scaling cannot be reversed, so it is refused. */
export function resolveScaling(
  model: ModelDefinition,
  scalingFactor?: number | null,
  shiftFactor?: number | null,
): Scaling {
  const scaling = {
    scalingFactor: scalingFactor ?? model.family.scalingFactor,
    shiftFactor: shiftFactor ?? model.family.shiftFactor,
  };
  if (!Number.isFinite(scaling.scalingFactor) || scaling.scalingFactor === 0 || !Number.isFinite(scaling.shiftFactor)) {
    throw new GatewayError(
      'BAD_REQUEST',
      `scalingFactor must be a finite non-zero number and shiftFactor finite; ` +
        `got ${scaling.scalingFactor} and ${scaling.shiftFactor}`,
    );
  }
  // Latents are scaled in float32: a factor (or the reciprocal decode divides by) beyond its range overflows
  // every value it touches.
  const scale = Math.abs(scaling.scalingFactor);
  if (scale > FLOAT32_MAX || 1 / scale > FLOAT32_MAX || Math.abs(scaling.shiftFactor) > FLOAT32_MAX) {
    throw new GatewayError(
      'BAD_REQUEST',
      `scalingFactor ${scaling.scalingFactor} or shiftFactor ${scaling.shiftFactor} overflows float32, in which ` +
        `latents are scaled; each (and 1/scalingFactor) must be at most ${FLOAT32_MAX} in magnitude`,
      { ...scaling, max: FLOAT32_MAX },
    );
  }
  return scaling;
}

const FLOAT32_MAX = 3.4028234663852886e38;

const LARGEST: Record<LatentDType, number> = {
  float32: FLOAT32_MAX,
  float16: 65504,
  bfloat16: 3.3895313892515355e38,
};

/** The smallest magnitude that rounds to infinity in each dtype (round to nearest even). */
const OVERFLOW_AT: Record<LatentDType, number> = {
  float32: Number.POSITIVE_INFINITY,
  float16: 65520,
  bfloat16: (2 - 2 ** -8) * 2 ** 127,
};

/** Values that are NaN, infinite or would round to infinity in `dtype`: how many, and the first one's index. */
function unrepresentable(values: Float32Array, dtype: LatentDType): { count: number; first: number } {
  const limit = OVERFLOW_AT[dtype];
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // NaN fails both comparisons.
    if (!(v < limit && v > -limit)) {
      if (count === 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** Refuses a latent with NaN or infinite values (it would decode to a black image, silently). */
export function checkFinite(values: Float32Array, what: string): void {
  const { count, first } = unrepresentable(values, 'float32');
  if (count > 0)
    throw new GatewayError(
      'INVALID_LATENT',
      `the ${what} has ${count} NaN or infinite value(s), the first at index ${first}; every value must be finite`,
      { nonFinite: count, firstIndex: first },
    );
}

/**
 * Refuses a scaled latent whose values `dtype` cannot hold (checked on the result, before delivery: the
 * encoder's output range is only known once it ran). Encode: `(z - shift) * scale`; decode input: `z / scale + shift`.
 */
export function checkScaled(values: Float32Array, dtype: LatentDType, scaling: Scaling, what: string): void {
  const { count, first } = unrepresentable(values, dtype);
  if (count > 0)
    throw new GatewayError(
      'INVALID_LATENT',
      `scalingFactor ${scaling.scalingFactor} and shiftFactor ${scaling.shiftFactor} make ${count} value(s) of the ` +
        `${what} overflow ${dtype} (largest ${LARGEST[dtype]}), the first at index ${first}; ` +
        'use smaller factors' +
        (dtype === 'float32' ? '' : ' or dtype float32'),
      { ...scaling, dtype, overflowing: count, firstIndex: first },
    );
}

/** diffusers' convention on encode: `(z - shift) * scale`, into `out` (which may be `values` itself). */
export function applyScaling(
  values: Float32Array,
  { scalingFactor, shiftFactor }: Scaling,
  out: Float32Array = new Float32Array(values.length),
): Float32Array {
  if (scalingFactor === 1 && shiftFactor === 0) return values;
  for (let i = 0; i < values.length; i++) out[i] = (values[i] - shiftFactor) * scalingFactor;
  return out;
}

/** And its inverse on decode: `z / scale + shift`. */
export function reverseScaling(values: Float32Array, { scalingFactor, shiftFactor }: Scaling): Float32Array {
  if (scalingFactor === 1 && shiftFactor === 0) return values;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] / scalingFactor + shiftFactor;
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function parseLatentDType(value: string): LatentDType {
  if (!isFloatDType(value)) {
    throw new GatewayError(
      'UNSUPPORTED_DTYPE',
      `latent dtype "${value}" is not supported; allowed: ${FLOAT_DTYPES.join(', ')}`,
      {
        dtype: value,
        allowed: FLOAT_DTYPES,
      },
    );
  }
  return value;
}

export function encodeLatent(latent: Nchw, dtype: LatentDType): Buffer {
  return encodeTensor(latent.data, dtype);
}

export interface RawLatent {
  bytes: Uint8Array;
  shape: number[];
  dtype: string;
}

/** Checks a latent sent for decoding against the model, and turns it into float32 NCHW. */
export function readLatent(raw: RawLatent, model: ModelDefinition, maxBytes: number): Nchw {
  const dtype = parseLatentDType(raw.dtype);
  const { shape } = raw;
  if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new GatewayError(
      'LATENT_SHAPE_MISMATCH',
      `latent shape [${shape}] must be 4 positive integers [batch, channels, height, width]`,
      { shape },
    );
  }
  const expectedBytes = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
  if (raw.bytes.length > maxBytes) {
    throw new GatewayError('LATENT_TOO_LARGE', `latent is ${raw.bytes.length} bytes; the limit is ${maxBytes} bytes`, {
      bytes: raw.bytes.length,
      maxBytes,
    });
  }
  if (raw.bytes.length !== expectedBytes) {
    throw new GatewayError(
      'LATENT_SHAPE_MISMATCH',
      `latent data is ${raw.bytes.length} bytes, but shape [${shape}] of ${dtype} needs ${expectedBytes} bytes`,
      { bytes: raw.bytes.length, expectedBytes, shape, dtype },
    );
  }
  if (shape[1] !== model.latentChannels) {
    throw new GatewayError(
      'LATENT_CHANNELS_MISMATCH',
      `latent has ${shape[1]} channels; model "${model.id}" takes ${model.latentChannels}`,
      { channels: shape[1], expected: model.latentChannels, model: model.id },
    );
  }
  const data = decodeTensor(raw.bytes, dtype);
  checkFinite(data, 'latent');
  return { data, dims: shape as Nchw['dims'] };
}
