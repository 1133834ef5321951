/**
 * Another latentgate: its GraphQL `img2img` mutation, the image inline as base64, the result as
 * one BASE64 PNG and the seed it ran with (a decimal string, as the Seed scalar returns it).
 * Every request option has a field there, so nothing is refused here.
 */
import { ProtocolMismatch } from '../codec.js';
import type { UpstreamConfig } from '../config.js';
import { UpstreamError } from '../http-client.js';
import { answerImage, decodeBase64, type Img2ImgCall, type Img2ImgClient, jsonObject } from './common.js';

export const LATENTGATE_IMG2IMG_MUTATION = `mutation UpstreamImg2Img($input: Img2ImgInput!) {
  img2img(input: $input) { seed width height images { mimeType width height data } }
}`;

/** Codes that say the request was refused (not that the endpoint is unwell): no breaker verdict. */
const REQUEST_CODES = new Set([
  'BAD_REQUEST',
  'UNKNOWN_MODEL',
  'UNSUPPORTED_OPERATION',
  'INVALID_IMAGE',
  'IMAGE_TOO_LARGE',
  'UNSUPPORTED_DTYPE',
]);

export function latentgateInput(call: Img2ImgCall, config: UpstreamConfig) {
  const { request } = call;
  return {
    model: config.remoteModel ?? config.model,
    image: { base64: call.image.base64 },
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    strength: request.strength,
    steps: request.steps,
    guidanceScale: request.guidanceScale,
    seed: call.seed.toString(),
    scheduler: request.scheduler,
    format: 'PNG',
    delivery: 'BASE64',
  };
}

function graphqlErrors(errors: unknown): never {
  const list = Array.isArray(errors) ? errors : [];
  const first = (list[0] ?? {}) as { message?: unknown; extensions?: { code?: unknown } };
  const code = typeof first.extensions?.code === 'string' ? first.extensions.code : 'no code';
  const message = `GraphQL error ${code}: ${typeof first.message === 'string' ? first.message : JSON.stringify(first)}`;
  // A refused request reads as a 4xx (tried elsewhere, endpoint not blamed); anything else counts against it.
  if (REQUEST_CODES.has(code)) throw new UpstreamError('status', message, 422);
  throw new UpstreamError('protocol', message);
}

export const latentgateClient: Img2ImgClient = {
  refusal: () => null,

  build(call, config) {
    return {
      url: config.url,
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'application/graphql-response+json, application/json',
      },
      body: Buffer.from(
        JSON.stringify({ query: LATENTGATE_IMG2IMG_MUTATION, variables: { input: latentgateInput(call, config) } }),
      ),
    };
  },

  async read(call, response) {
    const body = jsonObject(response.body, 'the GraphQL answer');
    if (body.errors !== undefined) graphqlErrors(body.errors);
    const data = body.data as { img2img?: unknown } | null | undefined;
    const result = data?.img2img as Record<string, unknown> | null | undefined;
    if (!result || typeof result !== 'object') throw new ProtocolMismatch('the answer has no data.img2img');
    const images = result.images;
    if (!Array.isArray(images) || images.length !== 1)
      throw new ProtocolMismatch(
        `data.img2img.images must hold one image; it holds ${JSON.stringify(images)?.slice(0, 80)}`,
      );
    const image = images[0] as Record<string, unknown>;
    const seedText = result.seed;
    if (!(typeof seedText === 'string' && /^\d+$/.test(seedText)) && !Number.isSafeInteger(seedText))
      throw new ProtocolMismatch(`data.img2img.seed is ${JSON.stringify(seedText)}, not an integer`);
    const seed = BigInt(seedText as string | number);
    if (seed !== call.seed) throw new ProtocolMismatch(`the answer ran seed ${seed}, not the seed sent (${call.seed})`);
    const answer = await answerImage(decodeBase64(image.data, 'data.img2img.images[0].data'), seed);
    if (image.width !== answer.width || image.height !== answer.height || image.mimeType !== answer.contentType)
      throw new ProtocolMismatch(
        `images[0] says ${image.mimeType} ${image.width}x${image.height}, ` +
          `but its bytes are ${answer.contentType} ${answer.width}x${answer.height}`,
      );
    return answer;
  },
};
