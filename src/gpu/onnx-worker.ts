/**
 * The worker thread that owns onnxruntime sessions. onnxruntime-node runs inference on the calling
 * thread and blocks it for the whole run (measured: a 6 s taef2 encode let no 10 ms timer fire), so
 * running it here keeps the gateway's event loop free for HTTP, subscriptions and cancellation.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { stamp } from '../timing.js';
import { sessionOptions } from './onnx-session-options.js';
import type {
  ValueSignature,
  WireInput,
  WireTensor,
  WorkerInit,
  WorkerReply,
  WorkerRequest,
} from './onnx-worker-protocol.js';
import type { TensorType } from './tensor.js';

const WIRE_TYPES: ReadonlySet<string> = new Set<TensorType>(['float32', 'float16', 'int64', 'int32']);

function wireOutput(name: string, value: ort.Tensor): WireTensor {
  if (!WIRE_TYPES.has(value.type))
    throw new Error(`output ${name} is ${value.type}; latentgate reads ${[...WIRE_TYPES]}`);
  return { name, type: value.type as TensorType, data: value.data as WireTensor['data'], dims: value.dims.map(Number) };
}

const init = workerData as WorkerInit;
const models = new Map<string, Uint8Array | string>();
const sessions = new Map<string, Promise<ort.InferenceSession>>();
/** Inputs kept across runs (a denoising loop's prompt embeddings), until the main thread drops them. */
const residents = new Map<number, ort.Tensor>();

function feed(input: WireInput): ort.Tensor {
  if ('resident' in input) {
    const kept = residents.get(input.resident);
    if (!kept) throw new Error(`input ${input.name}: resident tensor ${input.resident} is not held by the worker`);
    return kept;
  }
  const tensor = new ort.Tensor(input.type ?? 'float32', input.data, input.dims);
  if (input.keep !== undefined) residents.set(input.keep, tensor);
  return tensor;
}

function session(key: string): Promise<ort.InferenceSession> {
  let existing = sessions.get(key);
  if (!existing) {
    const model = models.get(key);
    if (!model) throw new Error(`no model bytes were sent for ${key}`);
    existing =
      typeof model === 'string'
        ? ort.InferenceSession.create(model, sessionOptions(init))
        : ort.InferenceSession.create(model, sessionOptions(init));
    existing.catch(() => sessions.delete(key));
    sessions.set(key, existing);
  }
  return existing;
}

async function handle(request: Exclude<WorkerRequest, { type: 'drop' }>): Promise<WorkerReply> {
  switch (request.type) {
    case 'load':
      models.set(request.key, request.model);
      await session(request.key);
      return { id: request.id, ok: true };
    case 'describe': {
      const s = await session(request.key);
      const signature = (metadata: readonly ort.InferenceSession.ValueMetadata[]): ValueSignature[] =>
        metadata.map((m) => ({
          name: m.name,
          type: m.isTensor ? m.type : 'non-tensor',
          shape: m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : String(d))) : [],
        }));
      return {
        id: request.id,
        ok: true,
        signature: { inputs: signature(s.inputMetadata), outputs: signature(s.outputMetadata) },
      };
    }
    case 'run': {
      const received = request.timed ? stamp() : null;
      // Feeds first: inputs to keep are kept even when the run fails, so later runs can still name them.
      const feeds = Object.fromEntries(request.inputs.map((t) => [t.name, feed(t)]));
      const s = await session(request.key);
      const results = await s.run(feeds, request.outputNames);
      const wanted = new Set(request.outputNames);
      for (const [name, value] of Object.entries(results)) if (!wanted.has(name)) value.dispose();
      const outputs = request.outputNames.map((name) => wireOutput(name, results[name]));
      return { id: request.id, ok: true, outputs, ...(received ? { stamps: { received, finished: stamp() } } : {}) };
    }
    case 'close':
      await Promise.allSettled([...sessions.values()].map(async (s) => (await s).release()));
      sessions.clear();
      residents.clear();
      return { id: request.id, ok: true };
  }
}

parentPort!.on('message', (request: WorkerRequest) => {
  if (request.type === 'drop') {
    for (const handle of request.residents) residents.delete(handle);
    return;
  }
  handle(request).then(
    // Outputs move back without a copy (one transfer per distinct buffer).
    (reply) =>
      parentPort!.postMessage(
        reply,
        reply.ok && reply.outputs ? [...new Set(reply.outputs.map((t) => t.data.buffer as ArrayBuffer))] : [],
      ),
    (error: unknown) =>
      parentPort!.postMessage({
        id: request.id,
        ok: false,
        message: error instanceof Error ? error.message : String(error),
      } satisfies WorkerReply),
  );
});
