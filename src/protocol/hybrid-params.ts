/**
 * The Hybrid Inference query parameters, parsed and checked (no I/O): what diffusers' `remote_encode`
 * and `remote_decode` send (huggingface/diffusers, src/diffusers/utils/remote_utils.py), written the
 * way `requests` writes a params dict: a list is one `shape=N` per item, a bool is `True`/`False`,
 * and Python's `None` may appear for a number left out. Every bad parameter is reported at once, in
 * one GatewayError whose code is the first problem's, in the order dtype, shape, the rest (a dtype's
 * is UNSUPPORTED_DTYPE, a shape's LATENT_SHAPE_MISMATCH, others BAD_REQUEST).
 */
import { z } from 'zod';
import type { ErrorCode } from '../errors.js';
import type { ColourManagement, ImageFormat } from '../imaging/images.js';
import type { ModelDefinition } from '../models/model.js';
import { type LatentDType, resolveScaling, type Scaling } from '../pipeline/latent-codec.js';
import { elementCount, FLOAT_DTYPES } from '../tensors/dtype.js';
import { integerText, type Problem, problemsError, validate } from '../validation/problems.js';
import { TENSOR_CONTENT_TYPE } from './wire.js';

/**
 * diffusers' scaling rules: given factors are applied (a missing one is neutral); with neither,
 * `do_scaling=True` (the deprecated default of remote_decode) means the model's own factors, and
 * otherwise the tensor is taken as already scaled.
 */
export type ScalingChoice =
  | { kind: 'given'; scalingFactor: number; shiftFactor: number }
  | { kind: 'model' }
  | { kind: 'none' };

export interface EncodeParams {
  scaling: ScalingChoice;
  /** A raw image tensor body in [-1, 1] (`shape` and `dtype` given), as [B, 3, H, W]; null for an image file. */
  tensor: { dims: [number, number, number, number]; dtype: LatentDType } | null;
  /** The answer's dtype: the tensor's own, else `dtype` (float32 by default). */
  dtype: LatentDType;
  /** `colour_management` for an image file: `none` (default, the stored samples) or `srgb`. */
  colourManagement: ColourManagement;
}

export interface DecodeParams {
  /** [B, C, H, W], or [B, tokens, features] for a packed latent. */
  shape: number[];
  dtype: LatentDType;
  /** The image size a packed (3-D) latent unpacks to; null for a 4-D latent. */
  packedSize: { height: number; width: number } | null;
  outputType: 'pil' | 'pt';
  imageFormat: ImageFormat;
  /** With `pt`: uint8 NHWC pixels instead of float NCHW. */
  partialPostprocess: boolean;
  /** A tensor answer: `pt`, or `pil` with `Accept: tensor/binary` (diffusers' "processor" flag, for video models). */
  wantsTensor: boolean;
  scaling: ScalingChoice;
}

const CODES: Record<string, ErrorCode> = { dtype: 'UNSUPPORTED_DTYPE', shape: 'LATENT_SHAPE_MISMATCH' };
const IMAGE_FORMATS = { jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp' } as const satisfies Record<
  string,
  ImageFormat
>;

/** Python's `None` for a parameter is the parameter left out. */
function orNone<S extends z.ZodType>(schema: S) {
  return z.preprocess((value) => (value === 'None' ? undefined : value), schema.optional());
}

const pythonBool = z.stringbool({
  truthy: ['true', '1'],
  falsy: ['false', '0', 'none'],
  case: 'insensitive',
  error: 'it must be a boolean: True or False',
});

const finiteNumber = z
  .string()
  .trim()
  .min(1, { error: 'it must be a number' })
  .pipe(z.coerce.number({ error: 'it must be a number' }));

const latentDType = z.enum(FLOAT_DTYPES, {
  error: (issue) => `${issue.input === undefined ? 'is required; ' : ''}allowed: ${FLOAT_DTYPES.join(', ')}`,
});

/** One `shape=N` per dimension (a single JSON list is taken too): 4 dimensions, or 3 for a packed latent. */
const shape = z.preprocess(
  (values) =>
    Array.isArray(values) && values.length === 1 && String(values[0]).trim().startsWith('[')
      ? jsonList(values[0])
      : values,
  z
    .array(integerText(1), {
      error: (issue) =>
        issue.input === undefined
          ? 'is required: one shape=N per dimension (shape=1&shape=4&shape=64&shape=64)'
          : undefined,
    })
    .min(3, { error: 'it must be 4 dimensions [batch, channels, height, width], or 3 for a packed latent' })
    .max(4, { error: 'it must be 4 dimensions [batch, channels, height, width], or 3 for a packed latent' })
    .refine((dims) => elementCount(dims) <= Number.MAX_SAFE_INTEGER / 8, { error: 'it is too large' }),
);

function jsonList(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return [text];
  }
}

