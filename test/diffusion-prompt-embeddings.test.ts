import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cfgBatch,
  concatFeatures,
  type Float32Tensor,
  penultimateHiddenStateName,
  sdPromptEmbeds,
  sdxlPromptEmbeds,
  sdxlZeroNegative,
  zeroesNegativePrompt,
} from '../src/diffusion/text/prompt-embeddings.js';

type EncoderHalf = { type: 'float16'; data: Uint16Array; dims: number[] };

function f32(values: number[], dims: number[]): Float32Tensor {
  return { type: 'float32', data: Float32Array.from(values), dims };
}

/** [1, 2, width] with element (s, h) = base + 10 s + h. */
function hidden(base: number, width: number): Float32Tensor {
  return f32(
    Array.from({ length: 2 * width }, (_, i) => base + 10 * Math.floor(i / width) + (i % width)),
    [1, 2, width],
  );
}

describe('SD 1.x / 2.x', () => {
  test('encoder_hidden_states is last_hidden_state', () => {
    const last = hidden(0, 3);
    assert.equal(sdPromptEmbeds({ pooler_output: f32([9, 9, 9], [1, 3]), last_hidden_state: last }), last);
  });

  test('a missing or half-precision last_hidden_state is named', () => {
    assert.throws(() => sdPromptEmbeds({ pooler_output: f32([1], [1, 1]) }), /no last_hidden_state.*pooler_output/);
    const half: EncoderHalf = { type: 'float16', data: new Uint16Array(2), dims: [1, 1, 2] };
    assert.throws(() => sdPromptEmbeds({ last_hidden_state: half }), /float16 \[1,1,2\]; it must be float32 of rank 3/);
  });
});

describe('SDXL', () => {
  test('the penultimate hidden state is hidden_states.{L-1}, counted as numbers', () => {
    const names = ['text_embeds', 'last_hidden_state', ...Array.from({ length: 12 }, (_, i) => `hidden_states.${i}`)];
    assert.equal(penultimateHiddenStateName(names.reverse()), 'hidden_states.10');
    assert.equal(penultimateHiddenStateName(['hidden_states.1', 'hidden_states.0']), 'hidden_states.0');
  });

  test('an export without a full run of hidden states is refused', () => {
    for (const names of [['last_hidden_state'], ['hidden_states.0'], ['hidden_states.0', 'hidden_states.2']])
      assert.throws(() => penultimateHiddenStateName(names), /hidden_states\.0 \.\. hidden_states\.L/, String(names));
  });

  test('prompt_embeds: penultimate states of encoder 1 then 2 side by side; pooled: text_embeds', () => {
    const encoder1 = {
      last_hidden_state: hidden(900, 2),
      pooler_output: f32([800, 800], [1, 2]),
      'hidden_states.0': hidden(700, 2),
      'hidden_states.1': hidden(100, 2),
      'hidden_states.2': hidden(900, 2),
    };
    const pooled = f32([5, 6, 7], [1, 3]);
    const encoder2 = {
      text_embeds: pooled,
      last_hidden_state: hidden(900, 3),
      'hidden_states.0': hidden(700, 3),
      'hidden_states.1': hidden(200, 3),
      'hidden_states.2': hidden(900, 3),
    };
    const { promptEmbeds, pooled: got } = sdxlPromptEmbeds([encoder1, encoder2]);
    assert.deepEqual(promptEmbeds.dims, [1, 2, 5]);
    assert.deepEqual([...promptEmbeds.data], [100, 101, 200, 201, 202, 110, 111, 210, 211, 212]);
    assert.equal(got, pooled);
  });

  test('the refiner: text_encoder_2 alone', () => {
    const encoder2 = {
      text_embeds: f32([1], [1, 1]),
      'hidden_states.0': hidden(0, 2),
      'hidden_states.1': hidden(3, 2),
      'hidden_states.2': hidden(6, 2),
    };
    assert.deepEqual([...sdxlPromptEmbeds([encoder2]).promptEmbeds.data], [3, 4, 13, 14]);
  });

  test('no encoder with text_embeds, or encoders of different lengths, are refused', () => {
    const states = (length: number) => ({
      'hidden_states.0': f32(new Array(length).fill(0), [1, length, 1]),
      'hidden_states.1': f32(new Array(length).fill(0), [1, length, 1]),
    });
    assert.throws(() => sdxlPromptEmbeds([states(2)]), /text_embeds/);
    assert.throws(
      () => sdxlPromptEmbeds([states(2), { ...states(3), text_embeds: f32([0], [1, 1]) }]),
      /differ before their last axis/,
    );
  });

  test('zeros for the negative only when there is no negative prompt and the folder forces them', () => {
    assert.equal(zeroesNegativePrompt(null, true), true);
    assert.equal(zeroesNegativePrompt('', true), false);
    assert.equal(zeroesNegativePrompt(null, false), false);
    const zero = sdxlZeroNegative({ promptEmbeds: hidden(1, 2), pooled: f32([1, 2], [1, 2]) });
    assert.deepEqual(zero.promptEmbeds.dims, [1, 2, 2]);
    assert.deepEqual([...zero.promptEmbeds.data], [0, 0, 0, 0]);
    assert.deepEqual(zero.pooled.dims, [1, 2]);
    assert.deepEqual([...zero.pooled.data], [0, 0]);
  });
});

describe('CFG batch', () => {
  test('uncond first, then cond, on a new batch of 2', () => {
    const batch = cfgBatch(hidden(0, 2), hidden(100, 2));
    assert.deepEqual(batch.dims, [2, 2, 2]);
    assert.deepEqual([...batch.data], [0, 1, 10, 11, 100, 101, 110, 111]);
    const pooled = cfgBatch(f32([1, 2, 3], [1, 3]), f32([4, 5, 6], [1, 3]));
    assert.deepEqual(pooled.dims, [2, 3]);
    assert.deepEqual([...pooled.data], [1, 2, 3, 4, 5, 6]);
  });

  test('tensors of different shapes are refused', () => {
    assert.throws(() => cfgBatch(hidden(0, 2), hidden(0, 3)), /must have one shape/);
  });

  test('concatFeatures joins any rank on its last axis', () => {
    const joined = concatFeatures([f32([1, 2], [2, 1]), f32([3, 4, 5, 6], [2, 2])]);
    assert.deepEqual(joined.dims, [2, 3]);
    assert.deepEqual([...joined.data], [1, 3, 4, 2, 5, 6]);
  });
});
