/** What the durable job path stores in Redis survives the trip: specs (img2img seeds, input bytes) and events. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromJson, toJson } from '../src/jobs/codec.ts';
import { inputOf, type JobSpec, withInput } from '../src/jobs/runs.ts';

test('Dates, bigints, bytes and non-finite numbers come back as they went', () => {
  const value = {
    at: new Date(1_700_000_000_123),
    seed: 2n ** 63n + 5n,
    bytes: new Uint8Array([0, 1, 254, 255]),
    estimate: Number.POSITIVE_INFINITY,
    nested: [{ plain: 1.5, text: 'x', none: null }],
  };
  assert.deepEqual(fromJson(toJson(value)), value);
});

test('a spec travels without its input bytes, which are put back where they were', () => {
  const image = new Uint8Array([137, 80, 78, 71]);
  const latent = { bytes: new Uint8Array([1, 2, 3, 4]), shape: [1, 4, 1, 1], dtype: 'float32' as const };
  const specs: JobSpec[] = [
    { operation: 'encode', request: { image, model: 'm', dtype: 'float32', delivery: 'URL' } },
    { operation: 'decode', request: { latent, model: 'm', format: 'png', delivery: 'BASE64' } },
    {
      operation: 'decode',
      request: { latent: { url: 'http://x/v1/latents/1' }, model: 'm', format: 'png', delivery: 'URL' },
    },
  ];
  for (const spec of specs) {
    const stored = toJson(withInput(spec, null));
    const input = inputOf(spec);
    assert.ok(!input || !stored.includes(Buffer.from(input).toString('base64')), 'no input bytes in the stored spec');
    assert.deepEqual(withInput(fromJson<JobSpec>(stored), input), spec);
  }
});
