/**
 * Whole img2img requests on upstream endpoints, against loopback fakes of each API
 * (test/support/img2img-fakes.ts): the configuration, each protocol's round trip, seeds, scheduler
 * names, failover, cancellation and malformed answers.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import sharp from 'sharp';
import { GatewayError } from '../src/errors.ts';
import type { Img2ImgRequest } from '../src/pipeline/img2img-types.ts';
import { parseUpstreams, type UpstreamConfig } from '../src/upstream/config.ts';
import { UpstreamPool } from '../src/upstream/pool.ts';
import {
  A1111_SAMPLER_NAMES,
  type Img2ImgFake,
  integerDigits,
  startA1111Fake,
  startHfImageToImageFake,
  startLatentgateFake,
} from './support/img2img-fakes.ts';

/** A 70x45 PNG: the result is 64x40 (sides rounded down to multiples of 8, as diffusers does). */
let initPng: Buffer;

function request(extra: Partial<Img2ImgRequest> = {}): Img2ImgRequest {
  return {
    model: 'sd15',
    image: initPng,
    prompt: 'a red barn',
    negativePrompt: 'fog',
    strength: 0.6,
    steps: 20,
    guidanceScale: 7.5,
    seed: 1234n,
    scheduler: null,
    format: 'png',
    delivery: 'BASE64',
    returnLatent: false,
    dtype: 'float32',
    ...extra,
  };
}

function configs(entries: object[]): UpstreamConfig[] {
  const { upstreams, problems } = parseUpstreams(entries, { TOKEN: 'secret' });
  assert.deepEqual(problems, []);
  return upstreams;
}

/** The pixel every fake paints: (seed mod 256, steps, strength x 100). */
async function pixelOf(image: Uint8Array): Promise<number[]> {
  const { data } = await sharp(image).raw().toBuffer({ resolveWithObject: true });
  return [data[0], data[1], data[2]];
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof GatewayError, String(error));
    return error;
  }
  assert.fail('expected a rejection');
}

before(async () => {
  initPng = await sharp({ create: { width: 70, height: 45, channels: 3, background: { r: 10, g: 200, b: 30 } } })
    .png()
    .toBuffer();
});

describe('configuration', () => {
  test('img2img entries: protocol, defaults, and the encode/decode entries as before', () => {
    const [lg, hf, a1, vae] = configs([
      { model: 'sd15', url: 'http://10.0.0.3:4000/graphql', protocol: 'latentgate', remoteModel: 'sd15-fp16' },
      {
        model: 'sd15',
        url: 'https://x.endpoints.huggingface.cloud/',
        protocol: 'hf-image-to-image',
        tokenEnv: 'TOKEN',
      },
      {
        model: 'sd15',
        url: 'http://a:7860/sdapi/v1/img2img',
        operations: ['img2img'],
        protocol: 'a1111',
        maxSeed: '99',
      },
      { model: 'taef2', url: 'http://10.0.0.2:4000/v1/vae/taef2/{operation}' },
    ]);
    assert.deepEqual([lg.protocol, lg.operations, lg.remoteModel], ['latentgate', ['img2img'], 'sd15-fp16']);
    assert.equal(lg.healthUrl, 'http://10.0.0.3:4000/healthz', 'a latentgate answers /healthz');
    assert.equal(lg.maxSeed, 2n ** 64n - 1n);
    assert.equal(lg.timeoutMs, 300_000, 'a whole denoising loop gets longer than an encode');
    assert.deepEqual([hf.healthUrl, hf.token, hf.maxSeed], [null, 'secret', 2n ** 53n - 1n]);
    assert.deepEqual([a1.maxSeed, a1.remoteModel], [99n, null]);
    assert.deepEqual([vae.protocol, vae.operations, vae.timeoutMs], ['hybrid-inference', ['encode', 'decode'], 30_000]);
    const pool = new UpstreamPool([lg, hf, a1, vae]);
    assert.deepEqual([...pool.models()], [['taef2', ['encode', 'decode']]], 'img2img is not a VAE operation');
    assert.deepEqual(pool.img2imgModels(), ['sd15']);
    assert.deepEqual(
      pool.img2imgViews('sd15').map((v) => [v.name, v.protocol, v.healthy, v.refusal]),
      [
        ['upstream:10.0.0.3:4000', 'latentgate', true, null],
        ['upstream:x.endpoints.huggingface.cloud', 'hf-image-to-image', true, null],
        ['upstream:a:7860', 'a1111', true, null],
      ],
    );
  });

  test('inconsistent entries are refused, each with what is allowed', () => {
    const { problems } = parseUpstreams([
      { model: 'm', url: 'https://h/', protocol: 'hf-image-to-image', operations: ['encode'] },
      { model: 'm', url: 'https://h/', operations: ['img2img'] },
      { model: 'm', url: 'https://h/{operation}', operations: ['img2img', 'decode'], protocol: 'hybrid-inference' },
      { model: 'm', url: 'https://h/{operation}', protocol: 'a1111' },
      { model: 'm', url: 'https://h/', protocol: 'hf-image-to-image', remoteModel: 'x' },
      { model: 'm', url: 'https://h/{operation}', maxSeed: 5 },
      { model: 'm', url: 'https://h/', protocol: 'a1111', maxSeed: '18446744073709551616' },
      { model: 'm', url: 'https://h/', protocol: 'comfy' },
    ]);
    const text = problems.join('\n');
    assert.match(text, /upstreams\[0\]\.operations .*protocol "hf-image-to-image" serves only img2img/);
    assert.match(text, /upstreams\[1\]\.protocol is required when operations lists "img2img": latentgate, hf-image/);
    assert.match(text, /upstreams\[2\]\.operations .*"hybrid-inference" serves encode and decode; img2img needs/);
    assert.match(text, /upstreams\[3\]\.url .*\{operation\} is for encode\/decode URLs/);
    assert.match(text, /upstreams\[4\]\.remoteModel .*its URL names the model/);
    assert.match(text, /upstreams\[5\]\.maxSeed .*only for img2img entries/);
    assert.match(text, /upstreams\[6\]\.maxSeed .*at most 18446744073709551615/);
    assert.match(text, /upstreams\[7\]\.protocol is "comfy"; allowed: hybrid-inference, latentgate/);
    assert.equal(problems.length, 8, text);
  });
});

