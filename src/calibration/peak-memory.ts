/**
 * Peak memory readings for calibration and for checking estimates against reality.
 *
 * CPU: the process's resident set. Linux keeps its high-water mark in /proc/self/status (VmHWM);
 * writing "5" to /proc/self/clear_refs resets that mark to the current RSS (Linux >= 4.0), so one
 * process can measure the peak of one piece of work: reset, note RSS, work, read VmHWM. Where the
 * reset is not allowed the mark cannot go down, so a fresh process per measurement is needed
 * (`latentgate calibrate` uses one per size anyway) and the reading is an upper bound.
 *
 * GPU: device memory would come from the CUDA runtime or NVML (peak allocated bytes of the
 * device). onnxruntime-node exposes neither, so `probeFor('cuda')` throws; that is the seam to
 * fill when the gateway runs on CUDA (e.g. poll nvidia-smi / NVML for this process's usage).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ExecutionProvider } from '../gpu/onnx-runtime.js';

export interface PeakMemoryProbe {
  /** What is measured, for reports: `process-rss` or `device`. */
  readonly kind: 'process-rss' | 'device';
  /** Starts a measurement; returns the baseline in bytes. */
  start(): number;
  /** Peak bytes above the baseline since `start()`. */
  peakSinceStart(): number;
  /** True when the high-water mark could be reset (so the peak is exact, not an upper bound). */
  readonly exact: boolean;
}

function statusBytes(field: 'VmHWM' | 'VmRSS'): number {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  if (!line) throw new Error(`/proc/self/status has no ${field}`);
  const kib = Number.parseInt(line.slice(field.length + 1).trim(), 10);
  if (!Number.isFinite(kib)) throw new Error(`/proc/self/status: cannot read ${field} from "${line}"`);
  return kib * 1024;
}

/** Resident-memory probe of this process (Linux). */
export function processRssProbe(): PeakMemoryProbe {
  let baseline = 0;
  let exact = false;
  return {
    kind: 'process-rss',
    get exact() {
      return exact;
    },
    start() {
      try {
        writeFileSync('/proc/self/clear_refs', '5');
        exact = true;
      } catch {
        exact = false;
      }
      // Without the reset, VmHWM may already be above the current RSS: measuring from the RSS
      // then over-states the peak (safe for "stays within" checks, and calibration gets fresh
      // processes).
      baseline = statusBytes('VmRSS');
      return baseline;
    },
    peakSinceStart() {
      return Math.max(0, statusBytes('VmHWM') - baseline);
    },
  };
}

/** The probe for the device a run uses. */
export function probeFor(provider: ExecutionProvider): PeakMemoryProbe {
  if (provider === 'cpu') {
    if (process.platform !== 'linux')
      throw new Error(`measuring peak memory needs Linux's /proc/self/status; this is ${process.platform}`);
    return processRssProbe();
  }
  throw new Error(
    'measuring peak CUDA device memory is not implemented (onnxruntime-node does not report it; ' +
      'the seam is probeFor in src/calibration/peak-memory.ts). ' +
      'Run with EXECUTION_PROVIDER=cpu to calibrate the CPU device.',
  );
}
