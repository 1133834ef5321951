/**
 * Every limit at the edges, sent as an abuser would over real HTTP on loopback: GraphQL document limits
 * (tokens, depth, aliases, directives, cost, compute fields), body limits (JSON, chunked, multipart),
 * Hybrid Inference bodies checked against their query before they are read, slow clients cut off,
 * and latents or factors that cannot be right. Each answer is typed and names its limit; the server
 * stays healthy.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import WebSocket from 'ws';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { CSRF_HEADERS } from './support/server.ts';
import { writeTinyPipeline } from './support/tiny-pipeline.ts';

const GRAPHQL_RESPONSE = 'application/graphql-response+json';

let dir: string;
let gateway: InProcessGateway;
let png: Buffer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'latentgate-edge-'));
  const models = join(dir, 'models');
  mkdirSync(models);
  writeTinyPipeline(join(models, 'sd'), {});
  gateway = await startInProcessGateway({
    MODELS_DIR: models,
    DATA_DIR: dir,
    MAX_IMAGE_BYTES: '64KiB',
    // A 16 MB document passes the body limit (4/3 of 12 MiB + 1 MiB), so the token limit is what stops it.
    MAX_LATENT_BYTES: '12MiB',
    MAX_QUERY_COST: '50',
    REQUEST_TIMEOUT_MS: '1000',
    HEADERS_TIMEOUT_MS: '1000',
    MAX_CONNECTIONS: '16',
  });
  png = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 200, g: 80, b: 20 } } })
    .png()
    .toBuffer();
});

after(async () => {
  await gateway?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: any;
  ms: number;
}

async function post(path: string, body: BodyInit, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now();
  const response = await fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text), ms: performance.now() - started };
}

function graphql(query: string, variables: Record<string, unknown> = {}, accept = GRAPHQL_RESPONSE) {
  return post('/graphql', JSON.stringify({ query, variables }), { 'content-type': 'application/json', accept });
}

/** The one error of `answer` that names `limit`. */
function refusal(answer: Answer, code: string, limit: string) {
  const errors: { message: string; extensions: Record<string, unknown> }[] = answer.body.errors ?? [];
  const found = errors.find((e) => e.extensions?.limit === limit);
  assert.ok(found, `no ${limit} refusal in ${JSON.stringify(answer.body).slice(0, 500)}`);
  assert.equal(found.extensions.code, code);
  for (const setting of limit.split(/[^A-Z_]+/)) assert.match(found.message, new RegExp(setting));
  return found;
}

async function healthy(): Promise<void> {
  const response = await fetch(`${gateway.url}/healthz`, { signal: AbortSignal.timeout(5000) });
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { status: string }).status, 'ok');
}

/** A raw connection: `sent` goes out as is; resolves with what came back once the server closes it. */
function raw(sent: string | Buffer): { socket: Socket; closed: Promise<{ text: string; ms: number }> } {
  const url = new URL(gateway.url);
  const socket = connect(Number(url.port), url.hostname);
  const started = performance.now();
  let text = '';
  socket.on('data', (d) => (text += d.toString('latin1')));
  socket.on('error', () => {});
  socket.write(sent);
  const closed = new Promise<{ text: string; ms: number }>((resolve) =>
    socket.on('close', () => resolve({ text, ms: performance.now() - started })),
  );
  return { socket, closed };
}

