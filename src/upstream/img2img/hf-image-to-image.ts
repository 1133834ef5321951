/**
 * The Hugging Face Inference image-to-image task: POST JSON `{inputs: <base64 image>, parameters}`,
 * answered with the image's raw bytes and an image content type. The task documents `prompt`,
 * `negative_prompt`, `num_inference_steps`, `guidance_scale` and `target_size`; `strength` and
 * `seed` travel as the extra parameters the task allows (the inference toolkit hands them to the
 * diffusers pipeline, the seed as `torch.Generator().manual_seed(seed)`). `target_size` is not
 * sent: the pipeline then keeps the init image's size (rounded down to multiples of 8), as locally.
 * There is no scheduler parameter, so a request that names one cannot go there.
 */
import { ProtocolMismatch } from '../codec.js';
import { answerImage, type Img2ImgClient, jsonWithBigInts } from './common.js';

export const hfImageToImageClient: Img2ImgClient = {
  refusal(request) {
    return request.scheduler === null
      ? null
      : `scheduler ${request.scheduler} cannot be named to protocol "hf-image-to-image" (its task has no scheduler ` +
          'parameter; the endpoint runs its own)';
  },

  build(call, config) {
    const { request } = call;
    const parameters: Record<string, unknown> = {
      prompt: request.prompt,
      ...(request.negativePrompt === null ? {} : { negative_prompt: request.negativePrompt }),
      num_inference_steps: request.steps,
      guidance_scale: request.guidanceScale,
      strength: request.strength,
      seed: call.seed,
    };
    return {
      url: config.url,
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'image/png' },
      body: Buffer.from(jsonWithBigInts({ inputs: call.image.base64, parameters })),
    };
  },

  async read(call, response) {
    const type = response.headers.get('content-type') ?? '';
    if (!type.startsWith('image/'))
      throw new ProtocolMismatch(`the answer's content type is "${type}", not an image type`);
    return answerImage(
      new Uint8Array(response.body.buffer, response.body.byteOffset, response.body.byteLength),
      call.seed,
    );
  },
};
