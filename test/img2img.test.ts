/**
 * img2img through the gateway: tiny pipelines in optimum's ONNX layout (test/support/tiny-pipeline.ts),
 * whose UNet is the fixtures' stand-in model (an empty prompt gives the unconditional one, a prompt with
 * a word the conditional one), run by the real pipeline code. With the fixtures' noise injected, every
 * trajectory in fixtures/img2img is reproduced step by step, guidance batching included; Flux's through
 * a tiny transformer (v = 0.1 x + 0.05 sigma) on packed latents.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { TorchGenerator } from '../src/diffusion/random.ts';
import { fluxTransformerTimestep } from '../src/diffusion/schedulers/flow-match.ts';
import { GatewayError } from '../src/errors.ts';
import type { Tensor } from '../src/gpu/tensor.ts';
import { loadPipelineFolder } from '../src/models/pipeline-folder.ts';
import { img2img, type NoiseSource } from '../src/pipeline/img2img.ts';
import type { Img2ImgRequest } from '../src/pipeline/img2img-types.ts';
import { packLatents, unpackLatents } from '../src/protocol/packing.ts';
import { readSafetensors, type SafetensorsFile, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { gradientPng } from './support/image-files.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { SHARED_DIR } from './support/paths.ts';
import { T5_HIDDEN, type TinyTimestep, writeTinyPipeline } from './support/tiny-pipeline.ts';

const DIR = resolve(SHARED_DIR, 'fixtures/img2img');
const readJson = (name: string) => JSON.parse(readFileSync(resolve(DIR, name), 'utf8'));
const index = readJson('index.json') as {
  cases: { case: string; config: string }[];
  rejected: { case: string; config: string; num_inference_steps: number; strength: number; reason: string }[];
};

interface CaseJson {
  case: string;
  scheduler: string;
  scheduler_config: Record<string, unknown>;
  family: string;
  params: { num_inference_steps: number; strength: number; guidance_scale: number | null; lcm_guidance_scale?: number };
  cfg_enabled: boolean;
  timesteps: number[];
  progress_events: { step: number; total: number; timestep: number }[];
}

/** One model folder per scheduler config, each with another of optimum's timestep exports where the values allow. */
const TIMESTEP_OF: Record<string, TinyTimestep> = {
  euler_leading: 'float32-scalar',
  euler_trailing: 'float32-batch',
  euler_linspace: 'float32-batch',
  euler_a_trailing: 'float32-scalar',
  euler_a_leading: 'float32-batch',
  // Integer timesteps: an int64 export loses nothing.
  ddim: 'int64-batch',
  pndm: 'int64-batch',
  lcm: 'float32-batch',
};

let gateway: InProcessGateway;
let modelsDir: string;

before(async () => {
  modelsDir = mkdtempSync(join(tmpdir(), 'latentgate-img2img-'));
  for (const config of Object.keys(TIMESTEP_OF)) {
    const sample = index.cases.find((c) => c.config === config)!;
    const meta = readJson(`${sample.case}.json`) as CaseJson;
    writeTinyPipeline(join(modelsDir, config), {
      variant: config === 'lcm' ? 'lcm' : 'sd',
      timestep: TIMESTEP_OF[config],
      scheduler: { _class_name: meta.scheduler, ...meta.scheduler_config },
    });
  }
  // Flux dev (guidance input, ids [n, 3] as diffusers >= 0.31 exports) and schnell (no guidance, older [b, n, 3]).
  for (const config of ['flux_dev', 'flux_schnell']) {
    const sample = index.cases.find((c) => c.config === config)!;
    const meta = readJson(`${sample.case}.json`) as CaseJson;
    writeTinyPipeline(join(modelsDir, config), {
      variant: 'flux',
      guidanceEmbeds: config === 'flux_dev',
      idsRank: config === 'flux_dev' ? 2 : 3,
      scheduler: { _class_name: meta.scheduler, ...meta.scheduler_config },
    });
  }
  mkdirSync(join(modelsDir, 'unused'), { recursive: true });
  gateway = await startInProcessGateway({ MODELS_DIR: modelsDir, DEVICE_MEMORY: '16GiB' });
});

