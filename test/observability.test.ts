/**
 * Observability against a real gateway on loopback: /metrics after real requests (an encode, refusals,
 * a BUSY, a failed job, an internal error), and the JSON log lines those requests wrote.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/config.ts';
import type { Reservation } from '../src/routing/ledger.ts';
import { createHttpServer, listen } from '../src/server/http.ts';
import { createServices, type RunningServices } from '../src/server/services.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { freePort } from './support/server.ts';

const ENCODE = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { shape } } }';
const SUBMIT = 'mutation($input: EncodeInput!) { submitEncode(input: $input) { id } }';
const JOB = 'query($id: ID!) { job(id: $id) { status error { code } } }';

let services: RunningServices;
let server: Server;
let url: string;
let deadPort: number;
const lines: string[] = [];
const coffee = readFileSync(join(IMAGES_DIR, 'coffee.png')).toString('base64');

before(async () => {
  const port = await freePort();
  // Nothing listens here: the upstream's health checks fail.
  deadPort = await freePort();
  const config = loadConfig({
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    MODELS_DIR,
    MAX_QUEUE_LENGTH: '1',
    LOG_LEVEL: 'info',
    UPSTREAMS: JSON.stringify([
      {
        model: 'sd15',
        name: 'dead',
        url: `http://127.0.0.1:${deadPort}/v1/vae/sd15/{operation}`,
        operations: ['decode'],
        healthUrl: `http://127.0.0.1:${deadPort}/healthz`,
      },
    ]),
  });
  services = await createServices(config, { write: (line: string) => void lines.push(line) });
  server = createHttpServer(services);
  await listen(server, port, '127.0.0.1');
  url = `http://127.0.0.1:${port}`;
});

after(async () => {
  const closed = new Promise<void>((resolve) => server?.close(() => resolve()));
  server?.closeAllConnections();
  await closed;
  await services?.close();
});

async function graphql(query: string, variables: Record<string, unknown>) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
}

/** The scrape, as `name{labels}` → value. */
async function scrape(): Promise<{
  contentType: string;
  value: (name: string, labels?: Record<string, string>) => number | undefined;
}> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  const text = await response.text();
  const samples: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return {
    contentType: response.headers.get('content-type') ?? '',
    value: (name, labels = {}) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value,
  };
}

function logged(predicate: (line: Record<string, any>) => boolean): Record<string, any> | undefined {
  return lines.map((line) => JSON.parse(line) as Record<string, any>).find(predicate);
}

async function settledJob(id: string): Promise<{ status: string; error: { code: string } | null }> {
  for (let i = 0; i < 100; i++) {
    const { data } = await graphql(JOB, { id });
    if (data.job.status !== 'QUEUED' && data.job.status !== 'RUNNING') return data.job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`job ${id} did not settle`);
}

