/** Messages between the gateway and its onnxruntime worker thread. */
import type { ExecutionProvider } from './onnx-runtime.js';

export interface WorkerInit {
  provider: ExecutionProvider;
  intraOpThreads: number;
}

export type WorkerRequest =
  | { type: 'load'; id: number; key: string; model: Uint8Array }
  | { type: 'run'; id: number; key: string; inputName: string; outputName: string; data: Float32Array; dims: number[] }
  | { type: 'close'; id: number };

export type WorkerReply =
  | { id: number; ok: true; data?: Float32Array; dims?: number[] }
  | { id: number; ok: false; message: string };
