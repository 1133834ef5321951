/**
 * Browser safety against real gateways on loopback, with the requests a hostile page's browser
 * would send (a form post, a multipart upload, a WebSocket from its origin): one gateway as it
 * starts by default, one with CORS_ORIGINS, GRAPHIQL and INTROSPECTION set.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import WebSocket from 'ws';
import { ConfigError, loadConfig } from '../src/config/config.ts';
import type { Job } from '../src/jobs/job.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';
import { CSRF_HEADERS, multipartBody } from './support/server.ts';

const APP = 'https://app.example.com';
const EVIL = 'https://evil.example';
const SUBMIT_ENCODE = 'mutation($input: EncodeInput!) { submitEncode(input: $input) { id } }';

let closed: InProcessGateway;
let open: InProcessGateway;
let png: Buffer;
const dir = mkdtempSync(join(tmpdir(), 'latentgate-browser-'));
/** Jobs each gateway has submitted, whoever asked. */
const submitted = new Map<InProcessGateway, number>();

before(async () => {
  const env = { MODELS_DIR, DATA_DIR: join(dir, 'data'), DEVICE_MEMORY: '1GiB', LOG_LEVEL: 'warn' };
  [closed, open, png] = await Promise.all([
    startInProcessGateway(env),
    startInProcessGateway({
      ...env,
      CORS_ORIGINS: `http://localhost:5173, ${APP}`,
      GRAPHIQL: 'true',
      INTROSPECTION: 'true',
    }),
    sharp({ create: { width: 64, height: 64, channels: 3, background: '#3080c0' } })
      .png()
      .toBuffer(),
  ]);
  for (const gateway of [closed, open]) {
    const jobs = gateway.services.jobs;
    const submit = jobs.submit.bind(jobs);
    submitted.set(gateway, 0);
    jobs.submit = (...args) => {
      submitted.set(gateway, submitted.get(gateway)! + 1);
      return submit(...args);
    };
  }
});
after(async () => {
  await Promise.all([closed?.stop(), open?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

/** A job that runs until it is cancelled, so a cancelJob that ran shows. */
function heldJob(gateway: InProcessGateway): Job {
  return gateway.services.jobs.submit(
    'encode',
    'taef2',
    (_, job) => new Promise((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason))),
  );
}

const post = (gateway: InProcessGateway, body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${gateway.url}/graphql`, { method: 'POST', headers, body });

async function refusedAsCrossSite(response: Response, label: string): Promise<void> {
  const body = await response.json();
  assert.equal(response.status, 403, `${label}: ${JSON.stringify(body)}`);
  assert.equal(body.data, undefined, label);
  assert.equal(body.errors[0].extensions.code, 'FORBIDDEN', label);
  assert.match(body.errors[0].message, /must carry the header x-graphql-yoga-csrf/, label);
  assert.equal(response.headers.get('access-control-allow-origin'), null, label);
}

function upload(file: Uint8Array) {
  return multipartBody(
    SUBMIT_ENCODE,
    { input: { model: 'taef2', image: { upload: null } } },
    'variables.input.image.upload',
    file,
    'a.png',
  );
}

/** The upgrade's status: 101 when the socket opened, else the HTTP status it was refused with. */
function upgrade(gateway: InProcessGateway, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', {
      ...(origin ? { origin } : {}),
    });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_, response) => {
      resolve(response.statusCode!);
      socket.terminate();
    });
    socket.once('error', reject);
  });
}

describe('CSRF prevention', () => {
  test('a cross-site form post (url-encoded, multipart, text/plain) or GET of cancelJob is refused', async () => {
    const job = heldJob(closed);
    const query = `mutation { cancelJob(id: "${job.id}") { status } }`;
    const multipart = new FormData();
    multipart.set('operations', JSON.stringify({ query }));
    multipart.set('map', '{}');
    const attempts: [string, () => Promise<Response>][] = [
      ['url-encoded', () => post(closed, new URLSearchParams({ query }), { origin: EVIL })],
      ['multipart', () => post(closed, multipart, { origin: EVIL })],
      ['text/plain', () => post(closed, JSON.stringify({ query }), { origin: EVIL, 'content-type': 'text/plain' })],
      ['GET', () => fetch(`${closed.url}/graphql?${new URLSearchParams({ query })}`, { headers: { origin: EVIL } })],
    ];
    for (const [label, send] of attempts) await refusedAsCrossSite(await send(), label);
    assert.equal(job.cancelRequested, false);
    assert.equal(job.status, 'QUEUED');
    // The same form post with the header (which a page gets to send only through a CORS preflight) runs.
    const allowed = await post(closed, new URLSearchParams({ query }), CSRF_HEADERS);
    assert.equal(allowed.status, 200);
    assert.equal(job.cancelRequested, true);
  });

  test('a cross-site multipart upload of submitEncode is refused and submits nothing', async () => {
    const before = submitted.get(closed);
    await refusedAsCrossSite(await post(closed, upload(png), { origin: EVIL }), 'upload');
    await refusedAsCrossSite(await post(open, upload(png), { origin: EVIL }), 'upload to a gateway with CORS');
    assert.equal(submitted.get(closed), before);
  });

  test('an upload with the header from an allowed origin, or the same origin, is accepted', async () => {
    for (const [gateway, origin] of [
      [open, APP],
      [closed, closed.url],
    ] as const) {
      const before = submitted.get(gateway)!;
      const response = await post(gateway, upload(png), { origin, ...CSRF_HEADERS });
      const body = await response.json();
      assert.equal(response.status, 200, JSON.stringify(body));
      assert.equal(submitted.get(gateway), before + 1);
      // It ran: the encode is done (and no run is left going as the gateways stop).
      const job = gateway.services.jobs.get(body.data.submitEncode.id);
      for await (const event of job.subscribe())
        if (event.type !== 'QUEUED' && event.type !== 'ROUTED' && event.type !== 'RUNNING') break;
      assert.equal(job.status, 'DONE', JSON.stringify(job.events.at(-1)));
      // Only a listed origin gets CORS headers; the gateway's own pages need none.
      const cors = gateway === open ? APP : null;
      assert.equal(response.headers.get('access-control-allow-origin'), cors);
    }
  });

  test('application/json needs no header (a page cannot send it without a preflight)', async () => {
    const response = await post(closed, JSON.stringify({ query: '{ __typename }' }), {
      'content-type': 'application/json',
    });
    assert.deepEqual(await response.json(), { data: { __typename: 'Query' } });
  });
});

describe('CORS', () => {
  const preflight = (gateway: InProcessGateway, origin: string) =>
    fetch(`${gateway.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, x-graphql-yoga-csrf',
      },
    });

  test('only a listed origin gets CORS headers, its own, never *', async () => {
    const listed = await preflight(open, APP);
    assert.equal(listed.status, 204);
    assert.equal(listed.headers.get('access-control-allow-origin'), APP);
    assert.equal(listed.headers.get('access-control-allow-credentials'), 'true');
    assert.match(listed.headers.get('access-control-allow-headers')!, /x-graphql-yoga-csrf/);
    assert.match(listed.headers.get('vary')!, /\bOrigin\b/);
    for (const [gateway, origin] of [
      [open, EVIL],
      [open, `${APP}.evil.example`],
      [closed, APP],
      [closed, EVIL],
    ] as const) {
      const answer = await preflight(gateway, origin);
      for (const name of ['allow-origin', 'allow-credentials', 'allow-headers', 'allow-methods'])
        assert.equal(answer.headers.get(`access-control-${name}`), null, `${origin}: ${name}`);
      const json = await post(gateway, JSON.stringify({ query: '{ __typename }' }), {
        origin,
        'content-type': 'application/json',
      });
      assert.equal(json.headers.get('access-control-allow-origin'), null, origin);
      assert.match(json.headers.get('vary')!, /\bOrigin\b/);
    }
  });
});