describe('metrics at /metrics', () => {
  test('an encode is counted by operation, route and outcome, and timed by model', async () => {
    const before = await scrape();
    assert.match(before.contentType, /^text\/plain/);
    assert.equal(before.value('latentgate_requests_total', { operation: 'encode', outcome: 'ok' }), undefined);
    const { data, errors } = await graphql(ENCODE, { input: { model: 'taef2', image: { base64: coffee } } });
    assert.equal(errors, undefined);
    assert.ok(data.encode.latent.shape);
    const after = await scrape();
    const route = { operation: 'encode', route: 'LOCAL' };
    assert.equal(after.value('latentgate_requests_total', { ...route, outcome: 'ok' }), 1);
    const timed = { model: 'taef2', ...route };
    assert.equal(after.value('latentgate_run_seconds_count', timed), 1);
    assert.ok(after.value('latentgate_run_seconds_sum', timed)! > 0);
    assert.equal(after.value('latentgate_run_seconds_bucket', { ...timed, le: '+Inf' }), 1);
    // The run released its reservation: nothing reserved, nothing waiting.
    const device = { device: services.ledger.name };
    assert.equal(after.value('latentgate_ledger_reserved_bytes', device), 0);
    assert.equal(after.value('latentgate_ledger_budget_bytes', device), services.ledger.snapshot().budgetBytes);
    assert.equal(after.value('latentgate_queue_depth', device), 0);
  });

  test('refusals are counted by the code the client got, over GraphQL and HTTP', async () => {
    const before = await scrape();
    assert.equal(before.value('latentgate_rejections_total', { reason: 'UNKNOWN_MODEL' }), 0);
    const { errors } = await graphql(ENCODE, { input: { model: 'nope', image: { base64: coffee } } });
    assert.equal(errors?.[0].extensions?.code, 'UNKNOWN_MODEL');
    const missing = await fetch(`${url}/v1/latents/00000000-0000-0000-0000-000000000000`);
    assert.equal(missing.status, 404);
    const syntax = await graphql('mutation {', {});
    assert.equal(syntax.errors?.[0].extensions?.code, 'BAD_REQUEST');
    const after = await scrape();
    assert.equal(after.value('latentgate_rejections_total', { reason: 'UNKNOWN_MODEL' }), 1);
    assert.equal(after.value('latentgate_rejections_total', { reason: 'NOT_FOUND' }), 1);
    assert.equal(after.value('latentgate_rejections_total', { reason: 'BAD_REQUEST' }), 1);
  });

  test('a full queue: queue depth, reserved bytes, BUSY answers and their Retry-After', async () => {
    const budget = services.ledger.snapshot().budgetBytes;
    const held = services.ledger.tryReserve(budget, { label: 'test: the whole budget' }) as Reservation;
    assert.ok(held);
    // One waiter fills the queue (MAX_QUEUE_LENGTH=1); every encode now gets BUSY.
    const waiter = services.ledger.reserve({ bytes: 1, label: 'test: waiter' });
    try {
      const during = await scrape();
      const device = { device: services.ledger.name };
      assert.equal(during.value('latentgate_queue_depth', device), 1);
      assert.equal(during.value('latentgate_ledger_reserved_bytes', device), budget);
      const { errors } = await graphql(ENCODE, { input: { model: 'taef2', image: { base64: coffee } } });
      assert.equal(errors?.[0].extensions?.code, 'BUSY');
      const submitted = await graphql(SUBMIT, { input: { model: 'taef2', image: { base64: coffee } } });
      const job = await settledJob(submitted.data.submitEncode.id);
      assert.deepEqual(job, { status: 'FAILED', error: { code: 'BUSY' } });
      const busy = await scrape();
      assert.equal(busy.value('latentgate_rejections_total', { reason: 'BUSY' }), 2);
      assert.equal(busy.value('latentgate_busy_retry_after_seconds_count'), 2);
      assert.equal(
        busy.value('latentgate_requests_total', { operation: 'encode', route: 'LOCAL', outcome: 'BUSY' }),
        2,
      );
    } finally {
      held.release();
      (await waiter).release();
    }
    const released = await scrape();
    assert.equal(released.value('latentgate_queue_depth', { device: services.ledger.name }), 0);
    assert.equal(released.value('latentgate_ledger_reserved_bytes', { device: services.ledger.name }), 0);
  });

  test('an internal error is answered INTERNAL and counted', async () => {
    const store = services.store;
    const get = store.get;
    store.get = async () => {
      throw new TypeError('store broke (injected)');
    };
    try {
      const answer = await fetch(`${url}/v1/latents/00000000-0000-0000-0000-000000000001`);
      assert.equal(answer.status, 500);
      assert.deepEqual(await answer.json(), { error: 'internal error', code: 'INTERNAL' });
    } finally {
      store.get = get;
    }
    assert.equal((await scrape()).value('latentgate_rejections_total', { reason: 'INTERNAL' }), 1);
  });

  test('upstream health, host memory (the host ledger, or a source registered instead), and process metrics', async () => {
    const endpoint = { endpoint: 'upstream:dead', model: 'sd15' };
    // The first health check runs at start; give its refused connection a moment.
    let scraped = await scrape();
    for (let i = 0; i < 50 && scraped.value('latentgate_upstream_healthy', endpoint) !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      scraped = await scrape();
    }
    assert.equal(scraped.value('latentgate_upstream_healthy', endpoint), 0);
    assert.equal(scraped.value('latentgate_upstream_circuit_state', { ...endpoint, state: 'closed' }), 1);
    assert.equal(scraped.value('latentgate_upstream_circuit_state', { ...endpoint, state: 'open' }), 0);
    assert.equal(scraped.value('latentgate_upstream_rtt_seconds', endpoint), undefined);
    assert.ok(scraped.value('latentgate_process_resident_memory_bytes')! > 10 * 2 ** 20);
    // The gateway registers its host ledger (HOST_MEMORY): nothing held between requests.
    assert.equal(scraped.value('latentgate_host_memory_held_bytes'), 0);
    assert.equal(scraped.value('latentgate_host_memory_budget_bytes'), services.config.hostMemoryBytes);

    let held = 1000;
    services.metrics.registerHostMemory(() => ({ heldBytes: held, budgetBytes: 5000 }));
    assert.equal((await scrape()).value('latentgate_host_memory_held_bytes'), 1000);
    held = 3000;
    const moved = await scrape();
    assert.equal(moved.value('latentgate_host_memory_held_bytes'), 3000);
    assert.equal(moved.value('latentgate_host_memory_budget_bytes'), 5000);
  });
});

describe('JSON log lines', () => {
  test('every line is JSON with a level, a time and a message', () => {
    assert.ok(lines.length > 0);
    for (const line of lines) {
      const entry = JSON.parse(line);
      assert.equal(typeof entry.level, 'number');
      assert.equal(typeof entry.time, 'number');
      assert.equal(typeof entry.msg, 'string');
    }
  });

  test('a client error at info, with its code and no stack', () => {
    const entry = logged((l) => l.code === 'UNKNOWN_MODEL');
    assert.ok(entry);
    assert.equal(entry.level, 30);
    assert.equal(entry.edge, 'graphql');
    assert.match(entry.msg, /unknown model "nope"/);
    assert.doesNotMatch(JSON.stringify(entry), /stack|\n\s+at /);
    const busy = logged((l) => l.code === 'BUSY' && l.edge === 'job');
    assert.equal(busy?.level, 30);
    assert.equal(typeof busy?.job, 'string');
  });

  test('an internal error at error, with its stack', () => {
    const entry = logged((l) => l.code === 'INTERNAL');
    assert.ok(entry);
    assert.equal(entry.level, 50);
    assert.equal(entry.err.type, 'TypeError');
    assert.equal(entry.err.message, 'store broke (injected)');
    assert.match(entry.err.stack, /store broke \(injected\)\n\s+at /);
    // Yoga's own logger does not log it a second time, nor any client error at error level.
    assert.equal(lines.filter((l) => l.includes('store broke')).length, 1);
    assert.equal(
      logged((l) => l.level >= 50 && l.code !== 'INTERNAL'),
      undefined,
    );
  });
});