/** Resolves with the status and JSON body of the first answer on `socket` (whole, chunked or not). */
function firstAnswer(socket: Socket): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer in 5 s: ${text}`)), 5000);
    socket.on('data', (d) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const json = text.slice(end + 4).replace(/^[0-9a-f]+\r\n|\r\n[0-9a-f]+\r\n|\r\n0\r\n\r\n$/g, '');
      try {
        const body = JSON.parse(json);
        clearTimeout(timer);
        resolve({ status: Number(text.split(' ')[1]), body });
      } catch {
        // Not all of it yet.
      }
    });
  });
}

describe('GraphQL documents', () => {
  test('depth: 21 levels names MAX_QUERY_DEPTH; 3000 levels is a typed refusal, not a 500', async () => {
    const nested = (n: number) => `{ models ${'{ id '.repeat(n)}${'}'.repeat(n + 1)}`;
    const deep = await graphql(nested(20));
    assert.equal(deep.status, 400);
    assert.equal(refusal(deep, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_DEPTH').extensions.max, 10);
    const deeper = await graphql(nested(3000));
    assert.equal(deeper.status, 400);
    assert.ok(deeper.body.errors.every((e: any) => e.extensions.code === 'QUERY_TOO_COMPLEX'));
  });

  test('tokens: a 16 MB document of 1.5 M tokens is refused at MAX_QUERY_TOKENS, fast', async () => {
    const query = `{ ${'__typename '.repeat(1_500_000)}}`;
    assert.ok(query.length > 16e6);
    const answer = await graphql(query);
    assert.equal(answer.status, 400);
    assert.equal(refusal(answer, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_TOKENS').extensions.max, 2000);
    // Sending and JSON-parsing 16 MB takes most of this; parsing stopped at token 2001.
    assert.ok(answer.ms < 3000, `took ${answer.ms} ms`);
  });

  test('aliases, directives and cost name their limits', async () => {
    const aliases = await graphql(`{ ${Array.from({ length: 30 }, (_, i) => `m${i}: models { id }`).join(' ')} }`);
    assert.equal(refusal(aliases, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_ALIASES').extensions.found, 30);
    const directives = await graphql(`{ models { ${'id @include(if: true) '.repeat(11)} } }`);
    assert.equal(refusal(directives, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_DIRECTIVES').extensions.found, 11);
    const plan =
      'plan(model: "sd", operation: ENCODE, width: 64, height: 64) ' +
      '{ route reason estimates { whole { bytes calibrated } tiled { bytes tile overlap calibrated } } }';
    const cost = await graphql(`{ a: ${plan} b: ${plan} c: ${plan} }`);
    assert.equal(refusal(cost, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_COST').extensions.max, 50);
  });

  test('compute fields: five encodes in one operation, or 300 submitEncode, name MAX_COMPUTE_FIELDS', async () => {
    const field = (name: string, i: number) =>
      `f${i}: ${name}(input: { model: "sd", image: { base64: "${png.toString('base64')}" } }) { __typename }`;
    const five = Array.from({ length: 5 }, (_, i) => field('encode', i)).join(' ');
    const answer = await graphql(`mutation { ${five} }`);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.data, undefined, 'nothing ran');
    assert.equal(refusal(answer, 'QUERY_TOO_COMPLEX', 'MAX_COMPUTE_FIELDS').extensions.found, 5);
    // Plain application/json keeps GraphQL-over-HTTP's legacy 200 for request errors, as Yoga does.
    assert.equal((await graphql(`mutation { ${five} }`, {}, 'application/json')).status, 200);
    // Without aliases: one of each compute field.
    const distinct = ['encode', 'decode', 'img2img', 'submitEncode', 'submitDecode']
      .map((name) => `${name}(input: $input) { __typename }`)
      .join(' ');
    const each = await graphql(`mutation ($input: EncodeInput!) { ${distinct} }`);
    assert.equal(refusal(each, 'QUERY_TOO_COMPLEX', 'MAX_COMPUTE_FIELDS').extensions.found, 5);
    // 300 submitEncode pass no limit: the tokens (about 3600) stop them first.
    const many = Array.from({ length: 300 }, (_, i) => `s${i}: submitEncode(input: $input) { id }`).join(' ');
    const submits = await graphql(`mutation ($input: EncodeInput!) { ${many} }`, {
      input: { model: 'sd', image: { base64: png.toString('base64') } },
    });
    assert.equal(refusal(submits, 'QUERY_TOO_COMPLEX', 'MAX_QUERY_TOKENS').extensions.max, 2000);
    assert.equal(submits.body.data, undefined, 'no job was submitted');
    // Four, the limit, run.
    const four = Array.from({ length: 4 }, (_, i) => field('encode', i)).join(' ');
    const ok = await graphql(`mutation { ${four} }`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.data.f3.__typename, 'EncodeResult');
  });
});

test("over WebSocket: a document past a limit is the subscription's typed error; a message past the body limit closes", async () => {
  const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: any[] = [];
  const next = () =>
    new Promise<any>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message in 5 s')), 5000);
      const take = () => {
        clearTimeout(timer);
        resolve(messages.shift());
      };
      if (messages.length) take();
      else socket.once('message', () => setImmediate(take));
    });
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  assert.equal((await next()).type, 'connection_ack');
  const query = `subscription { jobProgress(id: "x") { __typename ${'__typename '.repeat(3000)}} }`;
  socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query } }));
  const error = await next();
  assert.equal(error.type, 'error');
  assert.equal(error.payload[0].extensions.code, 'QUERY_TOO_COMPLEX');
  assert.equal(error.payload[0].extensions.limit, 'MAX_QUERY_TOKENS');
  const closed = new Promise<number>((resolve) => socket.once('close', resolve));
  socket.send('x'.repeat(4 * Math.ceil((12 * 2 ** 20) / 3) + 2 ** 20 + 1));
  // 1009: message too big.
  assert.equal(await closed, 1009);
});

describe('bodies', () => {
  const limit = 4 * Math.ceil((12 * 2 ** 20) / 3) + 2 ** 20;

  test('a JSON body over the limit is REQUEST_TOO_LARGE (413), declared or chunked', async () => {
    const body = JSON.stringify({ query: '{ models { id } }', variables: { x: 'A'.repeat(limit) } });
    const declared = await post('/graphql', body, { 'content-type': 'application/json' });
    assert.equal(declared.status, 413);
    const named = refusal(declared, 'REQUEST_TOO_LARGE', 'MAX_IMAGE_BYTES/MAX_LATENT_BYTES + MAX_DOCUMENT_BYTES');
    assert.equal(named.extensions.maxBytes, limit);
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(body));
        controller.close();
      },
    });
    const chunked = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(((await chunked.json()) as any).errors[0].extensions.code, 'REQUEST_TOO_LARGE');
  });

  test('a multipart file over MAX_IMAGE_BYTES is REQUEST_TOO_LARGE (413)', async () => {
    const form = new FormData();
    const query = 'mutation ($f: File!) { encode(input: { model: "sd", image: { upload: $f } }) { width } }';
    form.set('operations', JSON.stringify({ query, variables: { f: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.f'] }));
    form.set('0', new Blob([new Uint8Array(64 * 1024 + 1)]), 'big.png');
    const answer = await post('/graphql', form, { ...CSRF_HEADERS });
    assert.equal(answer.status, 413);
    assert.equal(refusal(answer, 'REQUEST_TOO_LARGE', 'MAX_IMAGE_BYTES').extensions.maxBytes, 64 * 1024);
  });
});

describe('Hybrid Inference bodies are checked against the query before they are read', () => {
  const decodePath = (shape: number[], dtype = 'float32') =>
    `/v1/vae/sd/decode?${shape.map((d) => `shape=${d}`).join('&')}&dtype=${dtype}&output_type=pt`;

  test('a body longer than the shape says is refused before it is sent', async () => {
    // [1, 4, 16, 32] float32 is 8 KiB; the client declares 256 MiB and sends only 64 KiB of it.
    const head =
      `POST ${decodePath([1, 4, 16, 32])} HTTP/1.1\r\nHost: x\r\n` +
      `Content-Type: tensor/binary\r\nContent-Length: ${256 * 2 ** 20}\r\n\r\n`;
    const { socket, closed } = raw(Buffer.concat([Buffer.from(head), Buffer.alloc(64 * 1024)]));
    const answer = await firstAnswer(socket);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'LATENT_SHAPE_MISMATCH');
    assert.match(answer.body.error, /268435456 bytes.*needs 8192 bytes/);
    // The rest is not read: the server closes the connection.
    assert.ok((await closed).ms < 5000);
  });

  test('shape over MAX_LATENT_BYTES, batch, pixels and channels are refused from the query alone', async () => {
    const refused = async (path: string, status: number, code: string, mentions: RegExp) => {
      const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${2 ** 30}\r\n\r\n`;
      const { socket } = raw(head);
      const answer = await firstAnswer(socket);
      socket.destroy();
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.code, code);
      assert.match(answer.body.error, mentions);
    };
    await refused(decodePath([1, 4, 1024, 1024]), 413, 'LATENT_TOO_LARGE', /the limit is 12582912 bytes/);
    await refused(decodePath([17, 4, 8, 8]), 413, 'LATENT_TOO_LARGE', /batch is 17; the limit is 16/);
    await refused(decodePath([1, 4, 600, 600]), 413, 'IMAGE_TOO_LARGE', /4800x4800.*MAX_IMAGE_PIXELS/);
    await refused(decodePath([1, 5, 8, 8]), 400, 'LATENT_CHANNELS_MISMATCH', /5 channels.*takes 4/);
    await refused('/v1/vae/sd/encode', 413, 'IMAGE_TOO_LARGE', /1073741824 bytes; the limit is 65536/);
  });

  test('a body shorter or (chunked) longer than the shape is a 400 naming both numbers', async () => {
    const short = await post(decodePath([1, 4, 8, 8]), new Uint8Array(1000));
    assert.equal(short.status, 400);
    assert.match(short.body.error, /the body is 1000 bytes, but latent \[1,4,8,8\] of float32 needs 1024 bytes/);
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(512));
        controller.close();
      },
    });
    const long = await fetch(`${gateway.url}${decodePath([1, 4, 8, 8])}`, {
      method: 'POST',
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    assert.equal(long.status, 400);
    assert.match(((await long.json()) as any).error, /more than 1024 bytes, but .* needs 1024 bytes/);
  });
});

