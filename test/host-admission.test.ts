/**
 * Host memory admission (HOST_MEMORY, src/routing/host-ledger.ts) and retryAfterSeconds, on the
 * ledger alone and through a real gateway (taef2 on the CPU, loopback).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import sharp from 'sharp';
import { hostMemoryDefault, loadConfig } from '../src/config/config.ts';
import type { GatewayError } from '../src/errors.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { admitImg2Img, encodeHostBytes } from '../src/pipeline/host-bytes.ts';
import { estimatePeakBytes } from '../src/routing/estimator.ts';
import { HostLedger } from '../src/routing/host-ledger.ts';
import { ProfileSource } from '../src/routing/profile-source.ts';
import { type InProcessGateway, startInProcessGateway } from './support/in-process.ts';
import { MODELS_DIR } from './support/paths.ts';

const MiB = 2 ** 20;
const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-host-'));
after(() => rmSync(dataDir, { recursive: true, force: true }));

function busy(fn: () => unknown): number {
  try {
    fn();
  } catch (error) {
    assert.equal((error as GatewayError).code, 'BUSY');
    return (error as GatewayError).details.retryAfterSeconds as number;
  }
  assert.fail('expected BUSY');
}

test('host ledger: bases plus the largest pending work stay within the budget; work runs FIFO', async () => {
  let nowMs = 0;
  const host = new HostLedger(100, () => nowMs);
  const a = host.admit({ baseBytes: 10, workBytes: 50, workSeconds: 4, label: 'a' });
  const b = host.admit({ baseBytes: 10, workBytes: 50, workSeconds: 2, label: 'b' });
  // 20 held in bases + c's 80 of work would leave no room for its own base: refused.
  const retry = busy(() => host.admit({ baseBytes: 10, workBytes: 80, workSeconds: 1, label: 'c' }));
  // a runs 4 s and answers; then b runs (it could not beside a: 10+10+50+50 > 100) and c's base and
  // pending work fit beside it: 10+10+80 = 100. So c is taken after a's 4 s.
  let releaseA!: () => void;
  const ranA = a.work(() => new Promise<void>((r) => (releaseA = r)));
  assert.equal(host.snapshot().heldBytes, 70);
  let bStarted = false;
  const ranB = b.work(async () => {
    bStarted = true;
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(bStarted, false, 'b waits for a (FIFO, by bytes)');
  assert.equal(retry, 4);
  nowMs = 1000;
  releaseA();
  await ranA;
  a.release();
  await ranB;
  b.release();
  assert.equal(host.snapshot().heldBytes, 0);
  host.admit({ baseBytes: 10, workBytes: 80, workSeconds: 1, label: 'c' }).release();
  // Larger than the whole budget: DOES_NOT_FIT, naming HOST_MEMORY.
  assert.throws(
    () => host.admit({ baseBytes: 60, workBytes: 60, workSeconds: 1, label: 'd' }),
    (e: GatewayError) => e.code === 'DOES_NOT_FIT' && /HOST_MEMORY/.test(e.message),
  );
  // Kept results count until their expiry, which the retry estimate uses.
  const kept = host.admit({ baseBytes: 90, workBytes: 0, workSeconds: 0, label: 'kept' });
  await kept.work(async () => {});
  kept.keep(90, 30);
  assert.equal(
    busy(() => host.admit({ baseBytes: 20, workBytes: 0, workSeconds: 0, label: 'e' })),
    30,
  );
  kept.release();
});

const rssMiB = () => process.memoryUsage().rss / MiB;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('through the gateway', () => {
  let gateway: InProcessGateway;
  const HOST_MEMORY = 160 * MiB;
  const DEVICE_MEMORY = 1024 * MiB;
  /** Process memory besides both budgets: models, code, the test's own buffers. */
  const BASELINE = 256 * MiB;

  test('100 submitEncode of a black 2048x2048 PNG: accepted ones fit HOST_MEMORY, the rest BUSY', async () => {
    gateway = await startInProcessGateway({
      MODELS_DIR,
      DATA_DIR: dataDir,
      HOST_MEMORY: String(HOST_MEMORY),
      DEVICE_MEMORY: String(DEVICE_MEMORY),
      DEVICE_HEADROOM: '0',
      BATCH_WINDOW_MS: '0',
    });
    const png = await sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    await settle();
    const before = rssMiB();
    let peakHeld = 0;
    let peakRss = before;
    const sampler = setInterval(() => {
      peakHeld = Math.max(peakHeld, gateway.services.host.snapshot().heldBytes);
      peakRss = Math.max(peakRss, rssMiB());
    }, 5);
    const query = 'mutation($i: EncodeInput!) { submitEncode(input: $i) { id } }';
    const answers = await Promise.all(
      Array.from({ length: 100 }, () =>
        gateway.graphql(query, { i: { model: 'taef2', image: { base64: png.toString('base64') } } }),
      ),
    );
    const accepted = answers.filter((a) => a.data?.submitEncode).map((a) => a.data.submitEncode.id as string);
    const refused = answers.filter((a) => a.errors);
    assert.ok(accepted.length >= 1 && refused.length >= 1, `accepted ${accepted.length}, refused ${refused.length}`);
    assert.equal(accepted.length + refused.length, 100);
    for (const r of refused) {
      assert.equal(r.errors![0].extensions?.code, 'BUSY', JSON.stringify(r.errors));
      const s = r.errors![0].extensions?.retryAfterSeconds;
      assert.ok(Number.isFinite(s) && s >= 1 && s < 3600, `retryAfterSeconds ${s}`);
    }
    // Their runs would take long on a small CPU: cancelled once the first has started decoding.
    await new Promise((r) => setTimeout(r, 1000));
    for (const id of accepted) await gateway.graphql('mutation($id: ID!) { cancelJob(id: $id) { id } }', { id });
    for (const id of accepted) {
      for (;;) {
        const j = await gateway.graphql('query($id: ID!) { job(id: $id) { status } }', { id });
        if (['DONE', 'CANCELLED'].includes(j.data?.job.status)) break;
        assert.notEqual(j.data?.job.status, 'FAILED');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(gateway.services.host.snapshot().heldBytes, 0, 'cancelled jobs hold nothing');
    clearInterval(sampler);
    assert.ok(peakHeld <= HOST_MEMORY, `held ${peakHeld} > ${HOST_MEMORY}`);
    const grew = peakRss - before;
    assert.ok(grew * MiB <= HOST_MEMORY + DEVICE_MEMORY + BASELINE, `RSS grew ${grew.toFixed(0)} MiB`);
    console.log(
      `accepted ${accepted.length}/100; peak host held ${(peakHeld / MiB).toFixed(1)} MiB; RSS +${grew.toFixed(0)} MiB`,
    );
  });

  test('a tiny 65536x8 PNG is counted from its header and leaves no lasting RSS rise', async () => {
    const png = await sharp({ create: { width: 65536, height: 8, channels: 3, background: '#000' } })
      .png({ compressionLevel: 9 })
      .toBuffer();
    const encode = () =>
      gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { width height } }', {
        i: { model: 'taef2', image: { base64: png.toString('base64') } },
      });
    // The encoder's session is loaded (by an ordinary image) before RSS is measured.
    const small = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    await gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { width } }', {
      i: { model: 'taef2', image: { base64: small.toString('base64') } },
    });
    await settle();
    const before = rssMiB();
    for (let i = 0; i < 2; i++) {
      const r = await encode();
      assert.equal(r.data?.encode.width, 65536, JSON.stringify(r));
    }
    await settle();
    const rise = rssMiB() - before;
    console.log(`65536x8 (${png.length} bytes): RSS ${rise >= 0 ? '+' : ''}${rise.toFixed(0)} MiB after 2 encodes`);
    assert.ok(rise < 64, `RSS rose ${rise.toFixed(0)} MiB and stayed`);
    assert.equal(gateway.services.host.snapshot().heldBytes >= 0, true);
    await gateway.stop();
  });
});

