/**
 * The Hybrid Inference query parameters as diffusers' remote_utils sends them (a `requests` params
 * dict: lists repeated, bools `True`/`False`, `None` for a number left out), parsed without a server.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError } from '../src/errors.ts';
import { FAMILIES } from '../src/models/families.ts';
import type { ModelDefinition } from '../src/models/model.ts';
import { parseDecodeParams, parseEncodeParams, protocolScaling } from '../src/protocol/hybrid-params.ts';
import { pythonQuery } from '../src/protocol/wire.ts';

const q = (text: string) => new URLSearchParams(text);

/** Asserts `run` throws a GatewayError with `code` whose message matches each of `mentions`. */
function rejects(run: () => unknown, code: string, ...mentions: RegExp[]): GatewayError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof GatewayError, `expected a GatewayError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const mention of mentions) assert.match(caught.message, mention);
  return caught;
}

describe('decode parameters', () => {
  test("prepare_decode's query, in its order, with Python spellings", () => {
    const query = pythonQuery({
      image_format: 'png',
      output_type: 'pt',
      partial_postprocess: true,
      shape: [1, 16, 64, 64],
      dtype: 'bfloat16',
      scaling_factor: 0.3611,
      shift_factor: 0.1159,
    });
    assert.equal(
      query.toString(),
      'image_format=png&output_type=pt&partial_postprocess=True&shape=1&shape=16&shape=64&shape=64&' +
        'dtype=bfloat16&scaling_factor=0.3611&shift_factor=0.1159',
    );
    assert.deepEqual(parseDecodeParams(query, 'tensor/binary'), {
      shape: [1, 16, 64, 64],
      dtype: 'bfloat16',
      packedSize: null,
      outputType: 'pt',
      imageFormat: 'png',
      partialPostprocess: true,
      wantsTensor: true,
      scaling: { kind: 'given', scalingFactor: 0.3611, shiftFactor: 0.1159 },
    });
  });

  test('defaults: a JPEG image, no postprocess, the latent taken as unscaled', () => {
    assert.deepEqual(parseDecodeParams(q('shape=1&shape=4&shape=8&shape=8&dtype=float16'), 'image/jpeg'), {
      shape: [1, 4, 8, 8],
      dtype: 'float16',
      packedSize: null,
      outputType: 'pil',
      imageFormat: 'jpeg',
      partialPostprocess: false,
      wantsTensor: false,
      scaling: { kind: 'none' },
    });
  });

  test('image_format names: jpg and jpeg are JPEG; png; webp', () => {
    const base = 'shape=1&shape=4&shape=8&shape=8&dtype=float32&image_format=';
    assert.equal(parseDecodeParams(q(`${base}jpg`)).imageFormat, 'jpeg');
    assert.equal(parseDecodeParams(q(`${base}jpeg`)).imageFormat, 'jpeg');
    assert.equal(parseDecodeParams(q(`${base}png`)).imageFormat, 'png');
    assert.equal(parseDecodeParams(q(`${base}webp`)).imageFormat, 'webp');
    rejects(
      () => parseDecodeParams(q(`${base}gif`)),
      'BAD_REQUEST',
      /image_format is "gif"; allowed: jpg, jpeg, png, webp/,
    );
  });

  test('booleans in Python spelling (True/False), lower case, 1/0 and None', () => {
    const base = 'shape=1&shape=4&shape=8&shape=8&dtype=float32&output_type=pt&partial_postprocess=';
    for (const yes of ['True', 'true', '1']) assert.equal(parseDecodeParams(q(base + yes)).partialPostprocess, true);
    for (const no of ['False', 'false', '0', 'None'])
      assert.equal(parseDecodeParams(q(base + no)).partialPostprocess, false);
    rejects(
      () => parseDecodeParams(q(`${base}yes`)),
      'BAD_REQUEST',
      /partial_postprocess is "yes"; it must be a boolean/,
    );
  });

  test('scaling: given factors (a missing one neutral), do_scaling=True for the model, else none', () => {
    const base = 'shape=1&shape=4&shape=8&shape=8&dtype=float32';
    assert.deepEqual(parseDecodeParams(q(`${base}&scaling_factor=0.18215`)).scaling, {
      kind: 'given',
      scalingFactor: 0.18215,
      shiftFactor: 0,
    });
    assert.deepEqual(parseDecodeParams(q(`${base}&shift_factor=0.1`)).scaling, {
      kind: 'given',
      scalingFactor: 1,
      shiftFactor: 0.1,
    });
    // remote_decode's deprecated default: no factors, do_scaling=True.
    assert.deepEqual(parseDecodeParams(q(`${base}&do_scaling=True`)).scaling, { kind: 'model' });
    assert.deepEqual(parseDecodeParams(q(`${base}&do_scaling=False`)).scaling, { kind: 'none' });
    // Given factors win over do_scaling; None is a factor left out.
    assert.deepEqual(parseDecodeParams(q(`${base}&scaling_factor=2&do_scaling=True`)).scaling, {
      kind: 'given',
      scalingFactor: 2,
      shiftFactor: 0,
    });
    assert.deepEqual(parseDecodeParams(q(`${base}&scaling_factor=None&do_scaling=True`)).scaling, { kind: 'model' });
    rejects(
      () => parseDecodeParams(q(`${base}&scaling_factor=big`)),
      'BAD_REQUEST',
      /scaling_factor is "big"; it must be a number/,
    );
    rejects(
      () => parseDecodeParams(q(`${base}&shift_factor=`)),
      'BAD_REQUEST',
      /shift_factor is ""; it must be a number/,
    );
  });

  test('shape: one shape=N per dimension, or one JSON list; 4 dimensions or 3 packed', () => {
    assert.deepEqual(parseDecodeParams(q('shape=[2,4,8,8]&dtype=float32&output_type=pt')).shape, [2, 4, 8, 8]);
    rejects(
      () => parseDecodeParams(q('dtype=float32')),
      'LATENT_SHAPE_MISMATCH',
      /shape is required: one shape=N per dimension/,
    );
    rejects(
      () => parseDecodeParams(q('shape=1&shape=4&shape=8&dtype=float32&shape=8&shape=8')),
      'LATENT_SHAPE_MISMATCH',
      new RegExp(
        /shape is \["1","4","8","8","8"\]; it must be 4 dimensions /.source +
          /\[batch, channels, height, width\], or 3 for a packed latent/.source,
      ),
    );
    rejects(
      () => parseDecodeParams(q('shape=1&shape=4&shape=x&shape=8&dtype=float32')),
      'LATENT_SHAPE_MISMATCH',
      /shape\[2\] is "x"; it must be an integer of at least 1/,
    );
    rejects(
      () => parseDecodeParams(q('shape=1&shape=4&shape=0&shape=8&dtype=float32')),
      'LATENT_SHAPE_MISMATCH',
      /shape\[2\] is "0"/,
    );
    rejects(
      () => parseDecodeParams(q('shape=100000&shape=100000&shape=100000&shape=100000&dtype=float32&output_type=pt')),
      'LATENT_SHAPE_MISMATCH',
      /too large/,
    );
  });

  test('a packed latent needs height and width (positive integers)', () => {
    const packed = 'shape=1&shape=4096&shape=64&dtype=float32';
    assert.deepEqual(parseDecodeParams(q(`${packed}&height=1024&width=1024`)).packedSize, {
      height: 1024,
      width: 1024,
    });
    rejects(
      () => parseDecodeParams(q(packed)),
      'LATENT_SHAPE_MISMATCH',
      /height is required: a packed \(3-D\) latent needs the height and width/,
    );
    rejects(() => parseDecodeParams(q(`${packed}&height=1024`)), 'LATENT_SHAPE_MISMATCH', /^width is required/);
    rejects(
      () => parseDecodeParams(q(`${packed}&height=-8&width=1024`)),
      'BAD_REQUEST',
      /height is "-8"; it must be an integer of at least 1/,
    );
    rejects(() => parseDecodeParams(q(`${packed}&height=10.5&width=1024`)), 'BAD_REQUEST', /height is "10.5"/);
  });

  test('dtype: float32, float16 or bfloat16, required', () => {
    const base = 'shape=1&shape=4&shape=8&shape=8';
    for (const dtype of ['float32', 'float16', 'bfloat16'])
      assert.equal(parseDecodeParams(q(`${base}&dtype=${dtype}`)).dtype, dtype);
    const error = rejects(
      () => parseDecodeParams(q(`${base}&dtype=float64`)),
      'UNSUPPORTED_DTYPE',
      /dtype is "float64"; allowed: float32, float16, bfloat16/,
    );
    assert.deepEqual(error.details.allowed, ['float32', 'float16', 'bfloat16']);
    rejects(() => parseDecodeParams(q(`${base}&dtype=uint8`)), 'UNSUPPORTED_DTYPE', /uint8/);
    rejects(() => parseDecodeParams(q(base)), 'UNSUPPORTED_DTYPE', /dtype is required; allowed: float32/);
  });

  test('output_type: pil answers one image unless Accept asks for a tensor; pt answers a tensor', () => {
    const batch2 = 'shape=2&shape=4&shape=8&shape=8&dtype=float32';
    assert.equal(parseDecodeParams(q(`${batch2}&output_type=pt`)).wantsTensor, true);
    assert.equal(parseDecodeParams(q(`${batch2}&output_type=pil`), 'tensor/binary').wantsTensor, true);
    rejects(
      () => parseDecodeParams(q(`${batch2}&output_type=pil`), 'image/png'),
      'BAD_REQUEST',
      /output_type=pil returns one image; the latent has batch 2 \(use output_type=pt\)/,
    );
    rejects(
      () => parseDecodeParams(q(`${batch2}&output_type=mp4`)),
      'BAD_REQUEST',
      /output_type is "mp4"; allowed: pil, pt/,
    );
  });

  test('every bad parameter is named at once; the code is the first one’s', () => {
    const error = rejects(
      () => parseDecodeParams(q('shape=1&shape=4&shape=8&shape=8&dtype=int8&output_type=mp4&do_scaling=maybe')),
      'UNSUPPORTED_DTYPE',
      /dtype is "int8"/,
      /output_type is "mp4"/,
      /do_scaling is "maybe"/,
    );
    assert.deepEqual((error.details.problems as { field: string }[]).map((p) => p.field).sort(), [
      'do_scaling',
      'dtype',
      'output_type',
    ]);
  });
});

describe('encode parameters', () => {
  test('an image body: no parameters means a raw float32 latent', () => {
    assert.deepEqual(parseEncodeParams(q('')), {
      scaling: { kind: 'none' },
      tensor: null,
      dtype: 'float32',
      colourManagement: 'NONE',
    });
    assert.deepEqual(parseEncodeParams(q('dtype=float16&scaling_factor=0.13025&shift_factor=None')), {
      scaling: { kind: 'given', scalingFactor: 0.13025, shiftFactor: 0 },
      tensor: null,
      dtype: 'float16',
      colourManagement: 'NONE',
    });
    assert.equal(parseEncodeParams(q('colour_management=srgb')).colourManagement, 'SRGB');
    rejects(() => parseEncodeParams(q('colour_management=p3')), 'BAD_REQUEST', /colour_management is "p3"/);
    rejects(() => parseEncodeParams(q('dtype=float64')), 'UNSUPPORTED_DTYPE', /dtype is "float64"/);
  });

  test('a tensor body: shape [B, 3, H, W] or [3, H, W], and its dtype is required and kept', () => {
    assert.deepEqual(parseEncodeParams(q('shape=2&shape=3&shape=64&shape=32&dtype=bfloat16')).tensor, {
      dims: [2, 3, 64, 32],
      dtype: 'bfloat16',
    });
    const three = parseEncodeParams(q('shape=3&shape=64&shape=64&dtype=float16'));
    assert.deepEqual(three.tensor, { dims: [1, 3, 64, 64], dtype: 'float16' });
    assert.equal(three.dtype, 'float16');
    rejects(
      () => parseEncodeParams(q('shape=1&shape=3&shape=64&shape=64')),
      'UNSUPPORTED_DTYPE',
      /dtype is required with shape \(an image tensor\)/,
    );
    rejects(
      () => parseEncodeParams(q('shape=1&shape=4&shape=64&shape=64&dtype=float32')),
      'BAD_REQUEST',
      /shape is \["1","4","64","64"\]; an image tensor has shape \[B, 3, H, W\]/,
    );
  });
});

test('protocolScaling: the factors each choice means for a model', () => {
  const flux: ModelDefinition = {
    id: 'flux1',
    family: FAMILIES.flux1,
    format: 'upstream',
    latentChannels: 16,
    downscaleFactor: 8,
    path: '',
  };
  assert.deepEqual(protocolScaling(flux, { kind: 'none' }), { scalingFactor: 1, shiftFactor: 0 });
  assert.deepEqual(protocolScaling(flux, { kind: 'model' }), {
    scalingFactor: FAMILIES.flux1.scalingFactor,
    shiftFactor: FAMILIES.flux1.shiftFactor,
  });
  assert.deepEqual(protocolScaling(flux, { kind: 'given', scalingFactor: 2, shiftFactor: 0.5 }), {
    scalingFactor: 2,
    shiftFactor: 0.5,
  });
  rejects(() => protocolScaling(flux, { kind: 'given', scalingFactor: 0, shiftFactor: 0 }), 'BAD_REQUEST', /non-zero/);
});
