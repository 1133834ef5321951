/**
 * img2img through GraphQL: inputs, seeds that mean what torch's mean, refusals, job events and
 * cancellation, per-stage routing (VAE stages on another latentgate over Hybrid Inference while the UNet
 * runs here) and whole requests on upstream endpoints (another real latentgate; an AUTOMATIC1111 fake).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { TorchGenerator } from '../src/diffusion/random.ts';
import type { JobEvent } from '../src/jobs/events.ts';
import { readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { gradientPng } from './support/image-files.ts';
import { type Img2ImgFake, startA1111Fake } from './support/img2img-fakes.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { SHARED_DIR } from './support/paths.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

const RESULT = `model seed scheduler timesteps width height seconds
  images { mimeType width height data sha256 }
  latent { shape dtype data }
  stages { stage seconds route { route target operation stage { networkBatch steps } } }`;
const IMG2IMG = `mutation ($input: Img2ImgInput!) { img2img(input: $input) { ${RESULT} } }`;

let dir: string;
let main: InProcessGateway;
/** A second latentgate: serves the same pipeline whole (img2img) and its VAE over Hybrid Inference. */
let peer: InProcessGateway;
/** Its VAE does not fit here; the UNet does. */
let small: InProcessGateway;
let a1111: Img2ImgFake;

/** A 64x64 RGB test card: a gradient, so the encode is not trivial. */
const IMAGE = gradientPng(64, 64, 7);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latentgate-img2img-api-'));
  const models = join(dir, 'models');
  // UNet weights in unet/model.onnx_data and tokenizer.json beside vocab.json: the peer's copy has neither,
  // so equal results across the two gateways show both read the same network and tokens.
  writeTinyPipeline(join(models, 'sd'), { externalData: true, tokenizerJson: true });
  writeTinyPipeline(join(models, 'lcm'), { variant: 'lcm' });
  writeTinyPipeline(join(models, 'sdxl'), { variant: 'sdxl' });
  writeTinyPipeline(join(models, 'odd'), { scheduler: { _class_name: 'DPMSolverMultistepScheduler' } });
  const peerModels = join(dir, 'peer');
  writeTinyPipeline(join(peerModels, 'sd'), {});
  peer = await startInProcessGateway({ MODELS_DIR: peerModels });
  a1111 = await startA1111Fake();
  main = await startInProcessGateway({
    MODELS_DIR: models,
    UPSTREAMS: JSON.stringify([
      {
        model: 'remote-lg',
        url: `${peer.url}/graphql`,
        protocol: 'latentgate',
        remoteModel: 'sd',
        operations: ['img2img'],
      },
      { model: 'remote-a1111', url: a1111.url, protocol: 'a1111', operations: ['img2img'] },
    ]),
  });
  const smallModels = join(dir, 'small');
  writeTinyPipeline(join(smallModels, 'sd'), {});
  // 0.2 GiB of budget: the sd15 VAE profile (0.33 GiB) does not fit, the tiny UNet and text encoder do.
  small = await startInProcessGateway({
    MODELS_DIR: smallModels,
    DEVICE_MEMORY: String(Math.round(0.45 * 2 ** 30)),
    UPSTREAMS: JSON.stringify([{ model: 'sd', url: `${peer.url}/v1/vae/sd/{operation}` }]),
  });
});

