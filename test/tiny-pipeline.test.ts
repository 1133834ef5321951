/** The tiny diffusion pipeline folder: each network loaded straight into onnxruntime, checked by hand. */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { SHARED_DIR } from './support/paths.ts';
import {
  FLUX_FEATURES,
  T5_HIDDEN,
  TINY_WORDS,
  type TinyPipelineInfo,
  type TinyPipelineOptions,
  type TinyTimestep,
  tinyFluxTransformer,
  tinyUnet,
  writeTinyPipeline,
} from './support/tiny-pipeline.ts';

const { onnx } = onnxProto;
let root: string;
let counter = 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'latentgate-tiny-pipeline-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function write(options: TinyPipelineOptions): TinyPipelineInfo {
  return writeTinyPipeline(join(root, `p${counter++}`), options);
}

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8'));
}

async function run(path: string, feeds: Record<string, ort.Tensor>) {
  const session = await ort.InferenceSession.create(path);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

function signature(session: ort.InferenceSession) {
  return session.inputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: m.shape } : m.name));
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance = 1e-6) {
  assert.equal(got.length, want.length);
  for (let i = 0; i < got.length; i++)
    assert.ok(Math.abs(got[i] - want[i]) <= tolerance, `element ${i}: got ${got[i]}, want ${want[i]}`);
}

/** Hidden states whose row maxima are `maxima` (one row per batch item, sequence 3). */
function hiddenStates(maxima: number[], hidden: number): ort.Tensor {
  const data = new Float32Array(maxima.length * 3 * hidden);
  for (const [b, m] of maxima.entries()) {
    for (let i = 0; i < 3 * hidden; i++) data[b * 3 * hidden + i] = (m * ((i * 7) % 11)) / 10;
    data[b * 3 * hidden + 5] = m;
  }
  return new ort.Tensor('float32', data, [maxima.length, 3, hidden]);
}

function timestepTensor(kind: TinyTimestep, values: number[]): ort.Tensor {
  if (kind === 'int64-batch') return new ort.Tensor('int64', new BigInt64Array(values.map(BigInt)), [values.length]);
  if (kind === 'float32-batch') return new ort.Tensor('float32', new Float32Array(values), [values.length]);
  return new ort.Tensor('float32', new Float32Array(values), []);
}

const SAMPLE = new Float32Array(2 * 4 * 2 * 3).map((_, i) => ((i * 13) % 17) / 4 - 2);

function expectedUnet(timesteps: number[], maxima: number[]) {
  const per = SAMPLE.length / 2;
  return Array.from(SAMPLE, (x, i) =>
    tinyUnet(x, timesteps[timesteps.length === 1 ? 0 : i >= per ? 1 : 0], maxima[i >= per ? 1 : 0]),
  );
}

