import { COLOUR_MANAGEMENT, type ResizeReport } from '../../imaging/images.js';
import type { EncodeResult } from '../../pipeline/encode.js';
import { encodeResolver } from '../../resolvers/encode.js';
import { ticketOf } from '../../resolvers/metering.js';
import { builder } from '../builder.js';
import { DeliveryEnum, LatentDTypeEnum } from './enums.js';
import { PlanType } from './plan.js';

export const LatentType = builder.objectRef<EncodeResult['latent']>('Latent').implement({
  description: 'A latent tensor: raw little-endian bytes, inline as base64 or behind a URL.',
  fields: (t) => ({
    shape: t.exposeIntList('shape'),
    dtype: t.field({ type: LatentDTypeEnum, resolve: (l) => l.dtype }),
    data: t.exposeString('data', { nullable: true, description: 'Base64 of the raw bytes (BASE64 delivery).' }),
    url: t.exposeString('url', {
      nullable: true,
      description: 'GET returns the raw bytes with shape and dtype headers (URL delivery).',
    }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (l) => l.expiresAt }),
    sha256: t.exposeString('sha256', { description: 'Of the raw bytes.' }),
    byteLength: t.exposeInt('byteLength'),
  }),
});

export const ColourManagementEnum = builder.enumType('ColourManagement', {
  description:
    'How stored samples become RGB. NONE (the default) reads the values as stored, ignoring any ICC profile, as ' +
    'Pillow and so diffusers do; SRGB converts through the embedded profile to sRGB.',
  values: COLOUR_MANAGEMENT,
});

export const ResizeMethodEnum = builder.enumType('ResizeMethod', {
  description: "PIL_LANCZOS: Pillow's Image.resize(..., LANCZOS), bit for bit, as diffusers' VaeImageProcessor.",
  values: ['PIL_LANCZOS'] as const,
});

const SizeType = builder.objectRef<{ width: number; height: number }>('ImageSize').implement({
  fields: (t) => ({ width: t.exposeInt('width'), height: t.exposeInt('height') }),
});

export const ResizeType = builder.objectRef<ResizeReport>('Resize').implement({
  description: 'A resize that ran before encoding.',
  fields: (t) => ({
    method: t.field({ type: ResizeMethodEnum, resolve: (r) => r.method }),
    from: t.field({ type: SizeType, resolve: (r) => r.from }),
    to: t.field({ type: SizeType, resolve: (r) => r.to }),
  }),
});

export const EncodeResultType = builder.objectRef<EncodeResult>('EncodeResult').implement({
  fields: (t) => ({
    model: t.exposeString('model'),
    latent: t.field({ type: LatentType, resolve: (r) => r.latent }),
    width: t.exposeInt('width', { description: 'Width actually encoded.' }),
    height: t.exposeInt('height'),
    originalWidth: t.exposeInt('originalWidth'),
    originalHeight: t.exposeInt('originalHeight'),
    resized: t.exposeBoolean('resized', {
      description: 'True when the image was resized down to a multiple of the downscale factor.',
    }),
    resize: t.field({
      type: ResizeType,
      nullable: true,
      description: 'Which resize ran, from and to which size; null when none did.',
      resolve: (r) => r.resize,
    }),
    scalingFactor: t.exposeFloat('scalingFactor'),
    shiftFactor: t.exposeFloat('shiftFactor'),
    route: t.field({
      type: PlanType,
      description: 'The route taken and the estimate it was planned with.',
      resolve: (r) => r.plan,
    }),
    seconds: t.exposeFloat('seconds', { description: 'Run time on the device, without queueing.' }),
  }),
});

/** Where the image comes from: exactly one of the two (GraphQL checks it, as for any @oneOf input). */
export const ImageSource = builder.inputType('ImageSource', {
  isOneOf: true,
  description: 'The image (PNG, JPEG or WebP): exactly one of `upload` or `base64`.',
  fields: (t) => ({
    upload: t.field({
      type: 'File',
      required: false,
      description: 'A file of a GraphQL multipart request, e.g. at map path `variables.input.image.upload`.',
    }),
    base64: t.string({ required: false, description: 'The image bytes as base64.' }),
  }),
});

export const EncodeInput = builder.inputType('EncodeInput', {
  fields: (t) => ({
    image: t.field({ type: ImageSource, required: true }),
    model: t.string({ required: true }),
    scalingFactor: t.float({ required: false, description: "Defaults to the model's." }),
    shiftFactor: t.float({ required: false, description: "Defaults to the model's." }),
    dtype: t.field({ type: LatentDTypeEnum, required: false, defaultValue: 'float32' }),
    delivery: t.field({ type: DeliveryEnum, required: false, defaultValue: 'BASE64' }),
    colourManagement: t.field({
      type: ColourManagementEnum,
      required: false,
      defaultValue: 'NONE',
      description: 'NONE: the stored samples, as diffusers reads them. SRGB: converted through the ICC profile.',
    }),
  }),
});

builder.mutationField('encode', (t) =>
  t.field({
    type: EncodeResultType,
    description: 'Encodes an image into a latent.',
    args: { input: t.arg({ type: EncodeInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => encodeResolver(ctx, input, ticketOf(ctx, info)),
  }),
);