describe('slow clients', () => {
  test('a declared body that never comes, or one byte at a time, is cut off at REQUEST_TIMEOUT_MS', async () => {
    const lying = raw(
      `POST ${'/v1/vae/sd/decode?shape=1&shape=4&shape=8&shape=8&dtype=float32'} HTTP/1.1\r\n` +
        'Host: x\r\nContent-Length: 1024\r\n\r\n',
    );
    const dripping = raw(
      'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n',
    );
    const drip = setInterval(() => dripping.socket.write('{'), 300);
    const headers = raw('POST /graphql HTTP/1.1\r\nHost: x\r\n');
    try {
      for (const { closed } of [lying, dripping, headers]) {
        const { ms, text } = await closed;
        // 1 s, plus Node's check interval (half the header timeout) and scheduling on a busy machine.
        assert.ok(ms > 900 && ms < 3500, `closed after ${ms} ms`);
        assert.match(text, /^$|^HTTP\/1.1 408/);
      }
    } finally {
      clearInterval(drip);
    }
  });

  test('connections over MAX_CONNECTIONS are refused; the server stays healthy', async () => {
    const idle = Array.from({ length: 16 }, () => raw(''));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const extra = raw('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, ms } = await extra.closed;
    assert.equal(text, '', 'closed without an answer');
    assert.ok(ms < 1000);
    for (const { socket } of idle) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await healthy();
  });
});

describe('values that cannot be right', () => {
  const latentOf = (values: number[]) => Buffer.from(new Float32Array(values).buffer).toString('base64');
  const DECODE = 'mutation ($input: DecodeInput!) { decode(input: $input) { images { width } } }';
  const ENCODE = 'mutation ($input: EncodeInput!) { encode(input: $input) { latent { dtype } } }';

  test('NaN or Inf in a latent: INVALID_LATENT with the count and the first index', async () => {
    const values = new Array(256).fill(0.5);
    values[7] = Number.NaN;
    values[9] = Number.POSITIVE_INFINITY;
    const tensor = { data: latentOf(values), shape: [1, 4, 8, 8] };
    const decoded = await graphql(DECODE, { input: { model: 'sd', latent: { tensor } } });
    const error = decoded.body.errors[0];
    assert.equal(error.extensions.code, 'INVALID_LATENT');
    assert.deepEqual([error.extensions.nonFinite, error.extensions.firstIndex], [2, 7]);
    assert.match(error.message, /2 NaN or infinite value\(s\), the first at index 7/);

    const img2img = await graphql('mutation ($input: Img2ImgInput!) { img2img(input: $input) { seed } }', {
      input: { model: 'sd', prompt: 'a cat', steps: 2, latent: { tensor } },
    });
    assert.equal(img2img.body.errors[0].extensions.code, 'INVALID_LATENT');

    const hybrid = await post(
      '/v1/vae/sd/decode?shape=1&shape=4&shape=8&shape=8&dtype=float32&output_type=pt',
      Buffer.from(new Float32Array(values).buffer),
    );
    assert.equal(hybrid.status, 400);
    assert.equal(hybrid.body.code, 'INVALID_LATENT');
  });

  test('factors that overflow the dtype name the factor', async () => {
    const image = { base64: png.toString('base64') };
    const huge = await graphql(ENCODE, { input: { model: 'sd', image, scalingFactor: 1e308 } });
    assert.equal(huge.body.errors[0].extensions.code, 'BAD_REQUEST');
    assert.match(huge.body.errors[0].message, /scalingFactor 1e\+308/);
    // Beyond float16's 65504 only once the encoder ran: checked on the result, before delivery.
    const half = await graphql(ENCODE, { input: { model: 'sd', image, scalingFactor: 1e6, dtype: 'FLOAT16' } });
    assert.equal(half.body.errors[0].extensions.code, 'INVALID_LATENT');
    assert.match(half.body.errors[0].message, /scalingFactor 1000000 .* overflow float16/);
    const fine = await graphql(ENCODE, { input: { model: 'sd', image, scalingFactor: 1e6 } });
    assert.equal(fine.body.data.encode.latent.dtype, 'FLOAT32', JSON.stringify(fine.body));
    // Decode divides by the factor before the run: 1e30 / 1e-9 overflows float32.
    const tensor = { data: latentOf(new Array(256).fill(1e30)), shape: [1, 4, 8, 8] };
    const tiny = await graphql(DECODE, { input: { model: 'sd', latent: { tensor }, scalingFactor: 1e-9 } });
    assert.equal(tiny.body.errors[0].extensions.code, 'INVALID_LATENT');
    assert.match(tiny.body.errors[0].message, /scalingFactor 1e-9/);
    await healthy();
  });
});