describe('WebSocket origin', () => {
  test('a foreign page is refused with 403; no Origin, the same origin or a listed one are accepted', async () => {
    assert.equal(await upgrade(closed, EVIL), 403);
    assert.equal(await upgrade(open, EVIL), 403);
    assert.equal(await upgrade(closed, 'null'), 403);
    assert.equal(await upgrade(closed), 101);
    assert.equal(await upgrade(closed, closed.url), 101);
    assert.equal(await upgrade(open, APP), 101);
  });
});

describe('Hybrid Inference origin', () => {
  const hybridEncode = (gateway: InProcessGateway, origin?: string) =>
    fetch(`${gateway.url}/v1/vae/taef2/encode`, {
      method: 'POST',
      // text/plain: what a page can send without a preflight.
      headers: { 'content-type': 'text/plain', ...(origin ? { origin } : {}) },
      body: new Uint8Array(png),
    });

  test("a foreign page's simple POST is refused before it runs; no Origin, the same origin or a listed one run", async () => {
    for (const [gateway, origin] of [
      [closed, EVIL],
      [open, EVIL],
      [closed, 'null'],
    ] as const) {
      const refused = await hybridEncode(gateway, origin);
      assert.equal(refused.status, 403, origin);
      const body = await refused.json();
      assert.equal(body.code, 'FORBIDDEN');
      assert.match(body.error, /cross-site Hybrid Inference request .* CORS_ORIGINS/);
    }
    for (const [gateway, origin] of [
      [closed, undefined],
      [closed, closed.url],
      [open, APP],
    ] as const) {
      const ran = await hybridEncode(gateway, origin);
      assert.equal(ran.status, 200, String(origin));
      await ran.arrayBuffer();
    }
  });
});

