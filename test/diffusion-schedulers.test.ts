/**
 * Replays every img2img reference trajectory (diffusers' own scheduler code driven by an analytic
 * stand-in model, fixtures/img2img) through src/diffusion: timesteps exactly, then every model input,
 * model output, clean-latent estimate and latent, to 1e-5 x max|ref|.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { alphasCumprod, makeBetas, trainingSigmas } from '../src/diffusion/betas.ts';
import type { SchedulerClassName } from '../src/diffusion/config.ts';
import {
  classifierFreeGuidance,
  guidanceScaleEmbedding,
  rescaleGuidance,
  sdxlTimeIds,
  usesClassifierFreeGuidance,
} from '../src/diffusion/guidance.ts';
import { denoise } from '../src/diffusion/loop.ts';
import { f32 } from '../src/diffusion/numeric.ts';
import { TorchGenerator } from '../src/diffusion/random.ts';
import {
  calculateShift,
  createScheduler,
  type FlowMatchEulerDiscreteScheduler,
  fluxTransformerTimestep,
  type Scheduler,
} from '../src/diffusion/schedulers/index.ts';
import { planImg2Img, startLatent } from '../src/diffusion/strength.ts';
import { GatewayError } from '../src/errors.ts';
import { packLatents, unpackLatents } from '../src/protocol/packing.ts';
import { readSafetensors, type SafetensorsFile, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { SHARED_DIR } from './support/paths.ts';

const DIR = resolve(SHARED_DIR, 'fixtures/img2img');
const TOLERANCE = 1e-5;
const readJson = (name: string) => JSON.parse(readFileSync(resolve(DIR, name), 'utf8'));

interface CaseJson {
  case: string;
  scheduler: string;
  scheduler_config: Record<string, unknown>;
  family: string;
  params: {
    num_inference_steps: number;
    strength: number;
    guidance_scale: number | null;
    latent_shape: number[];
    image_seq_len?: number;
    lcm_guidance_scale?: number;
  };
  derived: Record<string, number | null>;
  cfg_enabled: boolean;
  timesteps: number[];
  timesteps_full: number[];
  progress_events: { step: number; total: number; timestep: number }[];
}

const index = readJson('index.json') as {
  cases: { case: string; config: string }[];
  rejected: { case: string; config: string; num_inference_steps: number; strength: number; reason: string }[];
};
const caseJson = (name: string) => readJson(`${name}.json`) as CaseJson;

/** The fixture's stand-in network: a*x + b*time + c, float32, with time = t/1000 for the network's t. */
function standInModel(x: Float32Array, time: number, [a, b, c]: [number, number, number]): Float32Array {
  const tTerm = f32(f32(b) * time);
  return x.map((v) => f32(f32(f32(f32(a) * v) + tTerm) + f32(c)));
}
const UNCOND: [number, number, number] = [0.1, 0.05, 0];
const COND: [number, number, number] = [0.12, 0.05, 0.02];

/** max|got - ref| / max|ref| over a slice of a stacked reference tensor. */
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

class Reference {
  worst = 0;
  constructor(
    private readonly file: SafetensorsFile,
    private readonly label: string,
  ) {}
  tensor(name: string): Float32Array {
    const stored = this.file.tensors.get(name);
    assert.ok(stored, `${this.label}: tensor ${name}`);
    return tensorToFloat32(stored);
  }
  has(name: string): boolean {
    return this.file.tensors.has(name);
  }
  /** Row `row` of a stacked [S, ...] tensor. */
  row(name: string, row: number, size: number): Float32Array {
    return this.tensor(name).subarray(row * size, (row + 1) * size);
  }
  check(what: string, got: Float32Array, ref: Float32Array): void {
    const error = relativeError(got, ref);
    this.worst = Math.max(this.worst, error);
    assert.ok(error <= TOLERANCE, `${this.label} ${what}: relative error ${error}`);
  }
}

function timestepsFromFile(file: SafetensorsFile, name: string): number[] {
  const ints = file.int64.get(name);
  if (ints) return Array.from(ints.values, Number);
  return Array.from(tensorToFloat32(file.tensors.get(name)!));
}

