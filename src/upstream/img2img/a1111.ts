/**
 * AUTOMATIC1111's web UI API, `POST /sdapi/v1/img2img` (StableDiffusionImg2ImgProcessingAPI):
 * `init_images` as base64, `denoising_strength`, `steps`, `cfg_scale`, `seed`, `sampler_name`,
 * and the output `width`/`height` (it resizes the init image to them; sent as the init image's
 * size rounded down to multiples of 8, the size diffusers gives). The answer (ImageToImageResponse)
 * is `{images: [base64], parameters, info}` where `info` is a JSON string holding `seed`.
 * A1111 samples with its own noise, so a seed there does not reproduce diffusers' result.
 */
import type { SchedulerName } from '../../pipeline/img2img-types.js';
import { ProtocolMismatch } from '../codec.js';
import { answerImage, decodeBase64, type Img2ImgClient, jsonObject, jsonWithBigInts } from './common.js';

/** A1111 sampler names; FLOW_MATCH_EULER has none. */
export const A1111_SAMPLERS: Partial<Record<SchedulerName, string>> = {
  EULER: 'Euler',
  EULER_ANCESTRAL: 'Euler a',
  DDIM: 'DDIM',
  LCM: 'LCM',
  PNDM: 'PLMS',
};

export const a1111Client: Img2ImgClient = {
  refusal(request) {
    if (request.scheduler === null || A1111_SAMPLERS[request.scheduler]) return null;
    return (
      `scheduler ${request.scheduler} has no A1111 sampler (protocol "a1111" takes ` +
      `${Object.keys(A1111_SAMPLERS).join(', ')})`
    );
  },

  build(call, config) {
    const { request, image } = call;
    const body: Record<string, unknown> = {
      init_images: [image.base64],
      prompt: request.prompt,
      ...(request.negativePrompt === null ? {} : { negative_prompt: request.negativePrompt }),
      denoising_strength: request.strength,
      steps: request.steps,
      cfg_scale: request.guidanceScale,
      seed: call.seed,
      // Without a scheduler the endpoint's own default sampler runs.
      ...(request.scheduler === null ? {} : { sampler_name: A1111_SAMPLERS[request.scheduler] }),
      width: image.outputWidth,
      height: image.outputHeight,
      batch_size: 1,
      n_iter: 1,
      ...(config.remoteModel ? { override_settings: { sd_model_checkpoint: config.remoteModel } } : {}),
    };
    return {
      url: config.url,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: Buffer.from(jsonWithBigInts(body)),
    };
  },

  async read(call, response) {
    const body = jsonObject(response.body, 'the answer');
    const images = body.images;
    if (!Array.isArray(images) || images.length === 0)
      throw new ProtocolMismatch('the answer has no images (a list of base64 strings)');
    if (typeof body.info !== 'string') throw new ProtocolMismatch('the answer has no info (a JSON string)');
    const info = jsonObject(Buffer.from(body.info), 'info');
    // The digits as written: JSON.parse would round a seed beyond 2^53.
    const digits = /"seed"\s*:\s*(-?\d+)\s*[,}]/.exec(body.info)?.[1];
    if (typeof info.seed !== 'number' || digits === undefined)
      throw new ProtocolMismatch(`info.seed is ${JSON.stringify(info.seed)}, not an integer`);
    const seed = BigInt(digits);
    if (seed !== call.seed) throw new ProtocolMismatch(`info.seed is ${seed}, not the seed sent (${call.seed})`);
    const answer = await answerImage(decodeBase64(images[0], 'images[0]'), seed);
    if (answer.width !== call.image.outputWidth || answer.height !== call.image.outputHeight)
      throw new ProtocolMismatch(
        `the image is ${answer.width}x${answer.height}; ${call.image.outputWidth}x${call.image.outputHeight} was asked`,
      );
    return answer;
  },
};
