/**
 * The worker thread that owns onnxruntime sessions. onnxruntime-node runs inference on the calling
 * thread and blocks it for the whole run (measured: a 6 s taef2 encode let no 10 ms timer fire), so
 * running it here keeps the gateway's event loop free for HTTP, subscriptions and cancellation.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { stamp } from '../timing.js';
import { sessionOptions } from './onnx-session-options.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './onnx-worker-protocol.js';

const init = workerData as WorkerInit;
const models = new Map<string, Uint8Array>();
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(key: string): Promise<ort.InferenceSession> {
  let existing = sessions.get(key);
  if (!existing) {
    const model = models.get(key);
    if (!model) throw new Error(`no model bytes were sent for ${key}`);
    existing = ort.InferenceSession.create(model, sessionOptions(init));
    existing.catch(() => sessions.delete(key));
    sessions.set(key, existing);
  }
  return existing;
}

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  switch (request.type) {
    case 'load':
      models.set(request.key, request.model);
      await session(request.key);
      return { id: request.id, ok: true };
    case 'run': {
      const received = request.timed ? stamp() : null;
      const s = await session(request.key);
      const feeds = Object.fromEntries(request.inputs.map((t) => [t.name, new ort.Tensor('float32', t.data, t.dims)]));
      const results = await s.run(feeds, request.outputNames);
      const wanted = new Set(request.outputNames);
      for (const [name, value] of Object.entries(results)) if (!wanted.has(name)) value.dispose();
      const outputs = request.outputNames.map((name) => ({
        name,
        data: results[name].data as Float32Array,
        dims: results[name].dims.map(Number),
      }));
      return { id: request.id, ok: true, outputs, ...(received ? { stamps: { received, finished: stamp() } } : {}) };
    }
    case 'close':
      await Promise.allSettled([...sessions.values()].map(async (s) => (await s).release()));
      sessions.clear();
      return { id: request.id, ok: true };
  }
}

parentPort!.on('message', (request: WorkerRequest) => {
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
