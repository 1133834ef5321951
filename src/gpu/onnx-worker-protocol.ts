/** Messages between the gateway and its onnxruntime worker thread. */
import type { Stamp } from '../timing.js';
import type { ExecutionProvider } from './onnx-runtime.js';

export interface WorkerInit {
  provider: ExecutionProvider;
  intraOpThreads: number;
}

export type WorkerRequest =
  | { type: 'load'; id: number; key: string; model: Uint8Array }
  /** `timed`: stamp when the run arrived and finished (src/timing.ts is listening). */
  | { type: 'run'; id: number; key: string; inputs: WireTensor[]; outputNames: string[]; timed: boolean }
  | { type: 'close'; id: number };

export type WorkerReply =
  | { id: number; ok: true; outputs?: WireTensor[]; stamps?: { received: Stamp; finished: Stamp } }
  | { id: number; ok: false; message: string };

/** A named float32 tensor as it crosses the thread boundary. */
export interface WireTensor {
  name: string;
  data: Float32Array;
  dims: number[];
}
