/** `npm run bench`: every benchmark, one JSON object per line. */
import { batching } from './batching.ts';
import { durableJobs } from './durable-jobs.ts';
import { gatewayOverhead } from './gateway-overhead.ts';
import { gpuExecutor } from './gpu-executor.ts';
import { img2imgBench } from './img2img.ts';
import { peakMemory, tiledPeakMemory } from './peak-memory.ts';
import { pilResize } from './pil-resize.ts';
import { tiling } from './tiling.ts';

const benchmarks: Record<string, () => Promise<unknown>> = {
  'gateway-overhead': () => gatewayOverhead(),
  batching: () => batching(),
  'durable-jobs': () => durableJobs(),
  'gpu-executor': () => gpuExecutor(),
  img2img: () => img2imgBench(),
  'peak-memory': () => peakMemory(),
  'tiled-peak-memory': () => tiledPeakMemory(),
  'pil-resize': () => pilResize(),
  tiling: () => tiling(),
};

const only = process.argv.slice(2);
for (const [name, run] of Object.entries(benchmarks)) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(JSON.stringify(await run()));
}