/** Timesteps exactly (Flux's float32 timesteps to 1e-7 relative, as the fixture README allows). */
function assertTimesteps(label: string, got: readonly number[], expected: readonly number[], flux: boolean): void {
  assert.equal(got.length, expected.length, `${label}: ${got.length} timesteps, expected ${expected.length}`);
  for (let i = 0; i < got.length; i++) {
    if (flux)
      assert.ok(
        Math.abs(got[i] - expected[i]) <= 1e-7 * Math.abs(expected[i]),
        `${label}[${i}]: ${got[i]} vs ${expected[i]}`,
      );
    else assert.equal(got[i], expected[i], `${label}[${i}]`);
  }
}

function buildScheduler(meta: Pick<CaseJson, 'scheduler' | 'scheduler_config'>): Scheduler {
  return createScheduler({ ...meta.scheduler_config, _class_name: meta.scheduler });
}

const fluxMu = (scheduler: Scheduler, imageSeqLen: number | undefined) =>
  imageSeqLen === undefined
    ? undefined
    : calculateShift(imageSeqLen, (scheduler as FlowMatchEulerDiscreteScheduler).config);

async function replay(name: string): Promise<number> {
  const meta = caseJson(name);
  const file = await readSafetensors(resolve(DIR, `${name}.safetensors`));
  const ref = new Reference(file, name);
  const flux = meta.family === 'flow';
  const scheduler = buildScheduler(meta);
  const { num_inference_steps: steps, strength } = meta.params;
  const mu =
    flux && meta.scheduler_config.use_dynamic_shifting ? fluxMu(scheduler, meta.params.image_seq_len) : undefined;
  if (mu !== undefined) assert.ok(Math.abs(mu - (meta.derived.mu as number)) < 1e-12, `${name}: mu ${mu}`);
  const plan = planImg2Img(scheduler, { steps, strength, mu });

  assertTimesteps(`${name} timesteps_full`, plan.fullTimesteps, timestepsFromFile(file, 'timesteps_full'), flux);
  assertTimesteps(`${name} timesteps`, plan.timesteps, timestepsFromFile(file, 'timesteps'), flux);
  assertTimesteps(`${name} timesteps (json)`, plan.timesteps, meta.timesteps, flux);
  if (meta.derived.t_start !== undefined) assert.equal(plan.tStart, meta.derived.t_start, `${name} t_start`);
  if (meta.derived.init_timestep !== undefined) assert.equal(plan.initTimestep, meta.derived.init_timestep);
  assert.equal(plan.timesteps.length, meta.derived.steps_run, `${name} steps_run`);
  if (ref.has('sigmas')) ref.check('sigmas', scheduler.sigmas!, ref.tensor('sigmas'));

  const x0 = ref.tensor('x0');
  const size = x0.length;
  const [, channels, height, width] = meta.params.latent_shape;
  const pack = (data: Float32Array) => (flux ? packLatents(data, [1, channels, height, width]).data : data);
  let latent = startLatent(scheduler, plan, x0, ref.tensor('noise'));
  if (flux) ref.check('latents_init_unpacked', latent, ref.tensor('latents_init_unpacked'));
  latent = pack(latent);
  ref.check('latents_init', latent, ref.tensor('latents_init'));

  const stepNoise = ref.has('step_noise') ? ref.tensor('step_noise') : new Float32Array(0);
  let drawn = 0;
  const lcmEmbedding =
    meta.params.lcm_guidance_scale !== undefined
      ? guidanceScaleEmbedding(meta.params.lcm_guidance_scale, 256)
      : undefined;
  if (lcmEmbedding) ref.check('lcm_w_embedding', lcmEmbedding, ref.tensor('lcm_w_embedding'));
  const guidance = meta.params.guidance_scale;
  assert.equal(usesClassifierFreeGuidance(guidance ?? 1, meta.family === 'lcm' ? 256 : null), meta.cfg_enabled);

  let calls = 0;
  const events: { step: number; total: number; timestep: number }[] = [];
  latent = await denoise({
    scheduler,
    plan,
    latent,
    // Flux's transformer itself takes t/1000 (= sigma), so its stand-in term is b*sigma.
    model: (modelInput, t) => {
      const i = calls++;
      const time = flux ? fluxTransformerTimestep(t) : f32(t / 1000);
      if (!meta.cfg_enabled) return standInModel(modelInput, time, UNCOND);
      const uncond = standInModel(modelInput, time, UNCOND);
      const cond = standInModel(modelInput, time, COND);
      ref.check(`model_output_uncond[${i}]`, uncond, ref.row('model_output_uncond', i, size));
      ref.check(`model_output_cond[${i}]`, cond, ref.row('model_output_cond', i, size));
      return classifierFreeGuidance(uncond, cond, guidance!);
    },
    stepNoise: () => stepNoise.slice(drawn * size, ++drawn * size),
    onStep: ({ step, total, timestep, modelInput, modelOutput, predOriginal, latent: after }) => {
      const i = step - 1;
      events.push({ step, total, timestep });
      ref.check(`model_input[${i}]`, modelInput, ref.row('model_input', i, size));
      ref.check(`model_output[${i}]`, modelOutput, ref.row('model_output', i, size));
      if (ref.has('pred_original_sample'))
        ref.check(`pred_original_sample[${i}]`, predOriginal, ref.row('pred_original_sample', i, size));
      if (ref.has('denoised')) ref.check(`denoised[${i}]`, predOriginal, ref.row('denoised', i, size));
      ref.check(`latents[${i + 1}]`, after, ref.row('latents', i + 1, size));
    },
  });
  assert.deepEqual(
    events,
    meta.progress_events.map((e) => ({ ...e, timestep: flux ? plan.timesteps[e.step - 1] : e.timestep })),
  );
  assert.equal(drawn * size, stepNoise.length, `${name}: every stored step noise is consumed`);
  if (flux) {
    const unpacked = unpackLatents(latent, [1, (height * width) / 4, channels * 4], height * 8, width * 8, 8).data;
    ref.check('final_unpacked', unpacked, ref.tensor('final_unpacked'));
  }
  return ref.worst;
}

