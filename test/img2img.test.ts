/**
 * img2img through the gateway: tiny pipelines in optimum's ONNX layout (test/support/tiny-pipeline.ts),
 * whose UNet is the fixtures' stand-in model (an empty prompt gives the unconditional one, a prompt with
 * a word the conditional one), run by the real pipeline code. With the fixtures' noise injected, every
 * non-Flux trajectory in fixtures/img2img is reproduced step by step, guidance batching included.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { img2img, type NoiseSource } from '../src/pipeline/img2img.ts';
import type { Img2ImgRequest } from '../src/pipeline/img2img-types.ts';
import { readSafetensors, type SafetensorsFile, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { SHARED_DIR } from './support/paths.ts';
import { type TinyTimestep, writeTinyPipeline } from './support/tiny-pipeline.ts';

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
  mkdirSync(join(modelsDir, 'unused'), { recursive: true });
  gateway = await startInProcessGateway({ MODELS_DIR: modelsDir, DEVICE_MEMORY: '4GiB' });
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