test('BUSY retryAfterSeconds is within a small factor of the measured wait for a queue slot', async () => {
  const size = 512;
  const QUEUE = 4;
  // The device takes one 512² taef2 encode at a time, whole (no room for tiles beside a running one).
  const registry = await ModelRegistry.load(MODELS_DIR);
  const profiles = new ProfileSource(null).forModel('taef2', registry.find('taef2')!.family)!;
  const whole = estimatePeakBytes(profiles, {
    operation: 'encode',
    width: size,
    height: size,
    batch: 1,
    dtype: 'float32',
  }).bytes;
  const gateway = await startInProcessGateway({
    MODELS_DIR,
    DATA_DIR: dataDir,
    DEVICE_MEMORY: String(whole + MiB),
    DEVICE_HEADROOM: '0',
    BATCH_WINDOW_MS: '0',
    MAX_QUEUE_LENGTH: String(QUEUE),
    // One thread: a run long enough (about a second) for whole-second Retry-After values to mean something.
    INTRA_OP_THREADS: '1',
  });
  try {
    const png = await sharp({ create: { width: size, height: size, channels: 3, background: '#345' } })
      .png()
      .toBuffer();
    const encode = () =>
      gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { seconds route { route expectedSeconds } } }', {
        i: { model: 'taef2', image: { base64: png.toString('base64') } },
      });
    // Two runs measure the run time the estimate uses.
    const warm = [await encode(), await encode()];
    for (const w of warm) assert.equal(w.data?.encode.route.route, 'LOCAL', JSON.stringify(w));
    const ledger = gateway.services.ledger;
    const until = async (ok: () => boolean) => {
      while (!ok()) await new Promise((r) => setTimeout(r, 5));
    };
    // One running, four queued: the queue is full. Each answer's route says when it was expected back.
    const timed = () => {
      const sent = performance.now();
      return encode().then((answer) => ({ answer, latency: (performance.now() - sent) / 1000 }));
    };
    const held = [timed()];
    await until(() => ledger.snapshot().running === 1);
    for (let queued = 1; queued <= QUEUE; queued++) {
      held.push(timed());
      await until(() => ledger.snapshot().queued === queued);
    }
    const refused = await encode();
    const start = performance.now();
    assert.equal(refused.errors?.[0].extensions?.code, 'BUSY', JSON.stringify(refused));
    const retryAfter = refused.errors![0].extensions!.retryAfterSeconds as number;
    // Retried every 20 ms, as a client would: how long until the gateway takes it (a BUSY answer comes
    // back at once; a request it takes is still waiting or running 100 ms later).
    let measured = 0;
    for (;;) {
      const sent = performance.now();
      const again = timed();
      const first = await Promise.race([again, new Promise<null>((r) => setTimeout(() => r(null), 100))]);
      if (first === null || !first.answer.errors) {
        measured = (sent - start) / 1000;
        held.push(again);
        break;
      }
      assert.equal(first.answer.errors[0].extensions?.code, 'BUSY');
      await new Promise((r) => setTimeout(r, 20));
    }
    const results = await Promise.all(held);
    for (const r of results) assert.equal(r.answer.errors, undefined, JSON.stringify(r.answer.errors));
    console.log(`retryAfterSeconds ${retryAfter}; measured wait for a queue slot ${measured.toFixed(2)} s`);
    // The last of the queue was expected back after the four runs ahead and its own (queue wait counted
    // once per run ahead, not compounded): within a small factor of how long it took.
    const last = results[QUEUE];
    const expected = last.answer.data.encode.route.expectedSeconds as number;
    console.log(`queue tail: expected ${expected.toFixed(2)} s, took ${last.latency.toFixed(2)} s`);
    assert.ok(expected <= 2 * last.latency && expected >= last.latency / 2, `${expected} vs ${last.latency}`);
    assert.ok(retryAfter >= 1 && retryAfter <= Math.max(1, 3 * measured) + 1, `${retryAfter} vs ${measured}`);
    assert.ok(retryAfter >= measured / 3, `${retryAfter} vs ${measured}`);
  } finally {
    await gateway.stop();
  }
});