test('every img2img trajectory replays step by step within 1e-5 x max|ref|', async (t) => {
  assert.ok(index.cases.length >= 50);
  const worst: Record<string, number> = {};
  for (const { case: name, config } of index.cases) {
    const error = await replay(name);
    worst[config] = Math.max(worst[config] ?? 0, error);
  }
  for (const [config, error] of Object.entries(worst))
    t.diagnostic(`${config}: max relative error ${error.toExponential(2)}`);
});

test('rejected requests are refused with a typed error naming values that work', () => {
  for (const rejected of index.rejected) {
    const meta = caseJson(index.cases.find((c) => c.config === rejected.config)!.case);
    const scheduler = buildScheduler(meta);
    assert.throws(
      () => planImg2Img(scheduler, { steps: rejected.num_inference_steps, strength: rejected.strength }),
      (error: unknown) => {
        assert.ok(error instanceof GatewayError);
        assert.equal(error.code, 'NO_DENOISING_STEPS');
        // diffusers' reason names the largest step count that works (here "smaller than 15").
        const limit = /smaller than (\d+)/.exec(rejected.reason)?.[1];
        assert.ok(limit && error.message.includes(limit), error.message);
        return true;
      },
      rejected.case,
    );
  }
});

test('the timesteps table: every (config, steps, strength) row, errors and SDXL denoising_start included', () => {
  const table = readJson('timesteps_table.json') as { rows: Record<string, unknown>[] };
  const configs = new Map<string, CaseJson>();
  for (const { case: name, config } of index.cases) if (!configs.has(config)) configs.set(config, caseJson(name));
  let checked = 0;
  for (const row of table.rows) {
    const label = JSON.stringify(row).slice(0, 160);
    const meta = configs.get(row.config as string);
    assert.ok(meta, `no case file for config ${row.config}`);
    const scheduler = buildScheduler(meta);
    const flux = meta.family === 'flow';
    const request = {
      steps: row.num_inference_steps as number,
      strength: (row.strength as number | undefined) ?? 1,
      mu:
        flux && meta.scheduler_config.use_dynamic_shifting ? fluxMu(scheduler, row.image_seq_len as number) : undefined,
      denoisingStart: row.denoising_start as number | undefined,
    };
    if (row.error) {
      assert.throws(() => planImg2Img(scheduler, request), GatewayError, label);
      checked++;
      continue;
    }
    const plan = planImg2Img(scheduler, request);
    assertTimesteps(label, plan.timesteps, row.timesteps as number[], flux);
    if (row.t_start !== undefined) assert.equal(plan.tStart, row.t_start, label);
    if (row.init_timestep !== undefined) assert.equal(plan.initTimestep, row.init_timestep, label);
    if (row.mu !== undefined && request.mu !== undefined)
      assert.ok(Math.abs((request.mu ?? Number.NaN) - (row.mu as number)) < 1e-12, label);
    if (row.denoising_start !== undefined) assert.equal(plan.addNoise, false);
    if (typeof row.start_sigma === 'number') assert.equal(scheduler.sigmas![plan.tStart], f32(row.start_sigma), label);
    checked++;
  }
  assert.equal(checked, table.rows.length);
});

