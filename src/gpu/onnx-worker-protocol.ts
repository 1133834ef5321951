/** Messages between the gateway and its onnxruntime worker thread. */
import type { ExecutionProvider } from './onnx-runtime.js';

export interface WorkerInit {
  provider: ExecutionProvider;
  intraOpThreads: number;
}

export type WorkerRequest =
  | { type: 'load'; id: number; key: string; model: Uint8Array }
  | { type: 'run'; id: number; key: string; inputs: WireTensor[]; outputNames: string[] }
  | { type: 'close'; id: number };

export type WorkerReply = { id: number; ok: true; outputs?: WireTensor[] } | { id: number; ok: false; message: string };

/** A named float32 tensor as it crosses the thread boundary. */
export interface WireTensor {
  name: string;
  data: Float32Array;
  dims: number[];
}