describe('UNet', () => {
  for (const timestep of ['int64-batch', 'float32-batch', 'float32-scalar'] as const) {
    test(`sd, ${timestep}: declared inputs and the formula`, async () => {
      const { dir } = write({ variant: 'sd', timestep });
      const path = join(dir, 'unet', 'model.onnx');
      const session = await ort.InferenceSession.create(path);
      assert.deepEqual(signature(session), [
        { name: 'sample', type: 'float32', shape: ['batch_size', 4, 'height', 'width'] },
        {
          name: 'timestep',
          type: timestep === 'int64-batch' ? 'int64' : 'float32',
          shape: timestep === 'float32-scalar' ? [] : ['steps'],
        },
        { name: 'encoder_hidden_states', type: 'float32', shape: ['batch_size', 'sequence_length', 768] },
      ]);
      assert.deepEqual(session.outputNames, ['out_sample']);
      await session.release();

      const steps = timestep === 'float32-scalar' ? [751.5] : timestep === 'int64-batch' ? [801, 1] : [736.25, 0];
      const { out_sample } = await run(path, {
        sample: new ort.Tensor('float32', SAMPLE, [2, 4, 2, 3]),
        timestep: timestepTensor(timestep, steps),
        encoder_hidden_states: hiddenStates([0, 1], 768),
      });
      assert.deepEqual(out_sample.dims, [2, 4, 2, 3]);
      assertClose(out_sample.data as Float32Array, expectedUnet(steps, [0, 1]));
    });
  }

  test('a timestep of one element serves the whole batch (as diffusers passes it)', async () => {
    const { dir } = write({ variant: 'sd' });
    const { out_sample } = await run(join(dir, 'unet', 'model.onnx'), {
      sample: new ort.Tensor('float32', SAMPLE, [2, 4, 2, 3]),
      timestep: timestepTensor('int64-batch', [500]),
      encoder_hidden_states: hiddenStates([1, 0.5], 768),
    });
    assertClose(out_sample.data as Float32Array, expectedUnet([500], [1, 0.5]));
  });

  test('lcm: timestep_cond is declared and does not change the output', async () => {
    const { dir } = write({ variant: 'lcm', timestep: 'float32-batch' });
    const path = join(dir, 'unet', 'model.onnx');
    const session = await ort.InferenceSession.create(path);
    assert.deepEqual(signature(session)[3], { name: 'timestep_cond', type: 'float32', shape: ['batch_size', 256] });
    await session.release();
    const { out_sample } = await run(path, {
      sample: new ort.Tensor('float32', SAMPLE, [2, 4, 2, 3]),
      timestep: timestepTensor('float32-batch', [999, 759]),
      encoder_hidden_states: hiddenStates([1, 0], 768),
      timestep_cond: new ort.Tensor(
        'float32',
        new Float32Array(512).map((_, i) => i / 100),
        [2, 256],
      ),
    });
    assertClose(out_sample.data as Float32Array, expectedUnet([999, 759], [1, 0]));
    assert.equal(readJson(join(dir, 'unet', 'config.json')).time_cond_proj_dim, 256);
  });

  for (const refiner of [false, true]) {
    test(`sdxl${refiner ? ' refiner' : ''}: text_embeds and time_ids declared, zero-weighted`, async () => {
      const { dir, crossAttentionDim } = write({ variant: 'sdxl', requiresAestheticsScore: refiner });
      const hidden = refiner ? 1280 : 2048;
      const timeIds = refiner ? 5 : 6;
      assert.equal(crossAttentionDim, hidden);
      const path = join(dir, 'unet', 'model.onnx');
      const session = await ort.InferenceSession.create(path);
      assert.deepEqual(signature(session).slice(2), [
        { name: 'encoder_hidden_states', type: 'float32', shape: ['batch_size', 'sequence_length', hidden] },
        { name: 'text_embeds', type: 'float32', shape: ['batch_size', 1280] },
        { name: 'time_ids', type: 'float32', shape: ['batch_size', timeIds] },
      ]);
      await session.release();
      const { out_sample } = await run(path, {
        sample: new ort.Tensor('float32', SAMPLE, [2, 4, 2, 3]),
        timestep: timestepTensor('int64-batch', [601, 601]),
        encoder_hidden_states: hiddenStates([0, 1], hidden),
        text_embeds: new ort.Tensor('float32', new Float32Array(2 * 1280).fill(3), [2, 1280]),
        time_ids: new ort.Tensor('float32', new Float32Array(2 * timeIds).fill(1024), [2, timeIds]),
      });
      assertClose(out_sample.data as Float32Array, expectedUnet([601, 601], [0, 1]));
      const config = readJson(join(dir, 'unet', 'config.json'));
      assert.equal(config.cross_attention_dim, hidden);
      assert.equal(config.projection_class_embeddings_input_dim, timeIds * 256 + 1280);
    });
  }

  test('external data: float initializers live in model.onnx_data and are read from it', async () => {
    const { dir } = write({ variant: 'lcm', externalData: true });
    const path = join(dir, 'unet', 'model.onnx');
    const model = onnx.ModelProto.decode(readFileSync(path));
    const external = model.graph!.initializer!.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
    assert.ok(external.length >= 5, `${external.length} external initializers`);
    const data = readFileSync(join(dir, 'unet', 'model.onnx_data'));
    let end = 0;
    for (const t of external) {
      assert.equal(t.rawData!.length, 0, `${t.name} has no inline bytes`);
      const entry = Object.fromEntries(t.externalData!.map((e) => [e.key, e.value]));
      assert.equal(entry.location, 'model.onnx_data');
      end = Math.max(end, Number(entry.offset) + Number(entry.length));
    }
    assert.equal(end, data.length);

    const feeds = () => ({
      sample: new ort.Tensor('float32', SAMPLE, [2, 4, 2, 3]),
      timestep: timestepTensor('int64-batch', [261, 261]),
      encoder_hidden_states: hiddenStates([1, 0], 768),
      timestep_cond: new ort.Tensor('float32', new Float32Array(512), [2, 256]),
    });
    const before = await run(path, feeds());
    assertClose(before.out_sample.data as Float32Array, expectedUnet([261, 261], [1, 0]));

    // The gain's base 0.1 -> 0.3 in the data file changes the output accordingly.
    const base = external.find((t) => t.name === 'a_base')!;
    const offset = Number(base.externalData!.find((e) => e.key === 'offset')!.value);
    assert.equal(data.readFloatLE(offset), Math.fround(0.1));
    data.writeFloatLE(0.3, offset);
    writeFileSync(join(dir, 'unet', 'model.onnx_data'), data);
    const after = await run(path, feeds());
    const got = after.out_sample.data as Float32Array;
    const want = expectedUnet([261, 261], [1, 0]).map((v, i) => v + 0.2 * SAMPLE[i]);
    assertClose(got, want, 1e-5);
  });
});