test('SD 1.5 training schedule: betas, alphas_cumprod and sigmas bit for bit', async () => {
  const meta = readJson('sd15_schedule.json');
  const file = await readSafetensors(resolve(DIR, 'sd15_schedule.safetensors'));
  const betas = makeBetas(meta.config);
  const alphas = alphasCumprod(betas);
  for (const [name, got] of [
    ['betas', betas],
    ['alphas_cumprod', alphas],
    ['karras_sigmas_train', trainingSigmas(alphas)],
  ] as const) {
    assert.deepEqual([...got], [...tensorToFloat32(file.tensors.get(name)!)], name);
  }
});

test('classifier-free guidance and guidance_rescale match diffusers on random tensors', async () => {
  const meta = readJson('cfg.json');
  const ref = new Reference(await readSafetensors(resolve(DIR, 'cfg.safetensors')), 'cfg');
  const uncond = ref.tensor('noise_pred_uncond');
  const cond = ref.tensor('noise_pred_text');
  const guided = classifierFreeGuidance(uncond, cond, meta.guidance_scale);
  ref.check('guided', guided, ref.tensor('guided'));
  const batch = meta.tensors.guided[0];
  ref.check(
    'guided_rescaled',
    rescaleGuidance(guided, cond, meta.guidance_rescale, batch),
    ref.tensor('guided_rescaled'),
  );
  assert.ok(usesClassifierFreeGuidance(7.5, null) && !usesClassifierFreeGuidance(1, null));
  assert.ok(!usesClassifierFreeGuidance(8.5, 256), 'an LCM UNet (time_cond_proj_dim) never runs CFG');
});

test('SDXL add_time_ids for base and refiner UNets', () => {
  const meta = readJson('sdxl_time_ids.json');
  assert.deepEqual(sdxlTimeIds({ originalSize: [512, 512], targetSize: [512, 512] }), {
    addTimeIds: meta.base_512.add_time_ids,
    addNegTimeIds: meta.base_512.add_neg_time_ids,
  });
  assert.deepEqual(sdxlTimeIds({ originalSize: [1024, 768], targetSize: [1024, 768] }), {
    addTimeIds: meta.base_1024x768.add_time_ids,
    addNegTimeIds: meta.base_1024x768.add_neg_time_ids,
  });
  assert.deepEqual(
    sdxlTimeIds({ originalSize: [1024, 1024], targetSize: [1024, 1024], requiresAestheticsScore: true }),
    { addTimeIds: meta.refiner_1024.add_time_ids, addNegTimeIds: meta.refiner_1024.add_neg_time_ids },
  );
});

