/**
 * img2img on the tiny SD pipeline (test/support/tiny-pipeline.ts), classifier-free guidance on (UNet batch 2).
 *
 * perStep, per latent size: one denoising network call as the pipeline makes it (`unetCaller`: the batch of
 * two, runDeclared's casts, the worker hop, the guidance combine) against a bare `InferenceSession.run` of
 * the same UNet file on the same (already cast) inputs on this thread with the gateway's session options,
 * and against that bare run plus the same batching and guidance combine on this thread (so the difference
 * is what the gateway's runtime adds: casts and the worker hop). Sides alternate, their order swapping
 * every round. The tiny UNet is five elementwise ops, so only at large latents does its run weigh much
 * against a thread hop; and the batching and guidance passes cost about as much as one of its ops.
 *
 * request: the img2img mutation over HTTP to a gateway in this process on a 512x512 image, its wall time
 * against the sum of its `stages[].seconds`; `other` is what no stage covers (image decode and resize,
 * PNG encode, base64, GraphQL, HTTP, JSON).
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
import { createServices, type RunningServices } from '../src/server/services.ts';
import { writeTinyPipeline } from '../test/support/tiny-pipeline.ts';
import { writeConvUnet } from './conv-unet.ts';
import { median, percentile } from './support.ts';

const MODEL = 'tiny-sd';
const LATENTS = [64, 128, 256];
/** The same pipeline with a UNet of three 3x3 convolutions (bench/conv-unet.ts): compute like a real one. */
const CONV_MODEL = 'tiny-sd-conv';
const CONV_LATENTS = [32, 64, 128];
const REQUEST_SIZE = 512;
const QUERY = `mutation($input: Img2ImgInput!) {
  img2img(input: $input) { timesteps stages { stage seconds } images { sha256 } }
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

function latentRequest(latent: number, model = MODEL): Img2ImgRequest {
  const x0 = Float32Array.from({ length: 4 * latent * latent }, (_, i) => Math.sin(i * 0.37));
  return {
    model,
    latent: { bytes: new Uint8Array(x0.buffer), shape: [1, 4, latent, latent], dtype: 'float32' },
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
}

async function perStep(services: RunningServices, modelId: string, latent: number, rounds: number) {
  const request = latentRequest(latent, modelId);
  const prepared = await prepareImg2Img(services, services.registry.require(modelId, 'img2img'), request);
  const { model, diffusion } = prepared;
  if (!prepared.family.guidance) throw new Error('the benchmark request should use classifier-free guidance');
  const conditioning = await services.prompts.encode(modelId, diffusion, {
    prompt: request.prompt,
    negativePrompt: request.negativePrompt,
    guidance: true,
  });
  const latentDims: [number, number, number, number] = [1, 4, latent, latent];
  const unet = unetCaller(services, model, diffusion, request, true, conditioning, latentDims);
  const x0 = new Float32Array(request.latent!.bytes.buffer);
  const size = x0.length;
  const timestep = prepared.timesteps[0];

  // The bare side: the same file, the gateway's session options, inputs already in the declared types.
  const options = sessionOptions({
    provider: services.runtime.choice.provider,
    intraOpThreads: services.config.intraOpThreads,
  });
  const session = await ort.InferenceSession.create(diffusion.denoiser.path, options);
  try {
    const batchSample = new Float32Array(2 * size);
    batchSample.set(x0, 0);
    batchSample.set(x0, size);
    const hidden = conditioning.hiddenStates;
    const feeds = {
      sample: new ort.Tensor('float32', batchSample, [2, 4, latent, latent]),
      timestep: new ort.Tensor('int64', BigInt64Array.of(BigInt(timestep), BigInt(timestep)), [2]),
      encoder_hidden_states: new ort.Tensor('float32', hidden.data, hidden.dims),
    };
    const bare = () => session.run(feeds);
    // What a caller of onnxruntime on this thread would do around the run: the batch of two, the combine.
    const bareGuided = async () => {
      const sample = new Float32Array(2 * size);
      sample.set(x0, 0);
      sample.set(x0, size);
      const out = await session.run({ ...feeds, sample: new ort.Tensor('float32', sample, [2, 4, latent, latent]) });
      const prediction = out.out_sample.data as Float32Array;
      return classifierFreeGuidance(prediction.subarray(0, size), prediction.subarray(size), request.guidanceScale);
    };
    const step = () => unet(x0, timestep);

    // Both sides must compute the same thing, or the comparison means nothing.
    const [fromPipeline, expected] = [await step(), await bareGuided()];
    for (let i = 0; i < size; i++)
      if (fromPipeline[i] !== expected[i])
        throw new Error(`pipeline and bare UNet differ at ${i}: ${fromPipeline[i]} vs ${expected[i]}`);

    const sides = { step, bare, bareGuided };
    const samples: Record<keyof typeof sides, number[]> = { step: [], bare: [], bareGuided: [] };
    const order = Object.keys(sides) as (keyof typeof sides)[];
    for (let i = 0; i < 20; i++) for (const side of order) await sides[side]();
    for (let i = 0; i < rounds; i++) {
      const turn = i % 2 === 0 ? order : [...order].reverse();
      for (const side of turn) samples[side].push(await timed(sides[side]));
    }
    const paired = (a: number[], b: number[]) => round3(median(a.map((x, i) => x / b[i])));
    return {
      model: modelId,
      latent: `${latent}x${latent}`,
      rounds,
      stepMs: spread(samples.step),
      bareMs: spread(samples.bare),
      bareGuidedMs: spread(samples.bareGuided),
      /** The target: the pipeline's step against the bare UNet run (median of each round's ratio). */
      ratio: paired(samples.step, samples.bare),
      /** The runtime's share alone: against the bare run with the same batching and guidance around it. */
      ratioToBareGuided: paired(samples.step, samples.bareGuided),
      overheadMs: round3(median(samples.step.map((s, i) => s - samples.bare[i]))),
    };
  } finally {
    await session.release();
  }
}

export async function img2imgBench(stepRounds = 200, requestRounds = 9) {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-bench-img2img-'));
  writeTinyPipeline(join(dir, MODEL), { variant: 'sd' });
  writeTinyPipeline(join(dir, CONV_MODEL), { variant: 'sd' });
  writeConvUnet(join(dir, CONV_MODEL, 'unet', 'model.onnx'), 768);
  const config = loadConfig({
    MODELS_DIR: dir,
    // The tiny UNet's config claims SD 1.5's blocks, so the DENOISE estimate is SD's (tens of GiB at 256²).
    DEVICE_MEMORY: '1TiB',
    BATCH_WINDOW_MS: '0',
    HOST: '127.0.0.1',
    PORT: '0',
  });
  const services = await createServices(config);
  const server = createHttpServer(services);
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  try {
    const steps = [];
    for (const latent of LATENTS) steps.push(await perStep(services, MODEL, latent, stepRounds));
    // Fewer rounds: each conv step takes tens of milliseconds.
    for (const latent of CONV_LATENTS)
      steps.push(await perStep(services, CONV_MODEL, latent, Math.max(20, Math.round(stepRounds / 10))));

    // request: the whole mutation on an image (so ENCODE and DECODE run too).
    const pixels = Buffer.alloc(REQUEST_SIZE * REQUEST_SIZE * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
    const png = await sharp(pixels, { raw: { width: REQUEST_SIZE, height: REQUEST_SIZE, channels: 3 } })
      .png()
      .toBuffer();
    const base = latentRequest(REQUEST_SIZE / 8);
    const input = {
      model: MODEL,
      image: { base64: png.toString('base64') },
      prompt: base.prompt,
      strength: base.strength,
      steps: base.steps,
      guidanceScale: base.guidanceScale,
      seed: 0,
    };
    type Answer = { data?: { img2img: { timesteps: number[]; stages: { stage: string; seconds: number }[] } } };
    const post = async () => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: QUERY, variables: { input } }),
      });
      const answer = (await response.json()) as Answer & { errors?: unknown };
      if (answer.errors || !answer.data) throw new Error(JSON.stringify(answer.errors));
      return answer.data.img2img;
    };
    await post(); // warm: session creation is not what we measure
    const wallMs: number[] = [];
    const coveredMs: number[] = [];
    const stageMs = new Map<string, number[]>();
    let calls = 0;
    for (let i = 0; i < requestRounds; i++) {
      const start = performance.now();
      const result = await post();
      wallMs.push(performance.now() - start);
      calls = result.timesteps.length;
      let covered = 0;
      for (const { stage, seconds } of result.stages) {
        stageMs.set(stage, [...(stageMs.get(stage) ?? []), seconds * 1000]);
        covered += seconds * 1000;
      }
      coveredMs.push(covered);
    }
    const denoisePerCall = stageMs.get('DENOISE')!.map((ms) => ms / calls);
    const requestStep = steps.find((s) => s.model === MODEL && s.latent === `${REQUEST_SIZE / 8}x${REQUEST_SIZE / 8}`);

    return {
      benchmark: 'img2img',
      model:
        'tiny SD pipeline (test/support/tiny-pipeline.ts), PNDM, guidanceScale 7.5: UNet batch 2; ' +
        `${CONV_MODEL}: the same with bench/conv-unet.ts's three-convolution UNet`,
      provider: services.runtime.choice.provider,
      perStep: steps,
      request: {
        image: `${REQUEST_SIZE}x${REQUEST_SIZE}`,
        rounds: requestRounds,
        steps: base.steps,
        strength: base.strength,
        networkCalls: calls,
        wallMs: spread(wallMs),
        stagesSumMs: spread(coveredMs),
        /** Median of each request's wall time over the sum of its stages. */
        ratio: round3(median(wallMs.map((w, i) => w / coveredMs[i]))),
        stagesMs: Object.fromEntries([...stageMs].map(([stage, ms]) => [stage, round3(median(ms))])),
        otherMs: round3(median(wallMs.map((w, i) => w - coveredMs[i]))),
        /** DENOISE per network call (scheduler step, scaling, ledger included) over perStep's bare run there. */
        denoisePerCallMs: round3(median(denoisePerCall)),
        denoisePerCallToBare: requestStep ? round3(median(denoisePerCall) / requestStep.bareMs.median) : null,
      },
    };
  } finally {
    server.close();
    server.closeAllConnections();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
