/**
 * img2img on the tiny SD pipeline (test/support/tiny-pipeline.ts), classifier-free guidance on (UNet batch 2):
 * - perStep: one denoising network call as the pipeline makes it (unetCaller: the batch of two, runDeclared's
 *   casts, the worker hop, the guidance combine) against a bare `InferenceSession.run` of the same UNet file on
 *   the same (already cast) inputs, on this thread, with the gateway's session options; alternating rounds.
 * - request: the img2img mutation over HTTP to a gateway in this process, its wall time against the sum of
 *   its `stages[].seconds`; `other` is what no stage covers (PNG decode and encode, GraphQL, HTTP, JSON).
 * The tiny UNet is a few elementwise ops, so its run is only long enough to weigh against a thread hop at
 * large latents: LATENT x LATENT below (an 8*LATENT pixel image).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../src/config/config.ts';
import { classifierFreeGuidance } from '../src/diffusion/guidance.ts';
import { sessionOptions } from '../src/gpu/onnx-session-options.ts';
import { prepareImg2Img, unetCaller } from '../src/pipeline/img2img.ts';
import type { Img2ImgRequest } from '../src/pipeline/img2img-types.ts';
import { createHttpServer, listen } from '../src/server/http.ts';
import { createServices } from '../src/server/services.ts';
import { writeTinyPipeline } from '../test/support/tiny-pipeline.ts';
import { median, percentile } from './support.ts';

const LATENT = 128;
const MODEL = 'tiny-sd';
const QUERY = `mutation($input: Img2ImgInput!) {
  img2img(input: $input) { seed timesteps stages { stage seconds } seconds images { sha256 } }
}`;

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const spread = (values: number[]) => ({
  median: round3(median(values)),
  p10: round3(percentile(values, 10)),
  p90: round3(percentile(values, 90)),
});

async function timed(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

export async function img2imgBench(stepRounds = 200, requestRounds = 7) {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-bench-img2img-'));
  writeTinyPipeline(join(dir, MODEL), { variant: 'sd' });
  const config = loadConfig({
    MODELS_DIR: dir,
    // The tiny UNet's config claims SD 1.5's blocks, so the estimate is SD's (49.6 GiB at 128x128 latents, CFG).
    DEVICE_MEMORY: '64GiB',
    BATCH_WINDOW_MS: '0',
    HOST: '127.0.0.1',
    PORT: '0',
  });
  const services = await createServices(config);
  const server = createHttpServer(services);
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  let bare: ort.InferenceSession | undefined;
  try {
    const latentDims: [number, number, number, number] = [1, 4, LATENT, LATENT];
    const size = 4 * LATENT * LATENT;
    const x0 = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37));
    const request: Img2ImgRequest = {
      model: MODEL,
      latent: { bytes: new Uint8Array(x0.buffer.slice(0)), shape: [...latentDims], dtype: 'float32' },
      prompt: 'a photo of a cat',
      negativePrompt: null,
      strength: 0.8,
      steps: 10,
      guidanceScale: 7.5,
      seed: 0n,
      scheduler: null,
      format: 'png',
      delivery: 'BASE64',
      returnLatent: false,
      dtype: 'float32',
    };

    // perStep: the pipeline's own network call, built as img2img builds it.
    const prepared = await prepareImg2Img(services, request);
    const { diffusion } = prepared;
    if (!prepared.guidance) throw new Error('the benchmark request should use classifier-free guidance');
    const conditioning = await services.prompts.encode(MODEL, diffusion, {
      prompt: request.prompt,
      negativePrompt: request.negativePrompt,
      guidance: true,
    });
    const unet = unetCaller(services, prepared, request, conditioning, latentDims);
    const timestep = prepared.timesteps[0];

    // The bare side: the same file, the gateway's session options, inputs already in the declared types.
    const options = sessionOptions({
      provider: services.runtime.choice.provider,
      intraOpThreads: config.intraOpThreads,
    });
    bare = await ort.InferenceSession.create(diffusion.denoiser.path, options);
    const batchSample = new Float32Array(2 * size);
    batchSample.set(x0, 0);
    batchSample.set(x0, size);
    const hidden = conditioning.hiddenStates;
    const feeds = {
      sample: new ort.Tensor('float32', batchSample, [2, 4, LATENT, LATENT]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(timestep), BigInt(timestep)), [2]),
      encoder_hidden_states: new ort.Tensor('float32', hidden.data as Float32Array, hidden.dims),
    };
    const session = bare;
    const bareRun = () => session.run(feeds);

    // Both sides must compute the same thing, or the comparison means nothing.
    const fromPipeline = await unet(x0, timestep);
    const raw = (await bareRun()).out_sample.data as Float32Array;
    const expected = classifierFreeGuidance(raw.subarray(0, size), raw.subarray(size), request.guidanceScale);
    for (let i = 0; i < size; i++)
      if (Math.abs(fromPipeline[i] - expected[i]) > 1e-6 * Math.max(1, Math.abs(expected[i])))
        throw new Error(`pipeline and bare UNet differ at ${i}: ${fromPipeline[i]} vs ${expected[i]}`);

    for (let i = 0; i < 20; i++) {
      await unet(x0, timestep);
      await bareRun();
    }
    const pipelineMs: number[] = [];
    const bareMs: number[] = [];
    for (let i = 0; i < stepRounds; i++) {
      if (i % 2 === 0) {
        bareMs.push(await timed(bareRun));
        pipelineMs.push(await timed(() => unet(x0, timestep)));
      } else {
        pipelineMs.push(await timed(() => unet(x0, timestep)));
        bareMs.push(await timed(bareRun));
      }
    }

    // request: the whole mutation, an image of the same size (so ENCODE and DECODE run too).
    const pixels = Buffer.alloc(8 * LATENT * 8 * LATENT * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
    const png = await sharp(pixels, { raw: { width: 8 * LATENT, height: 8 * LATENT, channels: 3 } })
      .png()
      .toBuffer();
    const input = {
      model: MODEL,
      image: { base64: png.toString('base64') },
      prompt: request.prompt,
      strength: request.strength,
      steps: request.steps,
      guidanceScale: request.guidanceScale,
      seed: 0,
    };
    type Answer = {
      data?: { img2img: { timesteps: number[]; stages: { stage: string; seconds: number }[]; seconds: number } };
      errors?: unknown;
    };
    const post = async () => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: QUERY, variables: { input } }),
      });
      const answer = (await response.json()) as Answer;
      if (answer.errors || !answer.data) throw new Error(JSON.stringify(answer.errors));
      return answer.data.img2img;
    };
    await post(); // warm: session creation is not what we measure
    const wallMs: number[] = [];
    const stageMs = new Map<string, number[]>();
    const otherMs: number[] = [];
    let calls = 0;
    for (let i = 0; i < requestRounds; i++) {
      const start = performance.now();
      const result = await post();
      const wall = performance.now() - start;
      wallMs.push(wall);
      calls = result.timesteps.length;
      let covered = 0;
      for (const { stage, seconds } of result.stages) {
        stageMs.set(stage, [...(stageMs.get(stage) ?? []), seconds * 1000]);
        covered += seconds * 1000;
      }
      otherMs.push(wall - covered);
    }
    const denoisePerCall = (stageMs.get('DENOISE') ?? []).map((ms) => ms / calls);

    return {
      benchmark: 'img2img',
      model: 'tiny SD pipeline (test/support/tiny-pipeline.ts), PNDM, guidance 7.5 (UNet batch 2)',
      latent: `${LATENT}x${LATENT}`,
      image: `${8 * LATENT}x${8 * LATENT}`,
      provider: services.runtime.choice.provider,
      perStep: {
        rounds: stepRounds,
        pipelineMs: spread(pipelineMs),
        bareMs: spread(bareMs),
        ratio: round3(median(pipelineMs) / median(bareMs)),
        /** Median of each round's pipeline / bare: steadier than the ratio of medians on a busy machine. */
        pairedRatio: round3(median(pipelineMs.map((p, i) => p / bareMs[i]))),
        overheadMs: round3(median(pipelineMs.map((p, i) => p - bareMs[i]))),
      },
      request: {
        rounds: requestRounds,
        steps: request.steps,
        strength: request.strength,
        networkCalls: calls,
        wallMs: spread(wallMs),
        stagesSumMs: round3(median(wallMs.map((w, i) => w - otherMs[i]))),
        ratio: round3(median(wallMs.map((w, i) => w / (w - otherMs[i])))),
        stagesMs: Object.fromEntries([...stageMs].map(([stage, ms]) => [stage, round3(median(ms))])),
        otherMs: round3(median(otherMs)),
        /** The DENOISE stage per network call (scheduler step and ledger included) against perStep's bare run. */
        denoisePerCallMs: round3(median(denoisePerCall)),
        denoisePerCallRatio: round3(median(denoisePerCall) / median(bareMs)),
      },
    };
  } finally {
    await bare?.release();
    server.close();
    server.closeAllConnections();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
