/**
 * Calling upstreams. Units: the router's choice with upstream candidates, the circuit breaker,
 * configuration, and retries. Then gateways in this process, talking over loopback HTTP:
 *   B  a plain gateway (the healthy upstream);
 *   A  a gateway whose device fits nothing (1 MiB), with B as taef2's upstream, and two
 *      upstream-only models served by a faulty fake endpoint F (one with B as the next endpoint);
 *   C  a gateway that can only tile (400 MiB), with F preferred for taef2;
 *   F  a tiny HTTP server in this test that is slow, answers 503, resets the connection, cuts the
 *      body short, or sends a wrong `shape` header.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type DeviceView, planRoute, type UpstreamView } from '../src/routing/planner.ts';
import { shippedProfiles } from '../src/routing/profiles.ts';
import { RunStats } from '../src/routing/run-stats.ts';
import { CircuitBreaker } from '../src/upstream/circuit-breaker.ts';
import { parseUpstreams } from '../src/upstream/config.ts';
import { callUpstream, UpstreamError } from '../src/upstream/http-client.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';

const GIB = 2 ** 30;

describe('router: upstream candidates', () => {
  const profiles = shippedProfiles('sd15')!;
  const request = { operation: 'encode' as const, width: 1024, height: 1024, batch: 1, dtype: 'float16' as const };
  const device = (budgetGiB: number, extra: Partial<DeviceView> = {}): DeviceView => ({
    name: 'local:cpu',
    budgetBytes: budgetGiB * GIB,
    freeBytes: budgetGiB * GIB,
    waitSeconds: () => 0,
    ...extra,
  });
  const upstream = (name: string, seconds: number, extra: Partial<UpstreamView> = {}): UpstreamView => ({
    name,
    healthy: true,
    maxPixels: null,
    expectedSeconds: () => seconds,
    ...extra,
  });
  const times = new RunStats(); // unmeasured: 2 s per megapixel locally

  test('local wins when it is expected sooner; the upstream when it is', () => {
    assert.equal(
      planRoute('sd15', profiles, request, device(24), times, { upstreams: [upstream('upstream:a', 10)] }).route,
      'LOCAL',
    );
    const plan = planRoute('sd15', profiles, request, device(24), times, {
      upstreams: [upstream('upstream:a', 10), upstream('upstream:b', 0.5)],
    });
    assert.equal(plan.route, 'UPSTREAM');
    assert.equal(plan.target, 'upstream:b');
    assert.equal(plan.bytes, 0);
    assert.match(plan.reason, /expected sooner than local on local:cpu/);
  });

  test('when nothing fits locally the work goes upstream, within the endpoint limits', () => {
    const plan = planRoute('sd15', profiles, request, device(0.01), times, { upstreams: [upstream('upstream:a', 30)] });
    assert.equal(plan.route, 'UPSTREAM');
    assert.match(plan.reason, /nothing fits local:cpu/);
    const none = planRoute('sd15', profiles, request, device(0.01), times, {
      upstreams: [upstream('upstream:a', 1, { healthy: false }), upstream('upstream:b', 1, { maxPixels: 512 * 512 })],
    });
    assert.equal(none.route, 'REJECT');
    assert.match(none.reason, /none of its 2 upstream endpoint\(s\) is healthy and takes 1024x1024/);
  });

  test('a saturated device (queue full) sends work upstream; without upstreams it stays local (BUSY later)', () => {
    const saturated = device(24, { refuses: () => true });
    const plan = planRoute('sd15', profiles, request, saturated, times, { upstreams: [upstream('upstream:a', 60)] });
    assert.equal(plan.route, 'UPSTREAM');
    assert.match(plan.reason, /saturated/);
    assert.equal(planRoute('sd15', profiles, request, saturated, times, {}).route, 'LOCAL');
  });

  test('a model without local weights plans upstream only', () => {
    assert.equal(
      planRoute('sd15', profiles, request, device(24), times, { local: false, upstreams: [upstream('upstream:a', 60)] })
        .route,
      'UPSTREAM',
    );
    const none = planRoute('sd15', profiles, request, device(24), times, { local: false });
    assert.equal(none.route, 'REJECT');
    assert.match(none.reason, /runs only upstream/);
  });
});

test('circuit breaker: opens after the threshold, one trial when half-open, closes on success', () => {
  let now = 0;
  const breaker = new CircuitBreaker({ failureThreshold: 2, cooldownMs: 1000, now: () => now });
  assert.equal(breaker.state, 'closed');
  breaker.recordFailure();
  assert.equal(breaker.state, 'closed');
  breaker.recordFailure();
  assert.equal(breaker.state, 'open');
  assert.equal(breaker.tryAcquire(), false);
  now = 1000;
  assert.equal(breaker.state, 'half-open');
  assert.equal(breaker.tryAcquire(), true);
  assert.equal(breaker.tryAcquire(), false, 'only one trial');
  breaker.recordFailure();
  assert.equal(breaker.state, 'open', 'a failed trial opens it again');
  now = 2500;
  assert.equal(breaker.tryAcquire(), true);
  breaker.recordSuccess();
  assert.equal(breaker.state, 'closed');
  assert.equal(breaker.consecutiveFailures, 0);
});

test('upstream configuration: defaults, per-operation URLs, and every problem named', () => {
  const { upstreams, problems } = parseUpstreams(
    JSON.stringify([
      { model: 'taef2', url: 'http://10.0.0.2:4000/v1/vae/taef2/{operation}' },
      {
        model: 'flux1',
        url: 'https://x.endpoints.huggingface.cloud/',
        operations: ['decode'],
        tokenEnv: 'HF_TOKEN',
        maxPixels: 4194304,
      },
    ]),
    { HF_TOKEN: 'hf_secret' },
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(upstreams[0].operations, ['encode', 'decode']);
  assert.equal(upstreams[0].name, '10.0.0.2:4000');
  assert.equal(upstreams[0].healthUrl, 'http://10.0.0.2:4000/healthz');
  assert.equal(upstreams[0].timeoutMs, 30_000);
  assert.equal(upstreams[1].healthUrl, null, 'non-latentgate endpoints are watched passively');
  assert.equal(upstreams[1].token, 'hf_secret');
  const bad = parseUpstreams([
    { url: 'ftp://x/' },
    { model: 'm', url: 'https://x/', timeoutMs: -1, family: 'sd3' },
    { model: 'm', url: 'https://y/{operation}', colour: 1 },
  ]);
  assert.match(bad.problems.join('\n'), /upstreams\[0\]\.model is required/);
  assert.match(bad.problems.join('\n'), /upstreams\[0\]\.url is "ftp:\/\/x\/"; it must be an absolute http\(s\) URL/);
  assert.match(bad.problems.join('\n'), /upstreams\[1\]\.operations is required/);
  assert.match(bad.problems.join('\n'), /upstreams\[1\]\.timeoutMs is -1/);
  assert.match(bad.problems.join('\n'), /upstreams\[1\]\.family is "sd3"/);
  assert.match(bad.problems.join('\n'), /upstreams\[2\]\.colour is not a setting/);
});

describe('http client: retries, time limit', () => {
  let server: Server;
  let base: string;
  const script: Array<(res: import('node:http').ServerResponse) => void> = [];
  let hits = 0;
  before(async () => {
    server = createServer((req, res) => {
      hits++;
      req.resume();
      req.on('end', () => (script.shift() ?? ((r) => r.end('ok')))(res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  test('503 and 429 are retried with back-off, then the answer comes', async () => {
    hits = 0;
    script.push(
      (r) => r.writeHead(503).end(),
      (r) => r.writeHead(429, { 'retry-after': '0' }).end(),
      (r) => r.end('done'),
    );
    const answer = await callUpstream(
      { url: base, method: 'POST', body: new Uint8Array(4) },
      { deadlineMs: 5000, retries: 2, maxResponseBytes: 100, backoffMs: 10 },
    );
    assert.equal(answer.body.toString(), 'done');
    assert.equal(answer.attempts, 3);
    assert.equal(hits, 3);
  });

  test('other statuses are not retried; a silent endpoint ends at the deadline', async () => {
    hits = 0;
    script.push((r) => r.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad shape"}'));
    await assert.rejects(
      callUpstream({ url: base, method: 'GET' }, { deadlineMs: 5000, retries: 3, maxResponseBytes: 100 }),
      (e: unknown) => {
        assert.ok(e instanceof UpstreamError);
        assert.equal(e.kind, 'status');
        assert.match(e.message, /HTTP 400: bad shape/);
        assert.equal(e.countsAgainstEndpoint, false);
        return true;
      },
    );
    assert.equal(hits, 1);
    script.push(() => {}); // never answers
    const started = performance.now();
    await assert.rejects(
      callUpstream({ url: base, method: 'GET' }, { deadlineMs: 300, retries: 3, maxResponseBytes: 100 }),
      (e: unknown) => e instanceof UpstreamError && e.kind === 'timeout',
    );
    assert.ok(performance.now() - started < 1000);
  });
});

// ------------------------------------------------------------------------------------------------
// Gateways on loopback

type Mode = 'slow' | '503' | 'reset' | 'truncate' | 'wrong-shape';
const MODES: Mode[] = ['slow', '503', 'reset', 'truncate', 'wrong-shape'];
const FAULT_TIMEOUT_MS = 1500;

let fake: Server;
let fakeUrl: string;
let mode: Mode = '503';
let fakeHits = 0;
let b: InProcessGateway;
let a: InProcessGateway;
let c: InProcessGateway;
let dataDir: string;
let small: Buffer; // 256x256 PNG
const astronaut = readFileSync(join(IMAGES_DIR, 'astronaut.png'));

function startFake(): Promise<void> {
  fake = createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('{"status":"ok"}');
    fakeHits++;
    req.resume();
    req.on('end', () => {
      switch (mode) {
        case 'slow': {
          const timer = setTimeout(() => res.end(), 30_000);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        case '503':
          return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"overloaded"}');
        case 'reset':
          return void req.socket.resetAndDestroy();
        case 'truncate':
          res.writeHead(200, {
            'content-type': 'tensor/binary',
            shape: '[1,32,32,32]',
            dtype: 'float32',
            'content-length': String(32 * 32 * 32 * 4),
          });
          res.write(Buffer.alloc(1000));
          return void setTimeout(() => res.destroy(), 20);
        case 'wrong-shape': {
          const body = Buffer.alloc(16 * 32 * 32 * 4);
          return void res
            .writeHead(200, {
              'content-type': 'tensor/binary',
              shape: '[1,16,32,32]',
              dtype: 'float32',
              'content-length': String(body.length),
            })
            .end(body);
        }
      }
    });
  });
  return new Promise((resolve) =>
    fake.listen(0, '127.0.0.1', () => {
      fakeUrl = `http://127.0.0.1:${(fake.address() as { port: number }).port}`;
      resolve();
    }),
  );
}

/** GraphQL with a hard client-side limit: a hang fails the test instead of stalling it. */
async function gql(gateway: InProcessGateway, query: string, variables: Record<string, unknown>) {
  return gateway.graphql(query, variables, { signal: AbortSignal.timeout(20_000) });
}

