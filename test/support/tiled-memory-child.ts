/**
 * Child process for test/tiling.test.ts: plans and runs one encode of a synthetic SIZE x SIZE
 * image (astronaut-1024.png resized with sharp) through the router on a CPU device of BUDGET
 * (minus the default 256 MiB headroom), and prints one JSON line: the plan, and the process's
 * peak resident memory growth over the run (VmHWM after minus RSS before; the high-water mark is
 * reset first, see src/routing/peak-memory.ts). The baseline is taken after the 8-bit image is
 * decoded and the runtime is up, and before the float input tensor exists, so the measured peak covers what the
 * estimate covers: the input tensor, the sessions (created lazily in the run), every tile, the
 * latent-resolution stage and the accumulators.
 *
 * usage: node --import tsx test/support/tiled-memory-child.ts MODEL SIZE BUDGET
 */
import { join } from 'node:path';
import sharp from 'sharp';
import { bootRuntime } from '../../src/calibration/calibrate.ts';
import { processRssProbe } from '../../src/calibration/peak-memory.ts';
import { parseBytes } from '../../src/config/units.ts';
import { LocalExecutor } from '../../src/gpu/local-executor.ts';
import { chooseProvider, OnnxRuntime } from '../../src/gpu/onnx-runtime.ts';
import { ModelRegistry } from '../../src/models/registry.ts';
import { LocalRunner, Router } from '../../src/routing/index.ts';
import { CapacityLedger } from '../../src/routing/ledger.ts';
import { ProfileSource } from '../../src/routing/profile-source.ts';
import { RunStats } from '../../src/routing/run-stats.ts';
import { rgbToPlanar } from '../../src/tensors/pixel-range.ts';
import { IMAGES_DIR, MODELS_DIR } from './paths.ts';

const [modelId, sizeText, budgetText] = process.argv.slice(2);
const size = Number(sizeText);
const budget = parseBytes(budgetText);
if (!modelId || !Number.isInteger(size) || budget === null)
  throw new Error('usage: tiled-memory-child.ts MODEL SIZE BUDGET');

const model = (await ModelRegistry.load(MODELS_DIR)).find(modelId);
if (!model) throw new Error(`no model ${modelId} in ${MODELS_DIR}`);
const { data: rgb, info } = await sharp(join(IMAGES_DIR, 'astronaut-1024.png'))
  .removeAlpha()
  .resize(size, size, { kernel: 'lanczos3' })
  .raw()
  .toBuffer({ resolveWithObject: true });
sharp.cache(false);

// Resident memory is what is measured, so the run must be on the CPU.
const runtime = new OnnxRuntime(await chooseProvider('cpu'), 0);
const ledger = new CapacityLedger({
  budgetBytes: budget,
  headroomBytes: 256 * 2 ** 20,
  maxQueueLength: 4,
  name: 'local:cpu',
});
const router = new Router(new ProfileSource(null), new LocalRunner(new LocalExecutor(runtime), ledger, new RunStats()));
const plan = router.plan(model, 'encode', size, size, 1);
// The runtime's worker thread and onnxruntime itself belong to the process, not to the run.
await bootRuntime(runtime);

const probe = processRssProbe();
const baselineBytes = probe.start();
let steps = 0;
const input = {
  data: rgbToPlanar(rgb, info.width, info.height, model.family.inputRange),
  dims: [1, 3, size, size] as [number, number, number, number],
};
const { output, seconds } = await router.run(model, plan, input, { onProgress: (done) => (steps = done) });
const peakBytes = probe.peakSinceStart();

let min = Infinity;
let max = -Infinity;
let finite = true;
for (const v of output.data) {
  if (!Number.isFinite(v)) finite = false;
  if (v < min) min = v;
  if (v > max) max = v;
}
console.log(
  JSON.stringify({
    plan,
    baselineBytes,
    peakBytes,
    exact: probe.exact,
    seconds,
    steps,
    dims: output.dims,
    min,
    max,
    finite,
  }),
);
await runtime.close();
