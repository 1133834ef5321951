/** `npm run bench`: every benchmark, one JSON object per line. */
import { gatewayOverhead } from './gateway-overhead.ts';

const benchmarks: Record<string, () => Promise<unknown>> = {
  'gateway-overhead': () => gatewayOverhead(),
};

const only = process.argv.slice(2);
for (const [name, run] of Object.entries(benchmarks)) {
  if (only.length > 0 && !only.includes(name)) continue;
  console.log(JSON.stringify(await run()));
}