after(async () => {
  await gateway?.stop();
  rmSync(modelsDir, { recursive: true, force: true });
});

function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

/** Draws in diffusers' order from the fixture: the start noise, then each step's. */
function fixtureNoise(file: SafetensorsFile): NoiseSource & { drawn: number } {
  const queue = [tensorToFloat32(file.tensors.get('noise')!)];
  const steps = file.tensors.get('step_noise');
  if (steps) {
    const all = tensorToFloat32(steps);
    const size = queue[0].length;
    for (let i = 0; i < all.length / size; i++) queue.push(all.subarray(i * size, (i + 1) * size));
  }
  const source = {
    drawn: 0,
    randn(shape: readonly number[]) {
      const next = queue.shift();
      assert.ok(next, 'the pipeline drew more noise than the reference run');
      assert.equal(
        next.length,
        shape.reduce((a, b) => a * b, 1),
      );
      source.drawn++;
      return next.slice();
    },
  };
  return source;
}

function latentOf(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function relativeError(got: Float32Array, ref: Float32Array): number {
  assert.equal(got.length, ref.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

function requestFor(name: string, meta: CaseJson, x0: Float32Array): Img2ImgRequest {
  return {
    model: index.cases.find((c) => c.case === name)!.config,
    latent: { bytes: float32Bytes(x0), shape: [1, 4, 8, 8], dtype: 'float32' },
    // An empty prompt is the fixtures' unconditional model; "a cat" its conditional one.
    prompt: meta.cfg_enabled ? 'a cat' : '',
    negativePrompt: null,
    strength: meta.params.strength,
    steps: meta.params.num_inference_steps,
    guidanceScale: meta.params.lcm_guidance_scale ?? meta.params.guidance_scale ?? 1,
    seed: 0n,
    scheduler: null,
    format: 'png',
    delivery: 'BASE64',
    returnLatent: true,
    dtype: 'float32',
  };
}

test('every non-Flux img2img fixture is reproduced step by step through the gateway pipeline', async (t) => {
  const cases = index.cases.filter((c) => !c.config.startsWith('flux'));
  assert.ok(cases.length >= 45, `${cases.length} cases`);
  let worst = 0;
  for (const { case: name } of cases) {
    const meta = readJson(`${name}.json`) as CaseJson;
    const file = await readSafetensors(resolve(DIR, `${name}.safetensors`));
    const reference = (tensor: string) => tensorToFloat32(file.tensors.get(tensor)!);
    const x0 = reference('x0');
    const size = x0.length;
    const noise = fixtureNoise(file);
    gateway.services.noiseFor = () => noise;
    const events: { step: number; total: number; timestep: number }[] = [];
    const check = (what: string, got: Float32Array, ref: Float32Array) => {
      const error = relativeError(got, ref);
      worst = Math.max(worst, error);
      assert.ok(error <= 1e-5, `${name} ${what}: relative error ${error}`);
    };
    const result = await img2img(gateway.services, requestFor(name, meta, x0), {
      onProgress: ({ stage, step, total, timestep }) => {
        if (stage === 'DENOISE') events.push({ step, total, timestep: timestep! });
      },
      onDenoiseStep: ({ step, modelInput, modelOutput, latent }) => {
        const i = step - 1;
        check(`model_input[${i}]`, modelInput, reference('model_input').subarray(i * size, (i + 1) * size));
        check(`model_output[${i}]`, modelOutput, reference('model_output').subarray(i * size, (i + 1) * size));
        check(`latents[${step}]`, latent, reference('latents').subarray(step * size, (step + 1) * size));
      },
    });
    assert.deepEqual(events, meta.progress_events, `${name}: one DENOISE event per network call`);
    assert.deepEqual(result.timesteps, meta.timesteps);
    assert.equal(
      noise.drawn,
      1 + (file.tensors.get('step_noise') ? meta.progress_events.length - (meta.family === 'lcm' ? 1 : 0) : 0),
    );
    const returned = latentOf(result.latent!.data!);
    const steps = meta.progress_events.length;
    check('returned latent', returned, reference('latents').subarray(steps * size, (steps + 1) * size));
    assert.deepEqual(
      result.stages.map((s) => s.stage),
      ['TEXT_ENCODE', 'DENOISE', 'DECODE'],
    );
  }
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
  gateway.services.noiseFor = undefined;
});

/** [1, C, 8, 8] repeated to [1, C, side, side]: every 8x8 tile the fixture's (the stand-in model is elementwise). */
function tile(data: Float32Array, channels: number, side: number): Float32Array {
  const out = new Float32Array(channels * side * side);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++) out[(c * side + y) * side + x] = data[(c * 8 + (y % 8)) * 8 + (x % 8)];
  return out;
}

interface FluxCaseJson extends CaseJson {
  params: CaseJson['params'] & { image_seq_len: number; latent_shape: number[] };
}

test('every Flux img2img fixture is reproduced step by step through the gateway pipeline', async (t) => {
  const cases = index.cases.filter((c) => c.config.startsWith('flux'));
  assert.ok(cases.length >= 10, `${cases.length} cases`);
  const runtime = gateway.services.router.local.executor.runtime;
  const runTensors = runtime.runTensors.bind(runtime);
  let transformerInputs: Record<string, Tensor> | undefined;
  runtime.runTensors = async (key, source, inputs, outputs) => {
    if (key.endsWith('/transformer')) transformerInputs ??= inputs;
    return runTensors(key, source, inputs, outputs);
  };
  let worst = 0;
  try {
    for (const { case: name, config } of cases) {
      const meta = readJson(`${name}.json`) as FluxCaseJson;
      const file = await readSafetensors(resolve(DIR, `${name}.safetensors`));
      const reference = (tensor: string) => tensorToFloat32(file.tensors.get(tensor)!);
      const dev = config === 'flux_dev';
      // flux_dev's mu comes from image_seq_len: the latent is the size that has it ((side/2)^2 tokens).
      const side = dev ? 2 * Math.sqrt(meta.params.image_seq_len) : 8;
      const channels = 16;
      // A fixture tensor (packed [1, 16, 64]) as the tiled latent's packed layout.
      const expected = (packed: Float32Array) =>
        packLatents(tile(unpackLatents(packed, [1, 16, 64], 64, 64, 8).data, channels, side), [1, channels, side, side])
          .data;
      const noiseDims: number[][] = [];
      gateway.services.noiseFor = () => ({
        randn(shape) {
          noiseDims.push([...shape]);
          return tile(reference('noise'), channels, side);
        },
      });
      const check = (what: string, got: Float32Array, ref: Float32Array) => {
        const error = relativeError(got, ref);
        worst = Math.max(worst, error);
        assert.ok(error <= 1e-5, `${name} ${what}: relative error ${error}`);
      };
      const x0 = tile(reference('x0'), channels, side);
      const events: { step: number; total: number; timestep: number }[] = [];
      transformerInputs = undefined;
      const step = (tensor: string, i: number) => reference(tensor).subarray(i * 1024, (i + 1) * 1024);
      const result = await img2img(
        gateway.services,
        {
          ...requestFor(name, meta, x0),
          latent: { bytes: float32Bytes(x0), shape: [1, channels, side, side], dtype: 'float32' },
          prompt: 'a photo of a cat',
          guidanceScale: 3.5,
        },
        {
          onProgress: ({ stage, step, total, timestep }) => {
            if (stage === 'DENOISE') events.push({ step, total, timestep: timestep! });
          },
          onDenoiseStep: ({ step: k, modelInput, modelOutput, latent }) => {
            check(`model_input[${k - 1}]`, modelInput, expected(step('model_input', k - 1)));
            check(`model_output[${k - 1}]`, modelOutput, expected(step('model_output', k - 1)));
            check(`latents[${k}]`, latent, expected(step('latents', k)));
          },
        },
      );
      // Timesteps are float32 in the schedule; the fixture's JSON has them as doubles of those.
      assert.deepEqual(
        events.map((e) => ({ ...e, timestep: Math.fround(e.timestep) })),
        meta.progress_events.map((e) => ({ ...e, timestep: Math.fround(e.timestep) })),
      );
      // One draw, of the unpacked latent's shape (no posterior sample for an init latent, no step noise).
      assert.deepEqual(noiseDims, [[1, channels, side, side]]);
      const steps = meta.progress_events.length;
      assert.deepEqual(result.latent!.shape, [1, (side / 2) ** 2, 64], 'the packed latent, as diffusers returns it');
      check('returned latent', latentOf(result.latent!.data!), expected(step('latents', steps)));
      assert.deepEqual(
        result.stages.map((s) => s.stage),
        ['TEXT_ENCODE', 'DENOISE', 'DECODE'],
      );
      assert.deepEqual([result.width, result.height], [side * 8, side * 8]);

      // What the transformer was given at the first step, as FluxImg2ImgPipeline gives it.
      const inputs = transformerInputs!;
      assert.ok(inputs, `${name}: the transformer ran`);
      const data = (input: string) => Array.from(inputs[input].data as Float32Array);
      assert.deepEqual(inputs.timestep.dims, [1]);
      assert.equal(data('timestep')[0], fluxTransformerTimestep(meta.timesteps[0]));
      assert.deepEqual(inputs.hidden_states.dims, [1, (side / 2) ** 2, 64]);
      if (dev) assert.deepEqual(data('guidance'), [3.5]);
      else assert.equal(inputs.guidance, undefined, 'schnell has no guidance input');
      const tokens = (side / 2) ** 2;
      assert.deepEqual(inputs.img_ids.dims, dev ? [tokens, 3] : [1, tokens, 3]);
      const ids = data('img_ids');
      const last = tokens - 1;
      assert.deepEqual(ids.slice(3, 6), [0, 0, 1], 'token 1: row 0, column 1');
      assert.deepEqual(ids.slice(last * 3), [0, side / 2 - 1, side / 2 - 1]);
      assert.deepEqual(inputs.txt_ids.dims, dev ? [512, 3] : [1, 512, 3]);
      assert.ok(data('txt_ids').every((v) => v === 0));
      assert.deepEqual(inputs.pooled_projections.dims, [1, 768]);
      assert.ok(
        data('pooled_projections').every((v) => v === 1),
        'CLIP pooler_output of a prompt with words',
      );
      // T5: "a photo of a cat" is 5 content tokens, then </s> and <pad> up to 512.
      assert.deepEqual(inputs.encoder_hidden_states.dims, [1, 512, T5_HIDDEN]);
      const states = inputs.encoder_hidden_states.data as Float32Array;
      const row = (k: number) => states[k * T5_HIDDEN];
      assert.deepEqual(
        Array.from({ length: 8 }, (_, k) => row(k)),
        [1, 1, 1, 1, 1, 0, 0, 0],
      );
    }
  } finally {
    runtime.runTensors = runTensors;
    gateway.services.noiseFor = undefined;
  }
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
});

function fluxRequest(overrides: Partial<Img2ImgRequest>): Img2ImgRequest {
  return {
    model: 'flux_schnell',
    prompt: 'a red house',
    negativePrompt: null,
    strength: 0.6,
    steps: 2,
    guidanceScale: 0,
    seed: 7n,
    scheduler: null,
    format: 'png',
    delivery: 'BASE64',
    returnLatent: true,
    dtype: 'float32',
    ...overrides,
  };
}

test('Flux from an image: sized to multiples of 16, the seed drawn as diffusers draws it', async () => {
  // 72x40 pixels: FluxImg2ImgPipeline's processor (vae_scale_factor * 2) resizes to 64x32, a [1, 16, 4, 8] latent.
  const image = gradientPng(72, 40, 13);
  const seeded = await img2img(gateway.services, fluxRequest({ image }));
  assert.deepEqual([seeded.width, seeded.height], [64, 32]);
  assert.deepEqual(
    seeded.stages.map((s) => s.stage),
    ['TEXT_ENCODE', 'ENCODE', 'DENOISE', 'DECODE'],
  );
  assert.deepEqual(seeded.latent!.shape, [1, 8, 64]);
  // The same run with torch's generator for the seed, watched: the posterior sample, then the start noise,
  // both of the unpacked latent's shape.
  const shapes: number[][] = [];
  gateway.services.noiseFor = (seed) => {
    const generator = new TorchGenerator(seed);
    return {
      randn(shape) {
        shapes.push([...shape]);
        return generator.randn(shape);
      },
    };
  };
  try {
    const watched = await img2img(gateway.services, fluxRequest({ image }));
    assert.deepEqual(shapes, [
      [1, 16, 4, 8],
      [1, 16, 4, 8],
    ]);
    assert.equal(watched.latent!.sha256, seeded.latent!.sha256);
    assert.equal(watched.images[0].data, seeded.images[0].data);
  } finally {
    gateway.services.noiseFor = undefined;
  }
});

test('Flux refusals: a negative prompt, an odd latent, a T5 prompt over 512 tokens', async () => {
  const latent = (h: number, w: number) => ({
    bytes: float32Bytes(new Float32Array(16 * h * w)),
    shape: [1, 16, h, w],
    dtype: 'float32',
  });
  const refused = (request: Img2ImgRequest, code: string, pattern: RegExp) =>
    assert.rejects(img2img(gateway.services, request), (error: unknown) => {
      assert.ok(error instanceof GatewayError);
      assert.equal(error.code, code);
      assert.match(error.message, pattern);
      return true;
    });
  await refused(fluxRequest({ latent: latent(4, 4), negativePrompt: 'blurry' }), 'BAD_REQUEST', /negativePrompt/);
  await refused(fluxRequest({ latent: latent(4, 5) }), 'LATENT_SHAPE_MISMATCH', /even/);
  // 120 words pass: CLIP (77 tokens) only gives the pooled vector from its first ones, as in diffusers.
  const words = (n: number) => Array.from({ length: n }, () => 'cat').join(' ');
  const ok = await img2img(gateway.services, fluxRequest({ latent: latent(4, 4), prompt: words(120) }));
  assert.equal(ok.timesteps.length, 2);
  await refused(fluxRequest({ latent: latent(4, 4), prompt: words(600) }), 'PROMPT_TOO_LONG', /601 tokens.*512/);
});

test('a Flux folder: kind, transformer and encoders read from it; what cannot run is named at load', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'latentgate-flux-load-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeTinyPipeline(dir, { variant: 'flux', guidanceEmbeds: false });
  const model = loadPipelineFolder('flux-load', dir);
  assert.equal(model.diffusion?.kind, 'flux');
  assert.equal(model.diffusion?.denoiser.kind, 'transformer');
  assert.deepEqual([model.latentChannels, model.family.scalingFactor, model.family.shiftFactor], [16, 0.3611, 0.1159]);
  // The config says guidance-distilled, the export has no `guidance` input: it could not take guidanceScale.
  const configPath = join(dir, 'transformer', 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  writeFileSync(configPath, JSON.stringify({ ...config, guidance_embeds: true }));
  assert.throws(() => loadPipelineFolder('flux-load', dir), /transformer\/model.onnx has no input "guidance"/);
  writeFileSync(configPath, JSON.stringify(config));
  rmSync(join(dir, 'text_encoder_2'), { recursive: true });
  assert.throws(
    () => loadPipelineFolder('flux-load', dir),
    /needs text_encoder\/ \(CLIP\) and text_encoder_2\/ \(T5\)/,
  );
});
