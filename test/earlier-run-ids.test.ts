/**
 * Result and job ids from before a restart of an in-memory gateway: a clear EXPIRED (HTTP 410,
 * reason "earlier-run"), not the NOT_FOUND a typo gets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { issuedAt, issueId, unheldId } from '../src/common/ids.ts';
import type { GatewayError } from '../src/errors.ts';
import { JobManager } from '../src/jobs/manager.ts';
import { MemoryResultStore } from '../src/storage/result-store.ts';
import { startInProcessGateway } from './support/in-process.ts';
import { IMAGES_DIR, MODELS_DIR } from './support/paths.ts';
import { freePort } from './support/server.ts';

const ISSUED = Date.UTC(2026, 0, 2, 3, 4, 5);
// issueId(ISSUED), and the same id with one digit changed: in its issue time, and in its random part.
const OLD = '695735a5-4c34-8cff-9bba-794ccbb43334';
const TYPOS = ['695035a5-4c34-8cff-9bba-794ccbb43334', '695735a5-4c34-8cff-90ba-794ccbb43334'];
const HOUR = 3600_000;

test('an id says when it was issued; a mistyped one says nothing', () => {
  assert.equal(issuedAt(OLD), ISSUED);
  for (const typo of TYPOS) assert.equal(issuedAt(typo), null);
  assert.equal(issuedAt(crypto.randomUUID()), null, 'a version 4 UUID is not one of ours');
  const id = issueId(ISSUED + 999);
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(issuedAt(id), ISSUED);
  assert.notEqual(issueId(ISSUED), issueId(ISSUED));
  const started = ISSUED + 60_000;
  assert.equal(unheldId(OLD, started, HOUR, started + 1000), 'earlier-run');
  assert.equal(unheldId(OLD, started, HOUR, ISSUED + HOUR + 1000), 'expired', 'it would have expired anyway');
  assert.equal(unheldId(OLD, ISSUED + 500, HOUR, ISSUED + 600), 'unknown', 'issued in the start second: this run');
  assert.equal(unheldId(TYPOS[0], started, HOUR, started + 1000), 'unknown');
});

test('the in-memory result store and job manager tell an earlier run from a typo', async () => {
  const now = ISSUED + 60_000;
  const store = new MemoryResultStore(3600, () => now);
  assert.deepEqual(await store.get(OLD), { status: 'earlier-run' });
  for (const typo of TYPOS) assert.deepEqual(await store.get(typo), { status: 'unknown' });
  await store.close();

  const jobs = new JobManager(3600, () => now);
  assert.throws(
    () => jobs.get(OLD),
    (error: GatewayError) =>
      error.code === 'EXPIRED' && error.details.reason === 'earlier-run' && /earlier run/.test(error.message),
  );
  assert.throws(
    () => jobs.get(TYPOS[1]),
    (error: GatewayError) => error.code === 'NOT_FOUND',
  );
  jobs.close();
});

test('after a restart, the earlier run result URL and job id get 410 / EXPIRED (earlier-run), a typo 404', async () => {
  // The same port both times, so the URL is this gateway's own address after the restart.
  const env = { MODELS_DIR, PORT: String(await freePort()), DEVICE_MEMORY: '2GiB' };
  const png = readFileSync(join(IMAGES_DIR, 'coffee.png')).toString('base64');
  const first = await startInProcessGateway(env);
  let url: string;
  let jobId: string;
  try {
    const encoded = await first.graphql('mutation($i: EncodeInput!) { encode(input: $i) { latent { url } } }', {
      i: { model: 'taef2', image: { base64: png }, delivery: 'URL' },
    });
    assert.equal(encoded.errors, undefined, JSON.stringify(encoded.errors));
    url = encoded.data.encode.latent.url;
    const submitted = await first.graphql('mutation($i: EncodeInput!) { submitEncode(input: $i) { id } }', {
      i: { model: 'taef2', image: { base64: png } },
    });
    jobId = submitted.data.submitEncode.id;
  } finally {
    await first.stop();
  }
  // Ids carry whole seconds: the next run starts in a later one.
  await new Promise((resolve) => setTimeout(resolve, 1010 - (Date.now() % 1000)));
  const second = await startInProcessGateway(env);
  try {
    const gone = await fetch(url);
    assert.equal(gone.status, 410);
    const body = (await gone.json()) as { code: string; reason: string; error: string };
    assert.equal(body.code, 'EXPIRED');
    assert.equal(body.reason, 'earlier-run');
    assert.match(body.error, /issued by an earlier run of this gateway, which kept it in memory only.*REDIS_URL/);

    const id = url.split('/').at(-1)!;
    const typo = url.replace(id, `${id.slice(0, 35)}${id[35] === '0' ? '1' : '0'}`);
    assert.equal((await fetch(typo)).status, 404);

    const decoded = await second.graphql('mutation($i: DecodeInput!) { decode(input: $i) { images { width } } }', {
      i: { model: 'taef2', latent: { url } },
    });
    assert.equal(decoded.errors?.[0].extensions?.code, 'EXPIRED', JSON.stringify(decoded.errors));
    assert.equal(decoded.errors?.[0].extensions?.reason, 'earlier-run');

    const job = await second.graphql('query($id: ID!) { job(id: $id) { status } }', { id: jobId });
    assert.equal(job.errors?.[0].extensions?.code, 'EXPIRED', JSON.stringify(job.errors));
    assert.equal(job.errors?.[0].extensions?.reason, 'earlier-run');
    assert.match(job.errors![0].message, /job .* earlier run .* submit it again/);
  } finally {
    await second.stop();
  }
});