test('a request larger than HOST_MEMORY by itself: DOES_NOT_FIT naming it, on GraphQL and Hybrid Inference', async () => {
  const gateway = await startInProcessGateway({ MODELS_DIR, DATA_DIR: dataDir, HOST_MEMORY: '8MiB' });
  try {
    const png = await sharp({ create: { width: 1024, height: 1024, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const graphql = await gateway.graphql('mutation($i: EncodeInput!) { encode(input: $i) { width } }', {
      i: { model: 'taef2', image: { base64: png.toString('base64') } },
    });
    assert.equal(graphql.errors?.[0].extensions?.code, 'DOES_NOT_FIT', JSON.stringify(graphql.errors));
    assert.match(graphql.errors![0].message, /HOST_MEMORY is 8\.0 MiB/);
    const hybrid = await fetch(`${gateway.url}/v1/vae/taef2/encode`, { method: 'POST', body: png });
    const answer = await hybrid.json();
    assert.equal(answer.code, 'DOES_NOT_FIT', JSON.stringify(answer));
    assert.equal(answer.limit, 'HOST_MEMORY');
    assert.equal(gateway.services.host.snapshot().heldBytes, 0);
  } finally {
    await gateway.stop();
  }
});

test('host bytes come from the header: a 2048² PNG of a few KB counts its decoded pixels and tensors', async () => {
  const registry = await ModelRegistry.load(MODELS_DIR);
  const model = registry.require('taef2', 'encode');
  const config = loadConfig({ ...process.env, MODELS_DIR, DATA_DIR: dataDir });
  const png = await sharp({ create: { width: 2048, height: 2048, channels: 3, background: '#000' } })
    .png()
    .toBuffer();
  const inline = await encodeHostBytes({ config }, model, png, 'float32', 'BASE64');
  const byUrl = await encodeHostBytes({ config }, model, png, 'float32', 'URL');
  assert.ok(png.length < 64 * 1024);
  // RGB bytes twice over (libvips' and ours, the upright copy) and the float32 input at least.
  assert.ok(inline.workBytes >= 2048 * 2048 * 3 * (3 + 4), `${inline.workBytes}`);
  assert.equal(byUrl.baseBytes, png.length);
  assert.ok(inline.baseBytes > png.length, 'an inline answer is held until delivered');
  // img2img adds the denoising latents, prompt embeddings and the decoded result to the init image's.
  const host = new HostLedger(2 ** 40);
  const admission = await admitImg2Img(
    { config, host },
    model,
    { image: png, delivery: 'BASE64', returnLatent: false, dtype: 'float32' },
    3,
  );
  assert.ok(host.snapshot().heldBytes > png.length);
  assert.ok(admission.entry.work > inline.workBytes + 2048 * 2048 * 3 * 4);
  admission.release();
  assert.equal(host.snapshot().heldBytes, 0);
});

test('HOST_MEMORY: a byte size; by default a quarter of the machine less 512 MiB, at least 256 MiB', () => {
  assert.equal(hostMemoryDefault(16 * 2 ** 30), 4 * 2 ** 30 - 512 * MiB);
  assert.equal(hostMemoryDefault(1 * 2 ** 30), 256 * MiB);
  assert.equal(loadConfig({ HOST_MEMORY: '1GiB' }).hostMemoryBytes, 2 ** 30);
  assert.equal(loadConfig({}).hostMemoryBytes, hostMemoryDefault());
  assert.throws(() => loadConfig({ HOST_MEMORY: 'lots' }), /HOST_MEMORY/);
});