describe('round trips against each API', () => {
  const fakes: Img2ImgFake[] = [];
  let a1111: Img2ImgFake;
  let hf: Img2ImgFake;
  let latentgate: Img2ImgFake;
  before(async () => {
    [a1111, hf, latentgate] = await Promise.all([startA1111Fake(), startHfImageToImageFake(), startLatentgateFake()]);
    fakes.push(a1111, hf, latentgate);
  });
  after(() => Promise.all(fakes.map((f) => f.close())));
  beforeEach(() => {
    for (const fake of fakes) {
      fake.requests.length = 0;
      fake.behaviour = { status: null, delayMs: 0, malformed: false };
    }
  });
  const single = (fake: Img2ImgFake, protocol: string, extra: object = {}) =>
    new UpstreamPool(configs([{ model: 'sd15', url: fake.url, protocol, name: protocol, retries: 0, ...extra }]));

  test('A1111: the documented body, the sampler name, the seed from info', async () => {
    const pool = single(a1111, 'a1111', { token: 'tok', remoteModel: 'v1-5-pruned.safetensors' });
    const answer = await pool.runImg2Img('sd15', request({ scheduler: 'EULER_ANCESTRAL' }));
    const body = a1111.requests[0].json;
    assert.equal(a1111.requests[0].headers.authorization, 'Bearer tok');
    assert.equal(body.init_images[0], initPng.toString('base64'));
    assert.deepEqual(
      [body.prompt, body.negative_prompt, body.denoising_strength, body.steps, body.cfg_scale, body.seed],
      ['a red barn', 'fog', 0.6, 20, 7.5, 1234],
    );
    assert.deepEqual([body.sampler_name, body.width, body.height], ['Euler a', 64, 40]);
    assert.deepEqual(body.override_settings, { sd_model_checkpoint: 'v1-5-pruned.safetensors' });
    assert.deepEqual(
      [answer.endpoint, answer.contentType, answer.width, answer.height, answer.seed],
      ['upstream:a1111', 'image/png', 64, 40, 1234n],
    );
    assert.deepEqual(await pixelOf(answer.image), [1234 % 256, 20, 60]);
  });

  test('A1111: every scheduler with a sampler maps to a name the server knows; the others are refused', async () => {
    const pool = single(a1111, 'a1111');
    const expected = { EULER: 'Euler', EULER_ANCESTRAL: 'Euler a', DDIM: 'DDIM', LCM: 'LCM', PNDM: 'PLMS' } as const;
    for (const [scheduler, name] of Object.entries(expected)) {
      await pool.runImg2Img('sd15', request({ scheduler: scheduler as keyof typeof expected }));
      assert.equal(a1111.requests.at(-1)?.json.sampler_name, name);
      assert.ok(A1111_SAMPLER_NAMES.includes(name));
    }
    await pool.runImg2Img('sd15', request({ scheduler: null }));
    assert.equal('sampler_name' in a1111.requests.at(-1)!.json, false, 'no scheduler: the endpoint default');
    const count = a1111.requests.length;
    const [view] = pool.img2imgViews('sd15', request({ scheduler: 'FLOW_MATCH_EULER' }));
    assert.match(view.refusal ?? '', /scheduler FLOW_MATCH_EULER has no A1111 sampler/);
    const error = await rejection(pool.runImg2Img('sd15', request({ scheduler: 'FLOW_MATCH_EULER' })));
    assert.equal(error.code, 'UPSTREAM_FAILED');
    assert.match(error.message, /upstream:a1111: scheduler FLOW_MATCH_EULER has no A1111 sampler/);
    assert.equal(a1111.requests.length, count, 'nothing was sent');
  });

  test('HF image-to-image: inputs and parameters, a raw image answer; a named scheduler goes elsewhere', async () => {
    const pool = single(hf, 'hf-image-to-image');
    const answer = await pool.runImg2Img('sd15', request({ negativePrompt: null }));
    const { json, headers } = hf.requests[0];
    assert.equal(headers['content-type'], 'application/json');
    assert.equal(json.inputs, initPng.toString('base64'));
    assert.deepEqual(json.parameters, {
      prompt: 'a red barn',
      num_inference_steps: 20,
      guidance_scale: 7.5,
      strength: 0.6,
      seed: 1234,
    });
    assert.deepEqual([answer.contentType, answer.width, answer.height, answer.seed], ['image/png', 64, 40, 1234n]);
    assert.deepEqual(await pixelOf(answer.image), [1234 % 256, 20, 60]);
    const [view] = pool.img2imgViews('sd15', request({ scheduler: 'DDIM' }));
    assert.match(view.refusal ?? '', /scheduler DDIM cannot be named to protocol "hf-image-to-image"/);
    const error = await rejection(pool.runImg2Img('sd15', request({ scheduler: 'DDIM' })));
    assert.match(error.message, /upstream:hf-image-to-image: scheduler DDIM cannot be named/);
    assert.equal(hf.requests.length, 1);
  });

  test('latentgate: the img2img mutation with the image inline; seed as a string both ways', async () => {
    const pool = single(latentgate, 'latentgate', { remoteModel: 'sd15' });
    const seed = 2n ** 60n + 3n;
    const answer = await pool.runImg2Img('sd15', request({ seed, scheduler: 'LCM' }));
    const { json } = latentgate.requests[0];
    assert.match(json.query, /mutation \w+\(\$input: Img2ImgInput!\)/);
    assert.deepEqual(json.variables.input, {
      model: 'sd15',
      image: { base64: initPng.toString('base64') },
      prompt: 'a red barn',
      negativePrompt: 'fog',
      strength: 0.6,
      steps: 20,
      guidanceScale: 7.5,
      seed: seed.toString(),
      scheduler: 'LCM',
      format: 'PNG',
      delivery: 'BASE64',
    });
    assert.equal(answer.seed, seed, 'exact beyond 2^53');
    assert.deepEqual(await pixelOf(answer.image), [Number(seed % 256n), 20, 60]);
    // The upstream refusing the request (its model unknown) is not held against it.
    const wrong = single(latentgate, 'latentgate', { remoteModel: 'nope' });
    const error = await rejection(wrong.runImg2Img('sd15', request()));
    assert.match(error.message, /upstream:latentgate: GraphQL error UNKNOWN_MODEL: unknown model "nope"/);
    assert.equal(wrong.endpoints[0].breaker.consecutiveFailures, 0);
  });

  test('seeds: drawn when none is given, within each endpoint; one over maxSeed skips the endpoint', async () => {
    const pool = single(a1111, 'a1111');
    const drawn = await pool.runImg2Img('sd15', request({ seed: null }));
    assert.equal(integerDigits(a1111.requests[0].text, 'seed'), drawn.seed.toString(), 'the drawn seed was sent');
    assert.ok(drawn.seed >= 0n && drawn.seed <= 2n ** 63n - 1n);
    assert.deepEqual((await pixelOf(drawn.image))[0], Number(drawn.seed % 256n));
    // Over what A1111 reads (signed 64-bit): refused before anything is sent.
    const error = await rejection(pool.runImg2Img('sd15', request({ seed: 2n ** 63n })));
    assert.match(error.message, /seed 9223372036854775808 is over 9223372036854775807/);
    assert.equal(a1111.requests.length, 1);
    // HF: 2^53 - 1 by default; a configured maxSeed lets the whole range through, digits intact.
    assert.match(
      single(hf, 'hf-image-to-image').img2imgViews('sd15', request({ seed: 2n ** 53n }))[0].refusal ?? '',
      /maxSeed/,
    );
    const wide = single(hf, 'hf-image-to-image', { maxSeed: '18446744073709551615' });
    const top = await wide.runImg2Img('sd15', request({ seed: 2n ** 64n - 1n }));
    assert.equal(integerDigits(hf.requests.at(-1)!.text, 'seed'), '18446744073709551615');
    assert.equal(top.seed, 2n ** 64n - 1n);
  });

  test('an init latent cannot go upstream; planning says so', () => {
    const pool = single(latentgate, 'latentgate');
    const [view] = pool.img2imgViews('sd15', request({ image: undefined, latent: {} as never }));
    assert.match(view.refusal ?? '', /an init latent cannot be sent to protocol "latentgate"/);
  });

  test('failover: a failing planned endpoint (500), then the healthy one; bookkeeping on both', async () => {
    a1111.behaviour.status = 500;
    const pool = new UpstreamPool(
      configs([
        { model: 'sd15', url: a1111.url, protocol: 'a1111', name: 'bad', retries: 0 },
        { model: 'sd15', url: latentgate.url, protocol: 'latentgate', name: 'good', retries: 0 },
      ]),
    );
    const routed: string[] = [];
    const answer = await pool.runImg2Img('sd15', request(), {
      target: 'upstream:bad',
      onRouted: (name) => routed.push(name),
    });
    assert.deepEqual(routed, ['upstream:bad', 'upstream:good']);
    assert.equal(answer.endpoint, 'upstream:good');
    assert.match(answer.failures.join(), /upstream:bad: HTTP 500: scripted failure 500/);
    const [bad, good] = pool.snapshot();
    assert.equal(bad.consecutiveFailures, 1);
    assert.equal(good.consecutiveFailures, 0);
    assert.ok((good.secondsPerMegapixel.img2img ?? -1) >= 0, 'the answer time was measured');
    assert.equal(bad.secondsPerMegapixel.img2img, undefined);
    // The expected time counts denoising steps: twice the steps, more time.
    const [, view] = pool.img2imgViews('sd15', request());
    const [, longer] = pool.img2imgViews('sd15', request({ steps: 40 }));
    assert.ok(longer.expectedSeconds(64 * 40) > view.expectedSeconds(64 * 40));
  });

  test('a named scheduler skips the HF endpoint even when planned, and the request runs on A1111', async () => {
    const pool = new UpstreamPool(
      configs([
        { model: 'sd15', url: hf.url, protocol: 'hf-image-to-image', name: 'hf', retries: 0 },
        { model: 'sd15', url: a1111.url, protocol: 'a1111', name: 'a1', retries: 0 },
      ]),
    );
    const answer = await pool.runImg2Img('sd15', request({ scheduler: 'DDIM' }), { target: 'upstream:hf' });
    assert.equal(answer.endpoint, 'upstream:a1');
    assert.match(answer.failures[0], /^upstream:hf: scheduler DDIM cannot be named/);
    assert.equal(hf.requests.length, 0);
  });

  test('cancellation: the call is abandoned at once, CANCELLED, and the endpoint not blamed', async () => {
    latentgate.behaviour.delayMs = 2000;
    const pool = single(latentgate, 'latentgate');
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 100);
    const error = await rejection(pool.runImg2Img('sd15', request(), { signal: controller.signal }));
    assert.equal(error.code, 'CANCELLED');
    assert.ok(performance.now() - started < 1500, 'did not wait for the answer');
    assert.equal(pool.endpoints[0].breaker.consecutiveFailures, 0);
    assert.equal(pool.endpoints[0].inFlight, 0);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(latentgate.abandoned, 1, 'the server saw the client go');
  });

  test('a malformed answer is UPSTREAM_FAILED naming the endpoint, and counts against it', async () => {
    const cases: Array<[Img2ImgFake, string, RegExp]> = [
      [a1111, 'a1111', /upstream:a1111: bad answer: info\.seed is undefined, not an integer/],
      [
        hf,
        'hf-image-to-image',
        /upstream:hf-image-to-image: bad answer: the answer's content type is "application\/json"/,
      ],
      [
        latentgate,
        'latentgate',
        /upstream:latentgate: bad answer: data\.img2img\.images\[0\]\.data is not a base64 string/,
      ],
    ];
    for (const [fake, protocol, message] of cases) {
      fake.behaviour.malformed = true;
      const pool = single(fake, protocol);
      const error = await rejection(pool.runImg2Img('sd15', request()));
      assert.equal(error.code, 'UPSTREAM_FAILED');
      assert.match(error.message, message);
      assert.deepEqual(error.details.failures, [error.message.split(': ').slice(1).join(': ')]);
      assert.equal(pool.endpoints[0].breaker.consecutiveFailures, 1);
    }
  });
});