const scalingParams = {
  scaling_factor: orNone(finiteNumber),
  shift_factor: orNone(finiteNumber),
  do_scaling: orNone(pythonBool),
};

function scalingChoice(p: { scaling_factor?: number; shift_factor?: number; do_scaling?: boolean }): ScalingChoice {
  if (p.scaling_factor !== undefined || p.shift_factor !== undefined)
    return { kind: 'given', scalingFactor: p.scaling_factor ?? 1, shiftFactor: p.shift_factor ?? 0 };
  return p.do_scaling ? { kind: 'model' } : { kind: 'none' };
}

const encodeSchema = z
  .object({
    dtype: latentDType.optional(),
    shape: shape.optional(),
    colour_management: z.enum(['none', 'srgb']).default('none'),
    ...scalingParams,
  })
  .superRefine((p, context) => {
    if (p.shape === undefined) return;
    if (p.dtype === undefined)
      context.addIssue({
        code: 'custom',
        path: ['dtype'],
        message: `is required with shape (an image tensor); allowed: ${FLOAT_DTYPES.join(', ')}`,
      });
    if (p.shape[p.shape.length - 3] !== 3)
      context.addIssue({
        code: 'custom',
        path: ['shape'],
        message: 'an image tensor has shape [B, 3, H, W] (or [3, H, W])',
        params: { code: 'BAD_REQUEST' },
      });
  })
  .transform(
    (p): EncodeParams => ({
      scaling: scalingChoice(p),
      tensor: p.shape
        ? {
            dims: (p.shape.length === 3 ? [1, ...p.shape] : p.shape) as [number, number, number, number],
            dtype: p.dtype!,
          }
        : null,
      dtype: p.dtype ?? 'float32',
      colourManagement: p.colour_management === 'srgb' ? 'SRGB' : 'NONE',
    }),
  );

function decodeSchema(accept: string) {
  return z
    .object({
      dtype: latentDType,
      shape,
      height: orNone(integerText(1)),
      width: orNone(integerText(1)),
      output_type: z.enum(['pil', 'pt']).default('pil'),
      image_format: z.enum(Object.keys(IMAGE_FORMATS) as [keyof typeof IMAGE_FORMATS]).default('jpg'),
      partial_postprocess: orNone(pythonBool),
      ...scalingParams,
    })
    .transform((p) => ({ ...p, wantsTensor: p.output_type === 'pt' || accept.includes(TENSOR_CONTENT_TYPE) }))
    .superRefine((p, context) => {
      if (p.shape.length === 3)
        for (const side of ['height', 'width'] as const)
          if (p[side] === undefined)
            context.addIssue({
              code: 'custom',
              path: [side],
              message: 'is required: a packed (3-D) latent needs the height and width parameters',
              params: { code: 'LATENT_SHAPE_MISMATCH' },
            });
      if (p.output_type === 'pil' && !p.wantsTensor && p.shape[0] !== 1)
        context.addIssue({
          code: 'custom',
          path: ['output_type'],
          message: `output_type=pil returns one image; the latent has batch ${p.shape[0]} (use output_type=pt)`,
        });
    })
    .transform(
      (p): DecodeParams => ({
        shape: p.shape,
        dtype: p.dtype,
        packedSize: p.shape.length === 3 ? { height: p.height!, width: p.width! } : null,
        outputType: p.output_type,
        imageFormat: IMAGE_FORMATS[p.image_format],
        partialPostprocess: p.partial_postprocess ?? false,
        wantsTensor: p.wantsTensor,
        scaling: scalingChoice(p),
      }),
    );
}

/** The query as an object: `shape` as its list of values, every other parameter as its first value. */
function queryObject(query: URLSearchParams): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const key of new Set(query.keys())) values[key] = key === 'shape' ? query.getAll(key) : query.get(key);
  return values;
}

function codeOf(problem: Problem): ErrorCode {
  return problem.code ?? CODES[String(problem.path[0])] ?? 'BAD_REQUEST';
}

export function parseEncodeParams(query: URLSearchParams): EncodeParams {
  const result = validate(encodeSchema, queryObject(query));
  if (!result.ok) throw problemsError(result.problems, codeOf);
  return result.value;
}

/** `accept` is the request's Accept header. */
export function parseDecodeParams(query: URLSearchParams, accept = ''): DecodeParams {
  const result = validate(decodeSchema(accept), queryObject(query));
  if (!result.ok) throw problemsError(result.problems, codeOf);
  return result.value;
}

/** The factors a ScalingChoice means for `model`. */
export function protocolScaling(model: ModelDefinition, choice: ScalingChoice): Scaling {
  if (choice.kind === 'given') return resolveScaling(model, choice.scalingFactor, choice.shiftFactor);
  if (choice.kind === 'model') return resolveScaling(model, null, null);
  return { scalingFactor: 1, shiftFactor: 0 };
}
