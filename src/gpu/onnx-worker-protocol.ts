/** Messages between the gateway and its onnxruntime worker thread. */
import type { Stamp } from '../timing.js';
import type { ExecutionProvider } from './onnx-runtime.js';
import type { TensorType } from './tensor.js';

export interface WorkerInit {
  provider: ExecutionProvider;
  intraOpThreads: number;
}

export type WorkerRequest =
  /** `model`: the graph's bytes, or a file path (then weights in `model.onnx_data` beside it load too). */
  | { type: 'load'; id: number; key: string; model: Uint8Array | string }
  | { type: 'describe'; id: number; key: string }
  /** `timed`: stamp when the run arrived and finished (src/timing.ts is listening). */
  | { type: 'run'; id: number; key: string; inputs: WireInput[]; outputNames: string[]; timed: boolean }
  /** The main thread's array of these resident inputs is gone: free them (no reply). */
  | { type: 'drop'; residents: number[] }
  | { type: 'close'; id: number };

export type WorkerReply =
  | {
      id: number;
      ok: true;
      outputs?: WireTensor[];
      stamps?: { received: Stamp; finished: Stamp };
      signature?: NetworkSignature;
    }
  | { id: number; ok: false; message: string };

/** A named tensor as it crosses the thread boundary (`type` absent: float32). */
export interface WireTensor {
  name: string;
  data: Float32Array | Uint16Array | BigInt64Array | Int32Array;
  dims: number[];
  type?: TensorType;
}

/**
 * A run's input: a tensor (with `keep`: also kept in the worker under that handle), or the handle of
 * one kept earlier (`resident`).
 */
export type WireInput = (WireTensor & { keep?: number }) | { name: string; resident: number };

/** One input or output as the session declares it: element type and shape (a string for a symbolic dim). */
export interface ValueSignature {
  name: string;
  /** onnxruntime's type name ('float32', 'int64', 'float16', ...). */
  type: string;
  shape: (number | string)[];
}

export interface NetworkSignature {
  inputs: ValueSignature[];
  outputs: ValueSignature[];
}