describe('text encoders', () => {
  test('sd: content tokens are 1.0 in every hidden channel; pooler_output is the row maximum', async () => {
    const { dir, tokenizer } = write({ variant: 'sd' });
    const { bosId, eosId, padId, vocab } = tokenizer!;
    assert.equal(padId, eosId, 'CLIP ViT-L pads with <|endoftext|>');
    const path = join(dir, 'text_encoder', 'model.onnx');
    const session = await ort.InferenceSession.create(path);
    assert.deepEqual(signature(session), [
      { name: 'input_ids', type: 'int32', shape: ['batch_size', 'sequence_length'] },
    ]);
    assert.deepEqual(session.outputNames, ['last_hidden_state', 'pooler_output']);
    await session.release();

    const rows = [
      [bosId, vocab['cat</w>'], vocab['a</w>'], eosId, padId],
      [bosId, eosId, padId, padId, padId],
    ];
    const { last_hidden_state, pooler_output } = await run(path, {
      input_ids: new ort.Tensor('int32', new Int32Array(rows.flat()), [2, 5]),
    });
    assert.deepEqual(last_hidden_state.dims, [2, 5, 768]);
    const states = last_hidden_state.data as Float32Array;
    const flags = [0, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    for (const [token, flag] of flags.entries())
      assert.ok(
        states.subarray(token * 768, (token + 1) * 768).every((v) => v === flag),
        `token ${token}`,
      );
    assert.deepEqual(pooler_output.dims, [2, 768]);
    const pooled = pooler_output.data as Float32Array;
    assert.ok(pooled.subarray(0, 768).every((v) => v === 1));
    assert.ok(pooled.subarray(768).every((v) => v === 0));
  });

  test('sdxl: both encoders, hidden states, text_embeds; tokenizer_2 pads with "!" (id 0), int64 ids', async () => {
    const { dir, tokenizer, tokenizer2 } = write({ variant: 'sdxl', inputIds: 'int64' });
    assert.equal(tokenizer2!.padId, 0);
    assert.equal(tokenizer2!.vocab['!'], 0);
    const hiddenStates = ['hidden_states.0', 'hidden_states.1', 'hidden_states.2'];
    const first = await ort.InferenceSession.create(join(dir, 'text_encoder', 'model.onnx'));
    assert.deepEqual(first.outputNames, ['last_hidden_state', 'pooler_output', ...hiddenStates]);
    assert.deepEqual(signature(first), [
      { name: 'input_ids', type: 'int64', shape: ['batch_size', 'sequence_length'] },
    ]);
    await first.release();

    const { bosId, eosId } = tokenizer!;
    const ids = [bosId, tokenizer2!.vocab['dog</w>'], eosId, 0];
    const out = await run(join(dir, 'text_encoder_2', 'model.onnx'), {
      input_ids: new ort.Tensor('int64', new BigInt64Array(ids.map(BigInt)), [1, 4]),
    });
    assert.deepEqual(Object.keys(out), ['text_embeds', 'last_hidden_state', ...hiddenStates]);
    for (const name of ['last_hidden_state', ...hiddenStates]) {
      assert.deepEqual(out[name].dims, [1, 4, 1280]);
      const data = out[name].data as Float32Array;
      assert.deepEqual(
        [0, 1, 2, 3].map((t) => data[t * 1280 + 1279]),
        [0, 1, 0, 0],
        name,
      );
    }
    assert.deepEqual(out.text_embeds.dims, [1, 1280]);
    assert.ok((out.text_embeds.data as Float32Array).every((v) => v === 1));
  });

  test('sdxl refiner: only the second encoder and tokenizer', () => {
    const { dir, tokenizer, tokenizer2 } = write({ variant: 'sdxl', requiresAestheticsScore: true });
    assert.equal(tokenizer, undefined);
    assert.ok(tokenizer2);
    const index = readJson(join(dir, 'model_index.json'));
    assert.equal(index._class_name, 'StableDiffusionXLImg2ImgPipeline');
    assert.deepEqual(index.text_encoder, [null, null]);
    assert.equal(index.requires_aesthetics_score, true);
    assert.equal(index.force_zeros_for_empty_prompt, false);
    assert.throws(() => readFileSync(join(dir, 'text_encoder', 'model.onnx')), /ENOENT/);
  });
});

describe('VAE', () => {
  const H = 16;
  const W = 24;
  const image = new Float32Array(3 * H * W).map((_, i) => (((i * 29) % 41) - 20) / 20);
  /** Mean of channel c (3: grey) over the 8x8 patch (py, px). */
  const patchMean = (c: number, py: number, px: number) => {
    let sum = 0;
    for (const ch of c === 3 ? [0, 1, 2] : [c])
      for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) sum += image[(ch * H + py * 8 + y) * W + px * 8 + x];
    return sum / (c === 3 ? 192 : 64);
  };

  for (const output of ['latent_parameters', 'latent_sample'] as const) {
    const what = output === 'latent_parameters' ? 'means of R, G, B, grey; log-variance -20' : 'means of R, G, B, grey';
    test(`encoder (${output}): 8x8 ${what}`, async () => {
      const { dir } = write({ vaeOutput: output });
      const path = join(dir, 'vae_encoder', 'model.onnx');
      const session = await ort.InferenceSession.create(path);
      assert.deepEqual(signature(session), [
        { name: 'sample', type: 'float32', shape: ['batch_size', 3, 'height', 'width'] },
      ]);
      assert.deepEqual(session.outputNames, [output]);
      await session.release();
      const result = (await run(path, { sample: new ort.Tensor('float32', image, [1, 3, H, W]) }))[output];
      const channels = output === 'latent_parameters' ? 8 : 4;
      assert.deepEqual(result.dims, [1, channels, 2, 3]);
      const want: number[] = [];
      for (let c = 0; c < channels; c++)
        for (let py = 0; py < 2; py++) for (let px = 0; px < 3; px++) want.push(c < 4 ? patchMean(c, py, px) : -20);
      assertClose(result.data as Float32Array, want, 1e-5);
    });
  }

  test('decoder: channels 0..2, nearest 8x upsampling', async () => {
    const { dir } = write({});
    const latent = new Float32Array(4 * 2 * 3).map((_, i) => i / 10);
    const { sample } = await run(join(dir, 'vae_decoder', 'model.onnx'), {
      latent_sample: new ort.Tensor('float32', latent, [1, 4, 2, 3]),
    });
    assert.deepEqual(sample.dims, [1, 3, 16, 24]);
    const data = sample.data as Float32Array;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 16; y++)
        for (let x = 0; x < 24; x++)
          assert.equal(data[(c * 16 + y) * 24 + x], latent[(c * 2 + (y >> 3)) * 3 + (x >> 3)]);
  });
});

