/**
 * Issue 11's abuse run, against one gateway in its own process (so its RSS is the gateway's alone), with
 * a 1.75 GiB device budget and a 256 MiB host budget: every case an abuser tried, each answered with a
 * typed code naming its limit, RSS sampled throughout and bounded by the budgets plus a baseline, the
 * server healthy at the end, and /metrics counting the rejections.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { SHARED_DIR } from './support/paths.ts';
import { type RunningGateway, startGateway } from './support/server.ts';

const MiB = 2 ** 20;
const DEVICE_MEMORY = 1.75 * 1024 * MiB;
const HOST_MEMORY = 256 * MiB;
/** The process without any request: Node, onnxruntime, the loaded model, code. Measured at start. */
let baseline = 0;
let peak = 0;
let sampler: NodeJS.Timeout;
let gateway: RunningGateway;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

before(async () => {
  gateway = await startGateway({
    MODELS_DIR: `${SHARED_DIR}/models`,
    DEVICE_MEMORY: String(DEVICE_MEMORY),
    HOST_MEMORY: String(HOST_MEMORY),
    BATCH_WINDOW_MS: '0',
    REQUEST_TIMEOUT_MS: '2000',
    HEADERS_TIMEOUT_MS: '2000',
  });
  // Load the encoder's session before measuring the baseline: a model is resident, not a request's.
  const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  await gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { width } }', {
    i: { model: 'taef2', image: { base64: small.toString('base64') } },
  });
  baseline = rssOf(gateway.process.pid!);
  peak = baseline;
  sampler = setInterval(() => {
    peak = Math.max(peak, rssOf(gateway.process.pid!));
  }, 20);
});

after(async () => {
  clearInterval(sampler);
  await gateway?.stop();
});

const code = (answer: { errors?: { extensions?: Record<string, any> }[] }) => answer.errors?.[0]?.extensions?.code;

