/**
 * The onnxruntime-node adapter: picks the execution provider once (CUDA when its libraries load,
 * else the bundled CPU provider; WebGPU when asked for) and runs networks in a worker thread that
 * caches their sessions.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { reportPart, stamp, timingParts } from '../timing.js';
import { identityGraph } from './onnx-builder.js';
import type { NetworkSignature, WireInput, WorkerInit, WorkerReply, WorkerRequest } from './onnx-worker-protocol.js';
import type { Nchw, Tensor } from './tensor.js';

export type { NetworkSignature, ValueSignature } from './onnx-worker-protocol.js';

/** A network's graph: its bytes (made in-process or read), or its file (external weights load beside it). */
export type NetworkSource = Uint8Array | string;

export type ExecutionProvider = 'cuda' | 'webgpu' | 'cpu';
export type ProviderPreference = 'auto' | ExecutionProvider;

export interface ProviderChoice {
  provider: ExecutionProvider;
  /** Why this provider: what was tried and what failed. */
  reason: string;
}

/** onnxruntime-node loads CUDA from a library beside its binding; probing without it only logs noise. */
function cudaProviderInstalled(): boolean {
  const binding = join(
    dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
  );
  return existsSync(join(binding, 'libonnxruntime_providers_cuda.so'));
}

/** Creates a session of the probe graph on `provider` and runs it once; throws what the provider threw. */
async function probe(provider: ExecutionProvider): Promise<void> {
  const session = await ort.InferenceSession.create(identityGraph('probe'), { executionProviders: [provider] });
  try {
    await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1, 1, 1, 1]) });
  } finally {
    await session.release();
  }
}

export async function chooseProvider(preference: ProviderPreference): Promise<ProviderChoice> {
  if (preference === 'cpu') return { provider: 'cpu', reason: 'EXECUTION_PROVIDER=cpu' };
  // WebGPU is bundled but needs a GPU adapter (Vulkan on Linux); it is only used when asked for,
  // since on a machine without one the probe is slow to fail and its errors are noise.
  if (preference === 'webgpu') {
    try {
      await probe('webgpu');
      return { provider: 'webgpu', reason: 'EXECUTION_PROVIDER=webgpu: the WebGPU provider ran a probe model' };
    } catch (error) {
      throw new Error(`EXECUTION_PROVIDER=webgpu, but the WebGPU provider failed: ${(error as Error).message}`);
    }
  }
  const listed = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!listed || !cudaProviderInstalled()) {
    const why = listed
      ? 'its CUDA provider library is not installed (npm skipped the download)'
      : 'this onnxruntime-node build has no CUDA provider';
    if (preference === 'cuda') throw new Error(`EXECUTION_PROVIDER=cuda, but ${why}`);
    return { provider: 'cpu', reason: `CPU: ${why}` };
  }
  try {
    await probe('cuda');
    return { provider: 'cuda', reason: 'CUDA provider loaded and ran a probe model' };
  } catch (error) {
    if (preference === 'cuda')
      throw new Error(`EXECUTION_PROVIDER=cuda, but the CUDA provider failed: ${(error as Error).message}`);
    return {
      provider: 'cpu',
      reason: `CUDA provider failed to load (${(error as Error).message.split('\n')[0]}); using CPU`,
    };
  }
}

/**
 * Runs networks in a dedicated worker thread (see onnx-worker.ts for why). Runs on one device are
 * serialised in that thread, in arrival order; the ledger has already admitted each one's memory.
 * Inputs are copied to the worker (callers may reuse them), except those marked `transferable`,
 * whose buffers move there; outputs are moved back without a copy.
 */