describe('folder', () => {
  test("sd: model_index, scheduler (the fixtures' PNDM config), VAE config in both VAE folders", () => {
    const { dir } = write({ variant: 'sd' });
    const index = readJson(join(dir, 'model_index.json'));
    assert.equal(index._class_name, 'StableDiffusionPipeline');
    assert.deepEqual(index.scheduler, ['diffusers', 'PNDMScheduler']);
    assert.deepEqual(index.vae, ['diffusers', 'AutoencoderKL']);
    const { _class_name, _diffusers_version, ...scheduler } = readJson(join(dir, 'scheduler', 'scheduler_config.json'));
    assert.equal(_class_name, 'PNDMScheduler');
    const fixture = readJson(join(SHARED_DIR, 'fixtures', 'img2img', 'pndm_n4_s0.50.json'));
    assert.deepEqual(scheduler, fixture.scheduler_config);
    const encoder = readJson(join(dir, 'vae_encoder', 'config.json'));
    assert.deepEqual(encoder, readJson(join(dir, 'vae_decoder', 'config.json')));
    assert.equal(encoder.scaling_factor, 0.18215);
    assert.equal(encoder.latent_channels, 4);
    assert.equal('shift_factor' in encoder, false);
  });

  test('lcm and sdxl defaults; options override scheduler, scaling and shift factors, empty-prompt rule', () => {
    const lcm = write({ variant: 'lcm' });
    assert.equal(readJson(join(lcm.dir, 'model_index.json'))._class_name, 'LatentConsistencyModelPipeline');
    const { _class_name, _diffusers_version, ...lcmScheduler } = readJson(
      join(lcm.dir, 'scheduler', 'scheduler_config.json'),
    );
    assert.equal(_class_name, 'LCMScheduler');
    assert.deepEqual(
      lcmScheduler,
      readJson(join(SHARED_DIR, 'fixtures', 'img2img', 'lcm_n4_s0.50.json')).scheduler_config,
    );

    const sdxl = write({ variant: 'sdxl' });
    const index = readJson(join(sdxl.dir, 'model_index.json'));
    assert.equal(index._class_name, 'StableDiffusionXLPipeline');
    assert.equal(index.force_zeros_for_empty_prompt, true);
    assert.equal(index.requires_aesthetics_score, false);
    assert.equal(readJson(join(sdxl.dir, 'vae_decoder', 'config.json')).scaling_factor, 0.13025);

    const scheduler = { _class_name: 'EulerAncestralDiscreteScheduler', timestep_spacing: 'trailing' };
    const custom = write({
      variant: 'sdxl',
      scheduler,
      scalingFactor: 0.5,
      shiftFactor: 0.1,
      forceZerosForEmptyPrompt: false,
    });
    assert.deepEqual(readJson(join(custom.dir, 'scheduler', 'scheduler_config.json')), scheduler);
    const vae = readJson(join(custom.dir, 'vae_encoder', 'config.json'));
    assert.equal(vae.scaling_factor, 0.5);
    assert.equal(vae.shift_factor, 0.1);
    assert.equal(readJson(join(custom.dir, 'model_index.json')).force_zeros_for_empty_prompt, false);
  });

  test('tokenizer: CLIP files; tokenizer.json encodes each tiny word as one `</w>` token between bos and eos', () => {
    const { dir, tokenizer } = write({ variant: 'sd', tokenizerJson: true, padToken: '!' });
    const { bosId, eosId, padId, vocab } = tokenizer!;
    assert.equal(padId, 0);
    const folder = join(dir, 'tokenizer');
    assert.deepEqual(readJson(join(folder, 'vocab.json')), vocab);
    assert.equal(readJson(join(folder, 'special_tokens_map.json')).pad_token, '!');
    const config = readJson(join(folder, 'tokenizer_config.json'));
    assert.equal(config.tokenizer_class, 'CLIPTokenizer');
    assert.equal(config.model_max_length, 77);
    const merges = readFileSync(join(folder, 'merges.txt'), 'utf8').split('\n');
    assert.equal(merges[0], '#version: 0.2');
    assert.equal(vocab['<|endoftext|>'], Object.keys(vocab).length - 1);

    const clip = new Tokenizer(readJson(join(folder, 'tokenizer.json')), config);
    const encoded = clip.encode(` ${TINY_WORDS.join('  ').toUpperCase()}!`);
    assert.deepEqual(encoded.ids, [bosId, ...TINY_WORDS.map((w) => vocab[`${w}</w>`]), vocab['!</w>'], eosId]);
  });

  test('a pad token outside the vocabulary is refused', () => {
    assert.throws(() => write({ padToken: '<pad>' }), /pad token "<pad>" is not in the tiny vocabulary/);
  });
});