const ENCODE =
  'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape sha256 data } ' +
  'route { route target reason bytes budgetBytes estimates { whole { bytes } } } } }';
const DECODE =
  'mutation($input: DecodeInput!) { decode(input: $input) { images { sha256 width } route { route target } } }';

async function encodeOn(gateway: InProcessGateway, model: string, png: Buffer) {
  const started = performance.now();
  const response = await gql(gateway, ENCODE, { input: { model, image: { base64: png.toString('base64') } } });
  return { ...response, seconds: (performance.now() - started) / 1000 };
}

async function health(gateway: InProcessGateway) {
  return (await (await fetch(`${gateway.url}/healthz`)).json()) as {
    device: { reservedBytes: number; running: number; queued: number };
    upstreams: { name: string; circuit: string; secondsPerMegapixel: Record<string, number> }[];
  };
}

describe('two gateways and a faulty endpoint', () => {
  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'latentgate-upstream-'));
    small = await sharp(astronaut).resize(256, 256).png().toBuffer();
    await startFake();
    const common = { MODELS_DIR, DATA_DIR: dataDir };
    const faulty = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      url: `${fakeUrl}/v1/vae/taef2/{operation}`,
      timeoutMs: FAULT_TIMEOUT_MS,
      retries: 2,
      failureThreshold: 100,
      expectedSecondsPerMegapixel: 0.001, // looks fastest until it has answered once
      ...extra,
    });
    [b, c] = await Promise.all([
      startInProcessGateway({ ...common, DEVICE_MEMORY: '4GiB' }),
      startInProcessGateway({
        ...common,
        DEVICE_MEMORY: '400MiB',
        DEVICE_HEADROOM: '0',
        UPSTREAMS: JSON.stringify([{ model: 'taef2', ...faulty('faulty') }]),
      }),
    ]);
    const tae = { family: 'tae', latentChannels: 32 };
    a = await startInProcessGateway({
      ...common,
      DEVICE_MEMORY: '1MiB',
      DEVICE_HEADROOM: '0',
      UPSTREAMS: JSON.stringify([
        { model: 'taef2', url: `${b.url}/v1/vae/taef2/{operation}`, name: 'second' },
        { model: 'flaky', ...tae, ...faulty('faulty') },
        { model: 'flaky', url: `${b.url}/v1/vae/taef2/{operation}`, name: 'backup', expectedSecondsPerMegapixel: 100 },
        {
          model: 'onlyfaulty',
          ...tae,
          ...faulty('faulty-only', { retries: 1, failureThreshold: 2, cooldownMs: 600_000 }),
        },
      ]),
    });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    fake?.closeAllConnections();
    fake?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test(
    'a request that fits nothing locally runs on the upstream gateway ' + 'and returns the same latent and image',
    async () => {
      const local = await encodeOn(b, 'taef2', astronaut);
      assert.equal(local.errors, undefined, JSON.stringify(local.errors));
      assert.equal(local.data.encode.route.route, 'LOCAL');
      const routed = await encodeOn(a, 'taef2', astronaut);
      assert.equal(routed.errors, undefined, JSON.stringify(routed.errors));
      assert.equal(routed.data.encode.route.route, 'UPSTREAM');
      assert.equal(routed.data.encode.route.target, 'upstream:second');
      assert.equal(routed.data.encode.route.bytes, 0);
      assert.match(routed.data.encode.route.reason, /nothing fits local:cpu/);
      assert.equal(routed.data.encode.latent.sha256, local.data.encode.latent.sha256);

      const latent = { data: local.data.encode.latent.data, shape: local.data.encode.latent.shape, dtype: 'FLOAT32' };
      const [direct, viaA] = await Promise.all([
        gql(b, DECODE, { input: { model: 'taef2', latent: { tensor: latent } } }),
        gql(a, DECODE, { input: { model: 'taef2', latent: { tensor: latent } } }),
      ]);
      assert.equal(viaA.errors, undefined, JSON.stringify(viaA.errors));
      assert.equal(viaA.data.decode.route.route, 'UPSTREAM');
      assert.equal(viaA.data.decode.images[0].sha256, direct.data.decode.images[0].sha256, 'decoded image differs');

      // The protocol endpoints take the same route.
      const answer = await fetch(`${a.url}/v1/vae/taef2/encode`, {
        method: 'POST',
        body: astronaut,
        signal: AbortSignal.timeout(20_000),
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('x-latentgate-target'), 'upstream:second');
      assert.equal(Buffer.from(await answer.arrayBuffer()).toString('base64'), local.data.encode.latent.data);
      const measured = (await health(a)).upstreams.find((u) => u.name === 'upstream:second')!;
      assert.ok(measured.secondsPerMegapixel.encode > 0, 'latency is measured');
    },
  );

  test('models that exist only upstream are listed, with where they run', async () => {
    const { data } = await gql(a, '{ models { id family format operations runsOn upstreams } }', {});
    const flaky = data.models.find((m: { id: string }) => m.id === 'flaky');
    assert.deepEqual(flaky, {
      id: 'flaky',
      family: 'tae',
      format: 'upstream',
      operations: ['ENCODE', 'DECODE'],
      runsOn: 'upstream:faulty, upstream:backup',
      upstreams: ['upstream:faulty', 'upstream:backup'],
    });
    const taef2 = data.models.find((m: { id: string }) => m.id === 'taef2');
    assert.equal(taef2.runsOn, 'local:cpu');
    assert.deepEqual(taef2.upstreams, ['upstream:second']);
  });

  const reference = async () => {
    const direct = await encodeOn(b, 'taef2', small);
    assert.equal(direct.errors, undefined);
    return direct.data.encode.latent.sha256 as string;
  };

  for (const m of MODES) {
    test(`faulty endpoint (${m}): fails over to the next endpoint, or to local tiles`, async () => {
      mode = m;
      fakeHits = 0;
      const expected = await reference();
      const viaA = await encodeOn(a, 'flaky', small);
      assert.equal(viaA.errors, undefined, JSON.stringify(viaA.errors));
      assert.equal(viaA.data.encode.route.target, 'upstream:backup');
      assert.match(viaA.data.encode.route.reason, /failed over to upstream:backup after upstream:faulty: /);
      assert.equal(viaA.data.encode.latent.sha256, expected);
      assert.ok(viaA.seconds < FAULT_TIMEOUT_MS / 1000 + 8, `took ${viaA.seconds} s`);
      if (m === '503' || m === 'reset' || m === 'truncate') assert.equal(fakeHits, 3, 'retried twice');
      if (m === 'wrong-shape' || m === 'slow') assert.equal(fakeHits, 1, 'not retried');

      const viaC = await encodeOn(c, 'taef2', astronaut);
      assert.equal(viaC.errors, undefined, JSON.stringify(viaC.errors));
      const route = viaC.data.encode.route;
      assert.equal(route.target, 'local:cpu');
      // C's 400 MiB hold taef2's tiles but not its whole 512 px encode (as the estimator has it).
      assert.equal(route.route, route.estimates.whole.bytes > route.budgetBytes ? 'TILED' : 'LOCAL');
      assert.equal(route.route, 'TILED');
      assert.match(viaC.data.encode.route.reason, /upstream failed \(every upstream failed .*upstream:faulty/);
      assert.deepEqual(viaC.data.encode.latent.shape, [1, 32, 64, 64]);
      assert.ok(viaC.seconds < FAULT_TIMEOUT_MS / 1000 + 15, `took ${viaC.seconds} s`);
    });
  }

  test('with nowhere to fail over to, a typed error; then the circuit opens and the endpoint is skipped', async () => {
    for (const [m, says] of [
      ['wrong-shape', /bad answer: the latent has shape \[1,16,32,32\]; expected \[1,32,32,32\]/],
      ['slow', /timeout: no complete answer within/],
    ] as const) {
      mode = m;
      const result = await encodeOn(a, 'onlyfaulty', small);
      assert.equal(result.errors?.[0].extensions?.code, 'UPSTREAM_FAILED', JSON.stringify(result));
      assert.match(result.errors![0].message, says);
      assert.ok(result.seconds < FAULT_TIMEOUT_MS / 1000 + 3, `took ${result.seconds} s`);
    }
    fakeHits = 0;
    const skipped = await encodeOn(a, 'onlyfaulty', small);
    assert.equal(skipped.errors?.[0].extensions?.code, 'UPSTREAM_FAILED');
    assert.match(skipped.errors![0].message, /none of its 1 upstream endpoint\(s\) is healthy/);
    assert.equal(fakeHits, 0, 'an open circuit sends nothing');
    assert.equal((await health(a)).upstreams.find((u) => u.name === 'upstream:faulty-only')!.circuit, 'open');
    // Over the protocol: the same typed error as JSON.
    const answer = await fetch(`${a.url}/v1/vae/onlyfaulty/encode`, {
      method: 'POST',
      body: new Uint8Array(small),
      signal: AbortSignal.timeout(20_000),
    });
    assert.equal(answer.status, 502);
    assert.equal(((await answer.json()) as { code: string }).code, 'UPSTREAM_FAILED');
  });

  test('no reservation leaks and nothing is left running', async () => {
    for (const gateway of [a, b, c]) {
      const { device } = await health(gateway);
      assert.deepEqual(
        { reserved: device.reservedBytes, running: device.running, queued: device.queued },
        { reserved: 0, running: 0, queued: 0 },
      );
    }
  });
});