test('scheduler configs: from_config class switching, refused options named', () => {
  const sd15 = { ...caseJson('pndm_n4_s0.50').scheduler_config, _class_name: 'PNDMScheduler' };
  const euler = createScheduler(sd15, 'EulerDiscreteScheduler');
  assert.equal(euler.className, 'EulerDiscreteScheduler');
  euler.setTimesteps(4);
  assert.deepEqual(euler.timesteps, [751, 501, 251, 1], 'leading spacing and steps_offset carry over');
  assert.throws(
    () => createScheduler({ ...sd15, _class_name: 'DPMSolverMultistepScheduler' }),
    /DPMSolverMultistepScheduler.*supported/,
  );
  assert.throws(
    () => createScheduler({ ...sd15, _class_name: 'EulerDiscreteScheduler', use_karras_sigmas: true }),
    /use_karras_sigmas/,
  );
  assert.throws(() => createScheduler({ ...sd15, skip_prk_steps: false }), /skip_prk_steps/);
  assert.throws(() => createScheduler({ ...sd15, timestep_spacing: 'cosine' }), GatewayError);
  const strengthError = (() => {
    try {
      planImg2Img(createScheduler({ ...sd15, _class_name: 'DDIMScheduler' }), { steps: 4, strength: 0.1 });
    } catch (error) {
      return error as GatewayError;
    }
  })();
  assert.equal(strengthError?.code, 'NO_DENOISING_STEPS');
  assert.deepEqual(
    { minSteps: strengthError?.details.minSteps, minStrength: strengthError?.details.minStrength },
    { minSteps: 10, minStrength: 0.25 },
  );
});

test('v_prediction and sample prediction recover the clean latent from an exact model', () => {
  const sd15 = caseJson('pndm_n4_s0.50').scheduler_config;
  const generator = new TorchGenerator(3);
  const x0 = generator.randn([64]);
  const eps = generator.randn([64]);
  const cases: [SchedulerClassName, 'v_prediction' | 'sample'][] = [
    ['EulerDiscreteScheduler', 'v_prediction'],
    ['EulerDiscreteScheduler', 'sample'],
    ['EulerAncestralDiscreteScheduler', 'v_prediction'],
    ['DDIMScheduler', 'v_prediction'],
    ['DDIMScheduler', 'sample'],
    ['LCMScheduler', 'v_prediction'],
    ['LCMScheduler', 'sample'],
    ['PNDMScheduler', 'v_prediction'],
  ];
  for (const [className, predictionType] of cases) {
    const scheduler = createScheduler(
      { ...sd15, skip_prk_steps: true, clip_sample: false, prediction_type: predictionType },
      className,
    );
    const plan = planImg2Img(scheduler, { steps: 4, strength: 1 });
    const t = plan.timesteps[0];
    const sample = startLatent(scheduler, plan, x0, eps);
    // Noise and signal scales of this timestep, read back through add_noise itself.
    const signal = scheduler.addNoise(new Float32Array([1]), new Float32Array([0]), t)[0];
    const noiseScale = scheduler.addNoise(new Float32Array([0]), new Float32Array([1]), t)[0];
    // In the Euler family x = x0 + sigma eps, i.e. signal 1, noise sigma; v is defined on the scaled input.
    const norm = Math.hypot(signal, noiseScale);
    const [a, b] = [signal / norm, noiseScale / norm];
    const output = predictionType === 'sample' ? x0 : eps.map((e, i) => a * e - b * x0[i]);
    const noise = scheduler.needsStepNoise() ? new Float32Array(64) : undefined;
    const { predOriginal } = scheduler.step(output, t, sample, noise);
    const error = relativeError(predOriginal, x0);
    assert.ok(error < 1e-4, `${className} ${predictionType}: relative error ${error}`);
  }
  assert.throws(
    () => createScheduler({ ...sd15, skip_prk_steps: true, prediction_type: 'sample' }, 'PNDMScheduler'),
    /prediction_type/,
  );
});

test('denoise stops at the next step once cancelled, with the CANCELLED error', async () => {
  const meta = caseJson('euler_a_leading_n20_s0.75');
  const scheduler = buildScheduler(meta);
  const plan = planImg2Img(scheduler, { steps: 20, strength: 0.75 });
  const controller = new AbortController();
  const generator = new TorchGenerator(42);
  let calls = 0;
  await assert.rejects(
    denoise({
      scheduler,
      plan,
      latent: generator.randn([1, 4, 8, 8]),
      model: (x, t) => {
        calls++;
        return standInModel(x, f32(t / 1000), UNCOND);
      },
      stepNoise: () => generator.randn([1, 4, 8, 8]),
      onStep: ({ step }) => {
        if (step === 2) controller.abort();
      },
      signal: controller.signal,
    }),
    (error: unknown) => error instanceof GatewayError && error.code === 'CANCELLED',
  );
  assert.equal(calls, 2);
});
