/**
 * The gateway's overhead on a 512x512 taef2 encode: the bare onnxruntime run (a session with the
 * gateway's options, run on this thread, no worker) against the full GraphQL request over HTTP
 * (multipart upload, PNG decode, conversion, worker run, base64 answer), alternating in one process
 * (the order swaps every round, so drift hits both sides alike). The gateway runs in this process
 * so that the request path's parts (src/timing.ts) can be heard; `other` is what no part covers:
 * HTTP, multipart parsing, GraphQL execution and serialisation, and the client's side. Requests are
 * sent by a lean node:http client (bench/http-client.ts); the same request through undici's fetch
 * is timed too (`fetchRequest`), for what a heavier client adds.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadConfig } from '../src/config/config.ts';
import { sessionOptions } from '../src/gpu/onnx-session-options.ts';
import { createHttpServer, listen } from '../src/server/http.ts';
import { createServices } from '../src/server/services.ts';
import { rgbToPlanar } from '../src/tensors/pixel-range.ts';
import { type Part, type PartTiming, partTimings } from '../src/timing.ts';
import { leanClient } from './http-client.ts';
import { graphqlUpload, IMAGES_DIR, MODELS_DIR, median } from './support.ts';

const QUERY = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { sha256 data } seconds } }';

interface Sample {
  wallMs: number;
  cpuMs: number;
}

async function measure(work: () => Promise<unknown>): Promise<Sample> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await work();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const medians = (samples: Sample[]) => ({
  wallMs: round3(median(samples.map((s) => s.wallMs))),
  cpuMs: round3(median(samples.map((s) => s.cpuMs))),
});

export async function gatewayOverhead(rounds = 15) {
  const png = new Uint8Array(readFileSync(join(IMAGES_DIR, 'astronaut.png')));
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const input = rgbToPlanar(data, info.width, info.height, 'zero-one');
  const dims = [1, 3, info.height, info.width];
  // No batching window: a lone request should not wait for company in this comparison.
  const config = loadConfig({ MODELS_DIR, BATCH_WINDOW_MS: '0', HOST: '127.0.0.1', PORT: '0' });
  const services = await createServices(config);
  const server = createHttpServer(services);
  await listen(server, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const model = services.registry.require('taef2', 'encode');
  const network = model.encoder!;
  // The gateway's own session options and thread count, so both sides compete equally for the cores.
  const options = sessionOptions({ provider: services.runtime.choice.provider, intraOpThreads: config.intraOpThreads });
  const session = () =>
    typeof network.whole === 'string'
      ? ort.InferenceSession.create(network.whole, options)
      : ort.InferenceSession.create(network.whole, options);
  const bare = await session();
  // A second session of the same graph and options, measured the same way: how far two identical bare runs
  // differ is the floor under any ratio this benchmark can resolve (measured: 360 vs 375 ms at 512² on 2 cores).
  const twin = await session();
  const bareRun = () => bare.run({ [network.inputName]: new ort.Tensor('float32', input, dims) });
  const twinRun = () => twin.run({ [network.inputName]: new ort.Tensor('float32', input, dims) });
  const client = leanClient(url);
  const variables = { input: { model: 'taef2', image: { upload: null } } };
  const path = 'variables.input.image.upload';
  const request = async () => {
    const r = await client.upload(QUERY, variables, path, png, 'astronaut.png');
    if (r.errors) throw new Error(JSON.stringify(r.errors));
  };
  const fetchRequest = async () => {
    const r = await graphqlUpload(url, QUERY, variables, path, png, 'astronaut.png');
    if (r.errors) throw new Error(JSON.stringify(r.errors));
  };
  let heard: PartTiming[] = [];
  const onPart = (message: unknown) => heard.push(message as PartTiming);
  subscribe(partTimings.name, onPart);
  try {
    await bareRun();
    await twinRun();
    await request(); // warm all: session creation is not what we measure
    await fetchRequest();
    const bareSamples: Sample[] = [];
    const twinSamples: Sample[] = [];
    const requestSamples: Sample[] = [];
    const fetchSamples: Sample[] = [];
    /** Each request's wall time over its own worker run: the overhead without the luck of which session is faster. */
    const selfRatios: number[] = [];
    const partSamples = new Map<Part | 'other', Sample[]>();
    const measureRequest = async () => {
      heard = [];
      const total = await measure(request);
      requestSamples.push(total);
      const sums = new Map<Part | 'other', Sample>();
      for (const { part, wallMs, cpuMs } of heard) {
        const sum = sums.get(part) ?? { wallMs: 0, cpuMs: 0 };
        sums.set(part, { wallMs: sum.wallMs + wallMs, cpuMs: sum.cpuMs + cpuMs });
      }
      const covered = [...sums.values()].reduce((a, s) => ({ wallMs: a.wallMs + s.wallMs, cpuMs: a.cpuMs + s.cpuMs }), {
        wallMs: 0,
        cpuMs: 0,
      });
      sums.set('other', { wallMs: total.wallMs - covered.wallMs, cpuMs: total.cpuMs - covered.cpuMs });
      const run = sums.get('run');
      if (run) selfRatios.push(total.wallMs / run.wallMs);
      for (const [part, sample] of sums) partSamples.set(part, [...(partSamples.get(part) ?? []), sample]);
    };
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        bareSamples.push(await measure(bareRun));
        twinSamples.push(await measure(twinRun));
        await measureRequest();
        fetchSamples.push(await measure(fetchRequest));
      } else {
        fetchSamples.push(await measure(fetchRequest));
        await measureRequest();
        twinSamples.push(await measure(twinRun));
        bareSamples.push(await measure(bareRun));
      }
    }
    const bareMedian = medians(bareSamples);
    const requestMedian = medians(requestSamples);
    return {
      benchmark: 'gateway-overhead',
      model: 'taef2',
      size: `${info.width}x${info.height}`,
      provider: services.runtime.choice.provider,
      rounds,
      bare: bareMedian,
      request: requestMedian,
      ratio: round3(requestMedian.wallMs / bareMedian.wallMs),
      /** Median of each round's request / bare: steadier than the ratio of medians on a busy machine. */
      pairedRatio: round3(median(requestSamples.map((r, i) => r.wallMs / bareSamples[i].wallMs))),
      cpuRatio: round3(requestMedian.cpuMs / bareMedian.cpuMs),
      /** Median of each request's wall time over its own worker run (the `run` part). */
      selfRatio: round3(median(selfRatios)),
      /** The same graph in a second bare session against the first: the noise floor under `ratio`. */
      twin: medians(twinSamples),
      twinRatio: round3(medians(twinSamples).wallMs / bareMedian.wallMs),
      /** The same request sent with undici's fetch and FormData instead of the lean client. */
      fetchRequest: medians(fetchSamples),
      fetchRatio: round3(medians(fetchSamples).wallMs / bareMedian.wallMs),
      /** Median of each round's request - bare. */
      overhead: {
        wallMs: round3(median(requestSamples.map((r, i) => r.wallMs - bareSamples[i].wallMs))),
        cpuMs: round3(median(requestSamples.map((r, i) => r.cpuMs - bareSamples[i].cpuMs))),
      },
      parts: Object.fromEntries([...partSamples].map(([part, samples]) => [part, medians(samples)])),
    };
  } finally {
    unsubscribe(partTimings.name, onPart);
    client.close();
    await bare.release();
    await twin.release();
    server.close();
    server.closeAllConnections();
    await services.close();
  }
}
