/**
 * How much memory the local device has. On CUDA and WebGPU it is the card's own memory, read with
 * nvidia-smi (onnxruntime-node exposes no device query; a WebGPU adapter that is not an NVIDIA card
 * gets no answer there); on CPU, or when that read fails, the configured DEVICE_MEMORY, with the
 * reason saying which.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ExecutionProvider } from './onnx-runtime.js';

export interface DeviceMemory {
  bytes: number;
  source: string;
}

/** Parses `nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits` (MiB, one line per GPU). */
export function parseNvidiaSmiTotal(output: string, deviceIndex = 0): number | null {
  const line = output.trim().split('\n')[deviceIndex];
  const mib = Number(line?.trim());
  return Number.isFinite(mib) && mib > 0 ? mib * 2 ** 20 : null;
}

export async function deviceMemory(provider: ExecutionProvider, configuredBytes: number): Promise<DeviceMemory> {
  if (provider === 'cpu') return { bytes: configuredBytes, source: 'DEVICE_MEMORY (CPU)' };
  try {
    const { stdout } = await promisify(execFile)(
      'nvidia-smi',
      ['--query-gpu=memory.total', '--format=csv,noheader,nounits'],
      { timeout: 5000 },
    );
    const bytes = parseNvidiaSmiTotal(stdout);
    if (bytes !== null) return { bytes, source: `${provider === 'cuda' ? 'CUDA' : 'WebGPU'} device 0 (nvidia-smi)` };
  } catch {
    // fall through to the configured budget
  }
  return { bytes: configuredBytes, source: 'DEVICE_MEMORY (nvidia-smi did not answer)' };
}
