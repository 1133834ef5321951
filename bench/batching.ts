/**
 * Dynamic batching: 8 concurrent 256x256 taef2 encodes through GraphQL, against two gateways that
 * differ only in BATCH_WINDOW_MS (0 = off, 5 = the default), rounds interleaved in one run so both
 * see the same machine. Reports throughput (images/s over the rounds' wall time), p50/p95 request
 * latency, and the batch sizes the results reported.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { IMAGES_DIR, MODELS_DIR, percentile, startGateway } from './support.ts';

const QUERY = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { sha256 } route { route batch } } }';
const CONCURRENT = 8;
const SIZE = 256;

export async function batching(rounds = 6, windowMs = 5) {
  const source = join(IMAGES_DIR, 'astronaut-1024.png');
  const images = await Promise.all(
    Array.from({ length: CONCURRENT }, async (_, i) =>
      (
        await sharp(source)
          .removeAlpha()
          .extract({ left: (i % 4) * 256, top: Math.floor(i / 4) * 512 + 128, width: SIZE, height: SIZE })
          .png()
          .toBuffer()
      ).toString('base64'),
    ),
  );
  const dataDir = mkdtempSync(join(tmpdir(), 'latentgate-bench-'));
  const env = { MODELS_DIR, DATA_DIR: dataDir, DEVICE_MEMORY: '4GiB' };
  const modes = {
    off: await startGateway({ ...env, BATCH_WINDOW_MS: '0' }),
    on: await startGateway({ ...env, BATCH_WINDOW_MS: String(windowMs) }),
  };
  const stats = {
    off: { latencies: [] as number[], wall: 0, batches: [] as number[] },
    on: { latencies: [] as number[], wall: 0, batches: [] as number[] },
  };
  const round = async (mode: 'off' | 'on', record: boolean) => {
    const started = performance.now();
    await Promise.all(
      images.map(async (base64) => {
        const t = performance.now();
        const r = await modes[mode].graphql(QUERY, { input: { model: 'taef2', image: { base64 } } });
        if (r.errors) throw new Error(JSON.stringify(r.errors));
        if (record) {
          stats[mode].latencies.push((performance.now() - t) / 1000);
          stats[mode].batches.push(r.data.encode.route.batch);
        }
      }),
    );
    if (record) stats[mode].wall += (performance.now() - started) / 1000;
  };
  try {
    for (const mode of ['off', 'on'] as const) await round(mode, false); // sessions and arenas: not what we measure
    for (let i = 0; i < rounds; i++)
      for (const mode of i % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) await round(mode, true);
    const summary = (mode: 'off' | 'on') => ({
      imagesPerSecond: (rounds * CONCURRENT) / stats[mode].wall,
      p50Seconds: percentile(stats[mode].latencies, 50),
      p95Seconds: percentile(stats[mode].latencies, 95),
      runsPerRound: stats[mode].batches.reduce((s, b) => s + 1 / b, 0) / rounds,
    });
    const off = summary('off');
    const on = summary('on');
    return {
      benchmark: 'batching',
      model: 'taef2',
      size: `${SIZE}x${SIZE}`,
      concurrent: CONCURRENT,
      rounds,
      batchWindowMs: windowMs,
      off,
      on,
      throughputRatio: on.imagesPerSecond / off.imagesPerSecond,
    };
  } finally {
    await Promise.all([modes.off.stop(), modes.on.stop()]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