test('abuse: every case is refused with its typed code, RSS stays within the budgets, the server stays healthy', async (t) => {
  const black2048 = await sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  const submit = 'mutation($i: EncodeInput!) { submitEncode(input: $i) { id } }';
  const answers = await Promise.all(
    Array.from({ length: 100 }, () =>
      gateway.graphql(submit, { i: { model: 'taef2', image: { base64: black2048.toString('base64') } } }),
    ),
  );
  const accepted = answers.filter((a) => a.data?.submitEncode).map((a) => a.data.submitEncode.id as string);
  const busy = answers.filter((a) => code(a) === 'BUSY');
  assert.equal(accepted.length + busy.length, 100, JSON.stringify(answers.find((a) => a.errors && code(a) !== 'BUSY')));
  assert.ok(busy.length > 0, 'a 256 MiB host budget cannot hold 100 decoded 2048² images');
  for (const b of busy) {
    const seconds = b.errors![0].extensions!.retryAfterSeconds;
    assert.ok(Number.isFinite(seconds) && seconds > 0 && seconds < 3600, `retryAfterSeconds ${seconds}`);
  }
  for (const id of accepted) await gateway.graphql('mutation($id: ID!) { cancelJob(id: $id) { id } }', { id });

  // A few-hundred-byte PNG that decodes to 65536x8: counted from its header, no lasting rise.
  const wide = await sharp({ create: { width: 65536, height: 8, channels: 3, background: '#000' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const wideAnswer = await gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { width } }', {
    i: { model: 'taef2', image: { base64: wide.toString('base64') } },
  });
  assert.ok(wideAnswer.data?.encode.width === 65536 || code(wideAnswer), JSON.stringify(wideAnswer));

  // Documents that ask for unbounded work.
  const encodeField = (n: number) => `e${n}: encode(input: $i) { model }`;
  const aliases = await gateway.graphql(
    `mutation($i: EncodeInput!) { ${Array.from({ length: 1000 }, (_, n) => encodeField(n)).join(' ')} }`,
    { i: { model: 'taef2', image: { base64: '' } } },
  );
  assert.equal(code(aliases), 'QUERY_TOO_COMPLEX', JSON.stringify(aliases.errors));
  const submits = await gateway.graphql(
    `mutation($i: EncodeInput!) { ${Array.from({ length: 300 }, (_, n) => `s${n}: submitEncode(input: $i) { id }`).join(' ')} }`,
    { i: { model: 'taef2', image: { base64: '' } } },
  );
  assert.equal(code(submits), 'QUERY_TOO_COMPLEX');
  const tokens = await gateway.graphql(`query { ${'models { id } '.repeat(300_000)} }`);
  assert.equal(code(tokens), 'QUERY_TOO_COMPLEX');
  const deep = await gateway.graphql(`query { ${'a { '.repeat(3000)}${'} '.repeat(3000)} }`);
  assert.equal(code(deep), 'QUERY_TOO_COMPLEX');

  // Values that cannot be right.
  const nan = Buffer.alloc(4 * 16 * 4 * 4);
  nan.writeFloatLE(Number.NaN, 0);
  const decode = 'mutation($i: DecodeInput!) { decode(input: $i) { model } }';
  const badLatent = await gateway.graphql(decode, {
    i: { model: 'taef2', latent: { tensor: { data: nan.toString('base64'), shape: [1, 32, 4, 2] } } },
  });
  assert.equal(code(badLatent), 'INVALID_LATENT', JSON.stringify(badLatent.errors));
  const factor = await gateway.graphql(decode, {
    i: {
      model: 'taef2',
      scalingFactor: 1e-308,
      latent: { tensor: { data: Buffer.alloc(4 * 16 * 4 * 4).toString('base64'), shape: [1, 32, 4, 2] } },
    },
  });
  assert.ok(factor.errors, 'a factor whose inverse overflows float32 is refused');

  // A Hybrid Inference decode whose shape says 8 KiB but whose body claims 256 MiB: answered before reading.
  const hybrid = await fetch(`${gateway.url}/v1/vae/taef2/decode?shape=1,16,8,16&dtype=float32`, {
    method: 'POST',
    headers: { 'content-type': 'tensor/binary', 'content-length': String(256 * MiB) },
    body: new Uint8Array(16),
    // @ts-expect-error Node's fetch needs duplex for a body it may not finish sending.
    duplex: 'half',
  }).catch((error: Error) => error);
  assert.ok(hybrid instanceof Error || hybrid.status >= 400, 'refused before the body is read');

  // A body sent one byte per second: cut off by REQUEST_TIMEOUT_MS (2 s here), not Node's 300 s.
  const cutOff = await new Promise<number>((resolve) => {
    const started = Date.now();
    const socket = connect(Number(new URL(gateway.url).port), '127.0.0.1', () => {
      socket.write(
        'POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n',
      );
      const drip = setInterval(() => socket.writable && socket.write('{'), 1000);
      socket.on('close', () => {
        clearInterval(drip);
        resolve(Date.now() - started);
      });
    });
    socket.on('error', () => {});
  });
  assert.ok(cutOff < 10_000, `a slow body held the connection ${cutOff} ms`);

  const health = await fetch(`${gateway.url}/healthz`);
  assert.equal(health.status, 200);
  const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
  for (const reason of ['BUSY', 'QUERY_TOO_COMPLEX', 'INVALID_LATENT']) {
    const line = new RegExp(`latentgate_rejections_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics);
    assert.ok(line && Number(line[1]) > 0, `/metrics counts ${reason}`);
  }
  const grew = peak - baseline;
  t.diagnostic(
    `accepted ${accepted.length}/100, BUSY ${busy.length}; RSS baseline ${(baseline / MiB).toFixed(0)} MiB, ` +
      `peak +${(grew / MiB).toFixed(0)} MiB; slow body cut off after ${cutOff} ms`,
  );
  assert.ok(grew <= DEVICE_MEMORY + HOST_MEMORY, `RSS grew ${(grew / MiB).toFixed(0)} MiB over the budgets`);
});