describe('introspection and GraphiQL', () => {
  const introspect = (gateway: InProcessGateway, query: string) =>
    post(gateway, JSON.stringify({ query }), {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
    });

  test('introspection is refused by default and answered when enabled', async () => {
    for (const query of ['{ __schema { queryType { name } } }', '{ __type(name: "Query") { name } }']) {
      const refused = await introspect(closed, query);
      const body = await refused.json();
      assert.equal(refused.status, 400, query);
      assert.equal(body.errors[0].extensions.code, 'BAD_REQUEST', query);
      assert.match(body.errors[0].message, /introspection has been disabled/, query);
    }
    const answered = await (await introspect(open, '{ __schema { queryType { name } } }')).json();
    assert.deepEqual(answered, { data: { __schema: { queryType: { name: 'Query' } } } });
  });

  test('GraphiQL is served only when enabled; otherwise a browser is told how to enable it', async () => {
    const page = (gateway: InProcessGateway) => fetch(`${gateway.url}/graphql`, { headers: { accept: 'text/html' } });
    const on = await page(open);
    assert.equal(on.status, 200);
    assert.match(on.headers.get('content-type')!, /^text\/html/);
    assert.match(await on.text(), /graphiql/i);
    const off = await page(closed);
    assert.equal(off.status, 404);
    const body = await off.json();
    assert.equal(body.code, 'NOT_FOUND');
    assert.match(body.error, /GraphiQL is off.*GRAPHIQL=true/);
  });
});

test('CORS_ORIGINS, GRAPHIQL and INTROSPECTION in the configuration', () => {
  assert.deepEqual(loadConfig({}).browser, { corsOrigins: [], graphiql: false, introspection: false });
  const config = loadConfig({
    CORS_ORIGINS: `${APP}, http://localhost:5173,`,
    GRAPHIQL: 'true',
    INTROSPECTION: 'true',
  });
  assert.deepEqual(config.browser, {
    corsOrigins: [APP, 'http://localhost:5173'],
    graphiql: true,
    introspection: true,
  });
  for (const [given, problem] of [
    ['*', /"\*" is not allowed/],
    [`${APP}/`, /that would be "https:\/\/app\.example\.com"/],
    ['https://App.example.com', /that would be "https:\/\/app\.example\.com"/],
    ['https://app.example.com:443', /that would be "https:\/\/app\.example\.com"/],
    ['ftp://files.example', /not an http or https origin/],
    ['app.example.com', /not an origin/],
  ] as const)
    assert.throws(
      () => loadConfig({ CORS_ORIGINS: `http://localhost:5173,${given}` }),
      (error: unknown) =>
        error instanceof ConfigError &&
        /CORS_ORIGINS \(corsOrigins\) is/.test(error.message) &&
        problem.test(error.message),
      given,
    );
  assert.throws(() => loadConfig({ GRAPHIQL: 'yes' }), /GRAPHIQL \(graphiql\) is "yes"; allowed: true, false/);
});
