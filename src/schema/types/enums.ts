import { FLOAT_DTYPES, type FloatDType } from '../../tensors/dtype.js';
import { builder } from '../builder.js';

export const OperationEnum = builder.enumType('Operation', {
  description:
    'What a request or a planned run does: a VAE encode or decode, img2img (a model that serves it; a job), or an ' +
    'img2img stage that is not a VAE run (TEXT_ENCODE: the text encoders; DENOISE: the UNet, once per step).',
  values: {
    ENCODE: { value: 'encode' },
    DECODE: { value: 'decode' },
    IMG2IMG: { value: 'img2img' },
    TEXT_ENCODE: { value: 'textEncode' },
    DENOISE: { value: 'denoise' },
  } as const,
});

export const LatentDTypeEnum = builder.enumType('LatentDType', {
  values: Object.fromEntries(FLOAT_DTYPES.map((dtype) => [dtype.toUpperCase(), { value: dtype }])) as Record<
    Uppercase<FloatDType>,
    { value: FloatDType }
  >,
});

export const DeliveryEnum = builder.enumType('Delivery', {
  description: 'How a result comes back: inline base64, or a URL of this gateway that expires.',
  values: ['BASE64', 'URL'] as const,
});

export const ImageFormatEnum = builder.enumType('ImageFormat', {
  values: { PNG: { value: 'png' }, JPEG: { value: 'jpeg' }, WEBP: { value: 'webp' } } as const,
});

export const RouteEnum = builder.enumType('Route', {
  description:
    'Where a request runs: whole on a local device, tiled on a local device, on an upstream endpoint, or nowhere.',
  values: ['LOCAL', 'TILED', 'UPSTREAM', 'REJECT'] as const,
});
