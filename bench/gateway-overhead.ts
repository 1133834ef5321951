/**
 * The gateway's overhead on a 512x512 taef2 encode: the raw onnxruntime run alone, against the full
 * GraphQL request over HTTP (multipart upload, PNG decode, run, base64), interleaved in one run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { chooseProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import { toPlanarFloat } from '../src/imaging/images.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { graphqlUpload, IMAGES_DIR, MODELS_DIR, median, startGateway, timeRuns } from './support.ts';

const QUERY = 'mutation($input: EncodeInput!) { encode(input: $input) { latent { sha256 data } seconds } }';

export async function gatewayOverhead(rounds = 9) {
  const png = new Uint8Array(readFileSync(join(IMAGES_DIR, 'astronaut.png')));
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const input = toPlanarFloat({ pixels: data, width: info.width, height: info.height }, 'zero-one');
  const model = (await ModelRegistry.load(MODELS_DIR)).find('taef2')!;
  // Same thread count as the gateway gets by default, so both sides compete equally for the cores.
  const runtime = new OnnxRuntime(await chooseProvider('auto'), 0);
  const raw = () =>
    runtime.run('bench', model.encoder!.whole, 'x', 'y', { data: input, dims: [1, 3, info.height, info.width] });
  // No batching window: a lone request should not wait for company in this comparison.
  const gateway = await startGateway({ MODELS_DIR, BATCH_WINDOW_MS: '0' });
  const gatewayRunTimes: number[] = [];
  const request = async () => {
    const r = await graphqlUpload(
      gateway.url,
      QUERY,
      { input: { model: 'taef2', image: null } },
      'variables.input.image',
      png,
      'astronaut.png',
    );
    if (r.errors) throw new Error(JSON.stringify(r.errors));
    gatewayRunTimes.push(r.data.encode.seconds);
  };
  try {
    await raw();
    await request(); // warm both: session creation is not what we measure
    gatewayRunTimes.length = 0;
    const rawTimes: number[] = [];
    const gatewayTimes: number[] = [];
    for (let i = 0; i < rounds; i++) {
      rawTimes.push(...(await timeRuns(1, raw)));
      gatewayTimes.push(...(await timeRuns(1, request)));
    }
    const rawSeconds = median(rawTimes);
    const gatewaySeconds = median(gatewayTimes);
    // Per request: end-to-end minus the model run the gateway itself measured, i.e. the pure overhead.
    const overheads = gatewayTimes.map((t, i) => t - gatewayRunTimes[i]);
    return {
      benchmark: 'gateway-overhead',
      model: 'taef2',
      size: '512x512',
      rounds,
      rawOnnxSeconds: rawSeconds,
      graphqlRequestSeconds: gatewaySeconds,
      gatewayRunSeconds: median(gatewayRunTimes),
      ratio: gatewaySeconds / rawSeconds,
      overheadPercent: ((gatewaySeconds - rawSeconds) / rawSeconds) * 100,
      overheadSeconds: median(overheads),
      overheadPercentOfOwnRun: (median(overheads) / median(gatewayRunTimes)) * 100,
    };
  } finally {
    await gateway.stop();
    await runtime.close();
  }
}
