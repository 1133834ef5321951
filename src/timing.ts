/**
 * Where a request's time goes, part by part (`npm run bench -- gateway-overhead` listens). The
 * request path reports each part on a diagnostics channel; with no subscriber (the gateway never
 * subscribes) a part costs one `hasSubscribers` check and nothing is measured.
 */
import { channel } from 'node:diagnostics_channel';

export type Part =
  | 'imageDecode'
  | 'pixelConversion'
  | 'toWorker'
  | 'run'
  | 'fromWorker'
  | 'scaling'
  | 'dtypeEncoding'
  | 'sha256'
  | 'answer';

export interface PartTiming {
  part: Part;
  wallMs: number;
  /** CPU time of the whole process (every thread) over the part. */
  cpuMs: number;
}

export const partTimings = channel('latentgate:part');

/** A moment on clocks every thread of the process shares: wall (ms since the epoch) and process CPU time (ms). */
export interface Stamp {
  wallMs: number;
  cpuMs: number;
}

export function stamp(): Stamp {
  const cpu = process.cpuUsage();
  return { wallMs: performance.timeOrigin + performance.now(), cpuMs: (cpu.user + cpu.system) / 1000 };
}

export function timingParts(): boolean {
  return partTimings.hasSubscribers;
}

export function reportPart(part: Part, from: Stamp, to: Stamp = stamp()): void {
  partTimings.publish({ part, wallMs: to.wallMs - from.wallMs, cpuMs: to.cpuMs - from.cpuMs } satisfies PartTiming);
}

export function timed<T>(part: Part, work: () => T): T {
  if (!partTimings.hasSubscribers) return work();
  const from = stamp();
  const result = work();
  reportPart(part, from);
  return result;
}

export async function timedAsync<T>(part: Part, work: () => Promise<T>): Promise<T> {
  if (!partTimings.hasSubscribers) return work();
  const from = stamp();
  const result = await work();
  reportPart(part, from);
  return result;
}