after(async () => {
  await Promise.all([main?.stop(), peer?.stop(), small?.stop(), a1111?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

function run(gateway: InProcessGateway, input: Record<string, unknown>) {
  return gateway.upload(
    IMG2IMG,
    { input: { ...input, image: { upload: null } } },
    'variables.input.image.upload',
    IMAGE,
    'card.png',
  );
}

function latentOf(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

const BASE = { model: 'sd', prompt: 'a photo of a cat', strength: 0.5, steps: 6, returnLatent: true };

test('img2img runs every stage locally, returns the seed as given, and one seed gives one result', async () => {
  const seed = '18446744073709551615';
  const first = await run(main, { ...BASE, seed });
  assert.equal(first.errors, undefined, JSON.stringify(first.errors));
  const result = first.data.img2img;
  assert.equal(result.seed, seed, 'a seed over 2^53 comes back as a decimal string');
  assert.equal(result.scheduler, 'PNDM', "the folder's own scheduler");
  // PNDM's repeated timestep: int(6 x 0.5) + 1 network calls.
  assert.equal(result.timesteps.length, 4);
  assert.deepEqual(
    result.stages.map((s: any) => [s.stage, s.route.route]),
    [
      ['TEXT_ENCODE', 'LOCAL'],
      ['ENCODE', 'LOCAL'],
      ['DENOISE', 'LOCAL'],
      ['DECODE', 'LOCAL'],
    ],
  );
  assert.equal(result.stages[2].route.stage.networkBatch, 2, 'guidance runs the UNet on a batch of two');
  assert.equal(result.images[0].width, 64);
  assert.deepEqual(result.latent.shape, [1, 4, 8, 8]);
  const again = await run(main, { ...BASE, seed });
  assert.equal(again.data.img2img.latent.data, result.latent.data, 'same seed, same latent');
  const other = await run(main, { ...BASE, seed: 7 });
  assert.equal(other.data.img2img.seed, 7, 'a small seed comes back as a number');
  assert.notEqual(other.data.img2img.latent.data, result.latent.data);
});

test('encode on a pipeline folder whose encoder gives latent_parameters returns the mean, scaled', async () => {
  const answer = await main.upload(
    `mutation ($input: EncodeInput!) { encode(input: $input) { latent { shape data } scalingFactor } }`,
    { input: { model: 'sd', image: { upload: null } } },
    'variables.input.image.upload',
    IMAGE,
    'card.png',
  );
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  const { latent, scalingFactor } = answer.data.encode;
  assert.deepEqual(latent.shape, [1, 4, 8, 8]);
  assert.equal(scalingFactor, 0.18215);
  const got = latentOf(latent.data);
  // The tiny encoder's mean: 8x8 averages of R, G, B and grey in [-1, 1]; channel-major.
  for (const [c, y, x] of [
    [0, 0, 0],
    [1, 3, 5],
    [3, 7, 7],
  ]) {
    let sum = 0;
    for (let dy = 0; dy < 8; dy++)
      for (let dx = 0; dx < 8; dx++) {
        const pixel = ((y * 8 + dy) * 64 + (x * 8 + dx)) * 3;
        const channel = (k: number) => (((pixel + k) * 7) % 256) / 127.5 - 1;
        sum += c === 3 ? (channel(0) + channel(1) + channel(2)) / 3 : channel(c);
      }
    const expected = (sum / 64) * 0.18215;
    assert.ok(
      Math.abs(got[c * 64 + y * 8 + x] - expected) < 1e-5,
      `[${c},${y},${x}] ${got[c * 64 + y * 8 + x]} vs ${expected}`,
    );
  }
});

test('without a seed one is drawn and returned, and sending it again reproduces the run', async () => {
  const drawn = await run(main, BASE);
  const seed = drawn.data.img2img.seed;
  assert.ok(typeof seed === 'number' || /^\d+$/.test(seed));
  const again = await run(main, { ...BASE, seed });
  assert.equal(again.data.img2img.latent.data, drawn.data.img2img.latent.data);
});

test("a seed draws torch's numbers, in diffusers' order: posterior sample, then the start noise", async () => {
  const reference = await readSafetensors(resolve(SHARED_DIR, 'fixtures/rng/torch-cpu-randn.safetensors'));
  const torchDraw0 = tensorToFloat32(reference.tensors.get('seed42_draw0')!);
  // From a latent (no VAE, so no posterior draw), the start noise is torch's first draw for the seed.
  const x0 = new Float32Array(256).map((_, i) => Math.sin(i));
  const latent = { tensor: { data: Buffer.from(x0.buffer).toString('base64'), shape: [1, 4, 8, 8] } };
  const input = { ...BASE, latent, seed: 42 };
  const query = `mutation ($input: Img2ImgInput!) { img2img(input: $input) { latent { data } } }`;
  const seeded = await main.graphql(query, { input });
  main.services.noiseFor = () => ({ randn: () => torchDraw0.slice() });
  const injected = await main.graphql(query, { input });
  main.services.noiseFor = undefined;
  assert.equal(seeded.data.img2img.latent.data, injected.data.img2img.latent.data);

  // From an image whose encoder gives mean and log-variance: the posterior draw comes first.
  const shapes: number[][] = [];
  main.services.noiseFor = (seed) => {
    const generator = new TorchGenerator(seed);
    return {
      randn: (shape) => {
        shapes.push([...shape]);
        return generator.randn(shape);
      },
    };
  };
  const recorded = await run(main, { ...BASE, seed: 42 });
  main.services.noiseFor = undefined;
  const plain = await run(main, { ...BASE, seed: 42 });
  assert.deepEqual(shapes, [
    [1, 4, 8, 8],
    [1, 4, 8, 8],
  ]);
  assert.equal(recorded.data.img2img.latent.data, plain.data.img2img.latent.data);
});

test('SDXL (two text encoders, time ids, zero negative) and LCM (guidance embedded, no CFG batch) run', async () => {
  const sdxl = await run(main, { ...BASE, model: 'sdxl', scheduler: 'EULER' });
  assert.equal(sdxl.errors, undefined, JSON.stringify(sdxl.errors));
  assert.equal(sdxl.data.img2img.scheduler, 'EULER');
  assert.equal(sdxl.data.img2img.stages[2].route.stage.networkBatch, 2);
  const lcm = await run(main, { ...BASE, model: 'lcm', steps: 4, guidanceScale: 8.5 });
  assert.equal(lcm.errors, undefined, JSON.stringify(lcm.errors));
  assert.equal(lcm.data.img2img.scheduler, 'LCM');
  assert.equal(lcm.data.img2img.stages[2].route.stage.networkBatch, 1);
  // A request's scheduler is built from the folder's own settings (here sd's PNDM config, as from_config).
  const ancestral = await run(main, { ...BASE, scheduler: 'EULER_ANCESTRAL', seed: 3 });
  assert.equal(ancestral.data.img2img.scheduler, 'EULER_ANCESTRAL');
  assert.equal(ancestral.data.img2img.timesteps.length, 3);
});

test('requests that cannot run are refused with a typed error that says what would work', async () => {
  const code = async (input: Record<string, unknown>) => {
    const answer = await run(main, input);
    assert.ok(answer.errors, `expected an error for ${JSON.stringify(input)}`);
    return { code: answer.errors[0].extensions?.code, message: answer.errors[0].message };
  };
  const noStep = await code({ ...BASE, scheduler: 'DDIM', steps: 4, strength: 0.1 });
  assert.equal(noStep.code, 'NO_DENOISING_STEPS');
  assert.match(noStep.message, /at least 10 steps/);
  const lcm = await code({ ...BASE, model: 'lcm', steps: 50, strength: 0.3 });
  assert.equal(lcm.code, 'NO_DENOISING_STEPS');
  assert.match(lcm.message, /15/);
  const odd = await code({ ...BASE, model: 'odd' });
  assert.equal(odd.code, 'UNSUPPORTED_SCHEDULER');
  assert.match(odd.message, /DPMSolverMultistepScheduler/);
  const oddPicked = await run(main, { ...BASE, model: 'odd', scheduler: 'DDIM' });
  assert.equal(oddPicked.errors, undefined, 'a request may pick a scheduler the gateway has');
  assert.equal((await code({ ...BASE, scheduler: 'FLOW_MATCH_EULER' })).code, 'UNSUPPORTED_SCHEDULER');
  const long = await code({ ...BASE, prompt: 'a cat '.repeat(60) });
  assert.equal(long.code, 'PROMPT_TOO_LONG');
  assert.match(long.message, /at most 77/);
  const both = await main.upload(
    IMG2IMG,
    { input: { ...BASE, image: { upload: null }, latent: { url: 'http://x/v1/latents/1' } } },
    'variables.input.image.upload',
    IMAGE,
    'card.png',
  );
  assert.equal(both.errors?.[0].extensions?.code, 'BAD_REQUEST');
  const badSeed = await code({ ...BASE, seed: '-1' });
  assert.equal(badSeed.code, 'BAD_REQUEST');
});

async function eventsOf(gateway: InProcessGateway, id: string): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const event of gateway.services.jobs.get(id).subscribe()) events.push(event);
  return events;
}

const SUBMIT = `mutation ($input: Img2ImgInput!) { submitImg2img(input: $input) { id operation } }`;

test('a job reports each stage, and exactly one DENOISE event per network call, in order', async () => {
  const heldBefore = main.services.host.snapshot().heldBytes;
  const submitted = await main.upload(
    SUBMIT,
    { input: { ...BASE, seed: 5, image: { upload: null } } },
    'variables.input.image.upload',
    IMAGE,
    'card.png',
  );
  assert.equal(submitted.data.submitImg2img.operation, 'IMG2IMG');
  const events = await eventsOf(main, submitted.data.submitImg2img.id);
  const denoise = events.filter((e) => e.type === 'RUNNING' && e.stage === 'DENOISE') as any[];
  const total = denoise[0].total;
  assert.equal(total, 4);
  assert.deepEqual(
    denoise.map((e) => e.done),
    Array.from({ length: total }, (_, i) => i + 1),
  );
  assert.ok(denoise.every((e) => typeof e.timestep === 'number'));
  const stages = [...new Set(events.filter((e) => e.type === 'RUNNING').map((e: any) => e.stage))];
  assert.deepEqual(stages, ['TEXT_ENCODE', 'ENCODE', 'DENOISE', 'DECODE']);
  const done = events.at(-1)!;
  assert.equal(done.type, 'DONE');
  // HOST_MEMORY: the finished job keeps its inline answer counted (until JOB_TTL_SECONDS), nothing more.
  const inline = (done as any).result.images[0].data.length + (done as any).result.latent.data.length;
  assert.equal(main.services.host.snapshot().heldBytes - heldBefore, inline);
  const job = await main.graphql(
    `query ($id: ID!) { job(id: $id) { status result { ... on Img2ImgResult { seed timesteps } } } }`,
    { id: submitted.data.submitImg2img.id },
  );
  assert.equal(job.data.job.result.seed, 5);
});

test('cancelJob stops the loop at the next step and frees every reservation', async () => {
  let jobId = '';
  let draws = 0;
  // Euler ancestral draws noise every step: the third draw cancels the job from inside the loop.
  main.services.noiseFor = (seed) => {
    const generator = new TorchGenerator(seed);
    return {
      randn: (shape) => {
        if (++draws === 4) main.services.jobs.cancel(jobId);
        return generator.randn(shape);
      },
    };
  };
  const submitted = await main.upload(
    SUBMIT,
    { input: { ...BASE, steps: 20, strength: 1, scheduler: 'EULER_ANCESTRAL', image: { upload: null } } },
    'variables.input.image.upload',
    IMAGE,
    'card.png',
  );
  jobId = submitted.data.submitImg2img.id;
  const events = await eventsOf(main, jobId);
  main.services.noiseFor = undefined;
  assert.equal(events.at(-1)!.type, 'CANCELLED');
  const steps = events.filter((e) => e.type === 'RUNNING' && e.stage === 'DENOISE').length;
  assert.ok(steps >= 2 && steps < 20, `stopped after ${steps} of 20 steps`);
  assert.ok(!events.some((e) => e.type === 'RUNNING' && e.stage === 'DECODE'));
  assert.equal(main.services.ledger.snapshot().reservedBytes, 0);
});

test('per-stage routing: VAE stages go to another latentgate when they do not fit here; the UNet stays local', async () => {
  const answer = await run(small, { ...BASE, seed: 11 });
  assert.equal(answer.errors, undefined, JSON.stringify(answer.errors));
  const routes = Object.fromEntries(answer.data.img2img.stages.map((s: any) => [s.stage, s.route]));
  assert.equal(routes.DENOISE.route, 'LOCAL');
  assert.equal(routes.TEXT_ENCODE.route, 'LOCAL');
  assert.equal(routes.ENCODE.route, 'UPSTREAM');
  assert.equal(routes.DECODE.route, 'UPSTREAM');
  assert.match(routes.ENCODE.target, /^upstream:/);
  assert.equal(answer.data.img2img.images[0].width, 64);
  // A stage that fits nowhere refuses the request before anything runs.
  const tooBig = await small.graphql(IMG2IMG, {
    input: {
      ...BASE,
      latent: { tensor: { data: Buffer.alloc(4 * 4 * 256 * 256).toString('base64'), shape: [1, 4, 256, 256] } },
    },
  });
  assert.equal(tooBig.errors?.[0].extensions?.code, 'DOES_NOT_FIT', JSON.stringify(tooBig.errors));
  assert.equal(small.services.ledger.snapshot().reservedBytes, 0);
});

test('whole requests go to an img2img upstream: another latentgate (same result for the seed), AUTOMATIC1111', async () => {
  const viaPeer = await run(main, { ...BASE, model: 'remote-lg', seed: 21, returnLatent: false });
  assert.equal(viaPeer.errors, undefined, JSON.stringify(viaPeer.errors));
  const direct = await run(peer, { ...BASE, seed: 21, returnLatent: false });
  assert.equal(viaPeer.data.img2img.images[0].sha256, direct.data.img2img.images[0].sha256);
  assert.equal(viaPeer.data.img2img.seed, 21);
  const stage = viaPeer.data.img2img.stages[0];
  assert.deepEqual([stage.stage, stage.route.route], ['DENOISE', 'UPSTREAM']);

  const viaA1111 = await run(main, {
    ...BASE,
    model: 'remote-a1111',
    seed: 99,
    scheduler: 'EULER_ANCESTRAL',
    returnLatent: false,
  });
  assert.equal(viaA1111.errors, undefined, JSON.stringify(viaA1111.errors));
  assert.equal(viaA1111.data.img2img.seed, 99);
  const sent = a1111.requests.at(-1)!.json;
  assert.equal(sent.sampler_name, 'Euler a');
  assert.equal(sent.denoising_strength, 0.5);
  assert.equal(sent.seed, 99);
  const latentAsked = await run(main, { ...BASE, model: 'remote-a1111' });
  assert.equal(latentAsked.errors?.[0].extensions?.code, 'UPSTREAM_FAILED');
  assert.match(latentAsked.errors![0].message, /returnLatent/);
});