describe('flux', () => {
  for (const dev of [true, false]) {
    test(`transformer (${dev ? 'dev: guidance, ids [n, 3]' : 'schnell: ids [b, n, 3]'}): 0.1 x + 0.05 t`, async () => {
      const { dir } = write({ variant: 'flux', guidanceEmbeds: dev, idsRank: dev ? 2 : 3 });
      const path = join(dir, 'transformer', 'model.onnx');
      const session = await ort.InferenceSession.create(path);
      const ids = (n: string) => (dev ? [n, 3] : ['batch_size', n, 3]);
      assert.deepEqual(signature(session), [
        { name: 'hidden_states', type: 'float32', shape: ['batch_size', 'packed_height_width', FLUX_FEATURES] },
        { name: 'encoder_hidden_states', type: 'float32', shape: ['batch_size', 'sequence_length', T5_HIDDEN] },
        { name: 'pooled_projections', type: 'float32', shape: ['batch_size', 768] },
        { name: 'timestep', type: 'float32', shape: ['step'] },
        { name: 'img_ids', type: 'float32', shape: ids('packed_height_width') },
        { name: 'txt_ids', type: 'float32', shape: ids('sequence_length') },
        ...(dev ? [{ name: 'guidance', type: 'float32', shape: ['batch_size'] }] : []),
      ]);
      assert.deepEqual(session.outputNames, ['out_hidden_states']);
      await session.release();
      const hidden = new Float32Array(2 * FLUX_FEATURES).map((_, i) => (i % 13) / 7 - 1);
      const lead = dev ? [] : [1];
      const feeds: Record<string, ort.Tensor> = {
        hidden_states: new ort.Tensor('float32', hidden, [1, 2, FLUX_FEATURES]),
        encoder_hidden_states: new ort.Tensor('float32', new Float32Array(3 * T5_HIDDEN).fill(5), [1, 3, T5_HIDDEN]),
        pooled_projections: new ort.Tensor('float32', new Float32Array(768).fill(3), [1, 768]),
        timestep: new ort.Tensor('float32', Float32Array.of(0.75), [1]),
        img_ids: new ort.Tensor('float32', Float32Array.of(0, 0, 0, 0, 0, 1), [...lead, 2, 3]),
        txt_ids: new ort.Tensor('float32', new Float32Array(9), [...lead, 3, 3]),
      };
      if (dev) feeds.guidance = new ort.Tensor('float32', Float32Array.of(3.5), [1]);
      const { out_hidden_states } = await run(path, feeds);
      assert.deepEqual(out_hidden_states.dims, [1, 2, FLUX_FEATURES]);
      assertClose(
        out_hidden_states.data as Float32Array,
        Array.from(hidden, (x) => tinyFluxTransformer(x, 0.75)),
      );
    });
  }

  test('T5 encoder: 1.0 at content tokens, 0 at </s> and <pad>; 16-channel VAE; Flux configs', async () => {
    const { dir, tokenizer2 } = write({ variant: 'flux' });
    const t5 = tokenizer2!;
    const words = [t5.vocab['\u2581a'], t5.vocab['\u2581cat']];
    const { last_hidden_state } = await run(join(dir, 'text_encoder_2', 'model.onnx'), {
      input_ids: new ort.Tensor('int64', BigInt64Array.from([...words, t5.eosId, t5.padId], BigInt), [1, 4]),
    });
    assert.deepEqual(last_hidden_state.dims, [1, 4, T5_HIDDEN]);
    const flags = [0, 1, 2, 3].map((k) => (last_hidden_state.data as Float32Array)[k * T5_HIDDEN + 17]);
    assert.deepEqual(flags, [1, 1, 0, 0]);

    const image = new Float32Array(3 * 8 * 8).map((_, i) => Math.floor(i / 64) / 4);
    const { latent_parameters } = await run(join(dir, 'vae_encoder', 'model.onnx'), {
      sample: new ort.Tensor('float32', image, [1, 3, 8, 8]),
    });
    assert.deepEqual(latent_parameters.dims, [1, 32, 1, 1]);
    const means = Array.from(latent_parameters.data as Float32Array);
    assertClose(means.slice(0, 8), [0, 0.25, 0.5, 0.25, 0, 0.25, 0.5, 0.25]);
    assert.ok(means.slice(16).every((v) => v === -20));
    const { sample } = await run(join(dir, 'vae_decoder', 'model.onnx'), {
      latent_sample: new ort.Tensor(
        'float32',
        new Float32Array(16).map((_, c) => c),
        [1, 16, 1, 1],
      ),
    });
    assert.deepEqual(sample.dims, [1, 3, 8, 8]);
    assert.deepEqual(
      [0, 64, 128].map((i) => (sample.data as Float32Array)[i]),
      [0, 1, 2],
    );

    const index = readJson(join(dir, 'model_index.json'));
    assert.equal(index._class_name, 'FluxPipeline');
    assert.deepEqual(readJson(join(dir, 'vae_decoder', 'config.json')).shift_factor, 0.1159);
    assert.equal(readJson(join(dir, 'transformer', 'config.json')).guidance_embeds, true);
  });
});