export class OnnxRuntime {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve: (reply: WorkerReply & { ok: true }) => void; reject: (error: Error) => void }
  >();
  private readonly loaded = new Map<string, Promise<unknown>>();
  private readonly signatures = new Map<string, Promise<NetworkSignature>>();
  private nextId = 0;
  private failure: Error | null = null;
  /** Resident inputs the worker holds, by the array they came from (see `TensorUse.resident`). */
  private readonly residents = new WeakMap<object, { handle: number; type: Tensor['type']; dims: string }>();
  private nextResident = 0;
  /** Once a resident input's array is collected here, no run can name it again: the worker frees its copy. */
  private readonly dropResident = new FinalizationRegistry<number>((handle) => {
    if (!this.failure) this.worker.postMessage({ type: 'drop', residents: [handle] } satisfies WorkerRequest);
  });

  constructor(
    readonly choice: ProviderChoice,
    intraOpThreads: number,
  ) {
    const init: WorkerInit = { provider: choice.provider, intraOpThreads };
    // The worker is TypeScript too: a small bootstrap registers tsx in the thread, then loads it.
    const bootstrap =
      `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); ` +
      `return import(${JSON.stringify(new URL('./onnx-worker.ts', import.meta.url).href)}); });`;
    this.worker = new Worker(bootstrap, { eval: true, workerData: init });
    this.worker.unref();
    this.worker.on('message', (reply: WorkerReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply);
      else waiter.reject(new Error(reply.message));
    });
    const fail = (error: Error) => {
      this.failure = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the onnxruntime worker exited with code ${code}`)));
  }

  private call(
    request: DistributiveOmit<Exclude<WorkerRequest, { type: 'drop' }>, 'id'>,
    transfer: ArrayBuffer[] = [],
  ): Promise<WorkerReply & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref(); // keep the process alive while work is in flight
      this.worker.postMessage({ ...request, id }, transfer);
    }).finally(() => {
      if (this.pending.size === 0) this.worker.unref();
    }) as Promise<WorkerReply & { ok: true }>;
  }

  /** Sends a network's bytes and creates its session once; later runs name it by key. */
  warm(key: string, model: NetworkSource): Promise<unknown> {
    let loading = this.loaded.get(key);
    if (!loading) {
      loading = this.call({ type: 'load', key, model });
      loading.catch(() => this.loaded.delete(key));
      this.loaded.set(key, loading);
    }
    return loading;
  }

  /** Runs one network with one NCHW input and one NCHW output; `key` names it for the session cache. */
  /** The inputs and outputs the network's session declares (names, element types, shapes); cached. */
  describe(key: string, model: NetworkSource): Promise<NetworkSignature> {
    let signature = this.signatures.get(key);
    if (!signature) {
      signature = this.warm(key, model)
        .then(() => this.call({ type: 'describe', key }))
        .then((reply) => reply.signature!);
      signature.catch(() => this.signatures.delete(key));
      this.signatures.set(key, signature);
    }
    return signature;
  }

  /**
   * Runs a network on named tensors of any rank and element type (token ids, timesteps, embeddings)
   * and returns the outputs asked for, by name. Inputs are copied to the worker, except transferable
   * ones (moved) and resident ones (sent once, then named); outputs move back.
   */
  async runTensors(
    key: string,
    model: NetworkSource,
    inputs: Record<string, Tensor>,
    outputNames: readonly string[],
  ): Promise<Record<string, Tensor>> {
    await this.warm(key, model);
    const wire = Object.entries(inputs).map(([name, t]) => this.wireInput(name, t));
    const transfer = new Set(
      Object.values(inputs)
        .filter((t) => t.transferable && !t.resident)
        .map(movableBuffer)
        .filter((b) => b !== null),
    );
    const reply = await this.call({ type: 'run', key, inputs: wire, outputNames: [...outputNames], timed: false }, [
      ...transfer,
    ]);
    return Object.fromEntries(
      reply.outputs!.map(({ name, type, data, dims }) => [name, { type: type ?? 'float32', data, dims } as Tensor]),
    );
  }

  /** A resident input the worker already holds goes by its handle; a new one is sent with a handle to keep. */
  private wireInput(name: string, t: Tensor): WireInput {
    const tensor = { name, type: t.type, data: t.data, dims: [...t.dims] };
    if (!t.resident) return tensor;
    const dims = t.dims.join(',');
    const held = this.residents.get(t.data);
    if (held) {
      // The same array as another shape or type would be another tensor: sent as a copy, not kept.
      return held.type === t.type && held.dims === dims ? { name, resident: held.handle } : tensor;
    }
    const handle = this.nextResident++;
    this.residents.set(t.data, { handle, type: t.type, dims });
    this.dropResident.register(t.data, handle);
    return { ...tensor, keep: handle };
  }

  async run(key: string, model: NetworkSource, inputName: string, outputName: string, input: Nchw): Promise<Nchw> {
    const [output] = await this.runNamed(key, model, { [inputName]: input }, [outputName]);
    return output;
  }

  /**
   * Runs one network with named NCHW inputs and returns the named outputs in the order asked
   * (e.g. a feature map plus per-channel scale and shift, or several statistics).
   */
  async runNamed(
    key: string,
    model: NetworkSource,
    inputs: Record<string, Nchw>,
    outputNames: readonly string[],
  ): Promise<Nchw[]> {
    await this.warm(key, model);
    const wire = Object.entries(inputs).map(([name, t]) => ({ name, data: t.data, dims: [...t.dims] }));
    const posted = timingParts() ? stamp() : null;
    const reply = await this.call({ type: 'run', key, inputs: wire, outputNames: [...outputNames], timed: !!posted }, [
      ...new Set(
        Object.values(inputs)
          .map(movableBuffer)
          .filter((b) => b !== null),
      ),
    ]);
    if (posted && reply.stamps) {
      reportPart('toWorker', posted, reply.stamps.received);
      reportPart('run', reply.stamps.received, reply.stamps.finished);
      reportPart('fromWorker', reply.stamps.finished);
    }
    return reply.outputs!.map(({ name, data, dims }) => {
      if (dims.length !== 4)
        throw new Error(`network ${key} returned ${dims.length}-D output ${name} [${dims}], expected NCHW`);
      return { data: data as Float32Array, dims: dims as Nchw['dims'] };
    });
  }

  async close(): Promise<void> {
    if (!this.failure) await this.call({ type: 'close' }).catch(() => {});
    await this.worker.terminate();
  }
}

/** The buffer a transferable input can give up: one that holds exactly its data (not a view into more). */
function movableBuffer(t: { data: ArrayBufferView; transferable?: boolean }): ArrayBuffer | null {
  const { buffer, byteOffset, byteLength } = t.data;
  return t.transferable && buffer instanceof ArrayBuffer && byteOffset === 0 && byteLength === buffer.byteLength
    ? buffer
    : null;
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
