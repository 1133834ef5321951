import type { DecodeResult } from '../../pipeline/decode.js';
import { decodeResolver } from '../../resolvers/decode.js';
import { ticketOf } from '../../resolvers/metering.js';
import { builder } from '../builder.js';
import { DeliveryEnum, ImageFormatEnum, LatentDTypeEnum } from './enums.js';
import { PlanType } from './plan.js';

export const DecodedImageType = builder.objectRef<DecodeResult['images'][number]>('DecodedImage').implement({
  fields: (t) => ({
    format: t.field({ type: ImageFormatEnum, resolve: (i) => i.format }),
    mimeType: t.exposeString('mimeType'),
    width: t.exposeInt('width'),
    height: t.exposeInt('height'),
    data: t.exposeString('data', { nullable: true, description: 'Base64 of the encoded image (BASE64 delivery).' }),
    url: t.exposeString('url', { nullable: true }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (i) => i.expiresAt }),
    sha256: t.exposeString('sha256'),
    byteLength: t.exposeInt('byteLength'),
  }),
});

export const DecodeResultType = builder.objectRef<DecodeResult>('DecodeResult').implement({
  fields: (t) => ({
    model: t.exposeString('model'),
    images: t.field({
      type: [DecodedImageType],
      description: 'One image per latent in the batch.',
      resolve: (r) => r.images,
    }),
    scalingFactor: t.exposeFloat('scalingFactor'),
    shiftFactor: t.exposeFloat('shiftFactor'),
    route: t.field({ type: PlanType, resolve: (r) => r.plan }),
    seconds: t.exposeFloat('seconds'),
  }),
});

export const LatentTensorInput = builder.inputType('LatentTensorInput', {
  fields: (t) => ({
    data: t.string({ required: true, description: 'Base64 of the raw little-endian bytes.' }),
    shape: t.intList({ required: true, description: '[batch, channels, height, width]' }),
    dtype: t.field({ type: LatentDTypeEnum, required: false, defaultValue: 'float32' }),
  }),
});

/** Where the latent comes from: exactly one of the two (GraphQL checks it, as for any @oneOf input). */
export const LatentSource = builder.inputType('LatentSource', {
  isOneOf: true,
  description: 'The latent: exactly one of `tensor` or `url`.',
  fields: (t) => ({
    tensor: t.field({ type: LatentTensorInput, required: false, description: 'The tensor inline.' }),
    url: t.string({ required: false, description: 'A latent URL this gateway returned.' }),
  }),
});

export const DecodeInput = builder.inputType('DecodeInput', {
  fields: (t) => ({
    latent: t.field({ type: LatentSource, required: true }),
    model: t.string({ required: true }),
    scalingFactor: t.float({ required: false }),
    shiftFactor: t.float({ required: false }),
    format: t.field({ type: ImageFormatEnum, required: false, defaultValue: 'png' }),
    delivery: t.field({ type: DeliveryEnum, required: false, defaultValue: 'BASE64' }),
  }),
});

builder.mutationField('decode', (t) =>
  t.field({
    type: DecodeResultType,
    description: 'Decodes a latent into images.',
    args: { input: t.arg({ type: DecodeInput, required: true }) },
    resolve: (_root, { input }, ctx, info) => decodeResolver(ctx, input, ticketOf(ctx, info)),
  }),
);
