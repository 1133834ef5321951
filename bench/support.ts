/** Shared pieces of the benchmarks: timing, percentiles, a gateway child process. */

export { IMAGES_DIR, MODELS_DIR } from '../test/support/paths.ts';
export { graphqlUpload, startGateway } from '../test/support/server.ts';

export async function timeRuns(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await fn();
    seconds.push((performance.now() - start) / 1000);
  }
  return seconds;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function median(values: number[]): number {
  return percentile(values, 50);
}
