/**
 * How runDeclared's feeds reach the runtime's worker: copied (default), moved ('once': a denoising
 * step's sample) or kept there across runs ('constant': a loop's prompt embeddings, sent once). A real
 * onnxruntime worker running a tiny network: out = a + b, with a int64 `b` so constants get a real cast.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { GraphBuilder } from '../src/gpu/onnx-builder.ts';
import { chooseProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import { runDeclared } from '../src/gpu/signature-feeds.ts';

let runtime: OnnxRuntime;
const g = new GraphBuilder();
g.node('Add', ['a', g.node('Cast', ['b'], { to: 1 /* FLOAT */ })], {}, 'out');
const model = g.buildModel(
  [
    { name: 'a', dims: ['n', 3] },
    { name: 'b', type: 'int64', dims: ['n', 3] },
  ],
  [{ name: 'out', dims: ['n', 3] }],
  'add',
).model;

before(async () => {
  runtime = new OnnxRuntime(await chooseProvider('cpu'), 1);
});
after(async () => {
  await runtime?.close();
});

const run = async (a: Float32Array, b: { data: Float32Array; dims: number[]; use?: 'constant' | 'once' }) =>
  Array.from(
    (await runDeclared(runtime, 'add', model, { a: { data: a, dims: [1, 3], use: 'once' }, b }, ['out'], 1)).out.data,
  );

test("a 'once' feed's buffer moves to the worker; a default feed is copied", async () => {
  const a = Float32Array.of(1, 2, 3);
  const b = Float32Array.of(10, 20, 30);
  assert.deepEqual(await run(a, { data: b, dims: [1, 3] }), [11, 22, 33]);
  assert.equal(a.length, 0, 'the once feed was transferred, not copied');
  assert.deepEqual(Array.from(b), [10, 20, 30], 'the default feed stays with the caller');
});

test("a 'constant' feed is cast and sent once, then kept in the worker for later runs", async () => {
  const b = Float32Array.of(10, 20, 30);
  const constant = { data: b, dims: [1, 3], use: 'constant' as const };
  assert.deepEqual(await run(Float32Array.of(1, 2, 3), constant), [11, 22, 33]);
  // Changing a constant breaks its contract; it shows that later runs use the worker's copy, not a new one.
  b[0] = 1000;
  assert.deepEqual(await run(Float32Array.of(4, 5, 6), constant), [14, 25, 36]);
  assert.deepEqual(await run(Float32Array.of(4, 5, 6), { ...constant, data: Float32Array.of(7, 8, 9) }), [11, 13, 15]);
});
