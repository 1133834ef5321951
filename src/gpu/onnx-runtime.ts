/**
 * The onnxruntime-node adapter: picks the execution provider once (CUDA when its libraries load,
 * else the bundled CPU provider), creates sessions lazily and caches them per network.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx-builder.js';
import type { Nchw } from './tensor.js';

export type ExecutionProvider = 'cuda' | 'cpu';

export interface ProviderChoice {
  provider: ExecutionProvider;
  /** Why this provider: what was tried and what failed. */
  reason: string;
}

/** A 1x1 identity convolution: enough to prove a provider can load and run. */
function probeModel(): Uint8Array {
  const g = new GraphBuilder();
  g.node('Conv', ['x', g.constant('w', [1, 1, 1, 1], new Float32Array([1]))], { kernel_shape: [1, 1] }, 'y');
  return g.build({ name: 'x', channels: 1 }, { name: 'y', channels: 1 }, 'probe');
}

/** onnxruntime-node loads CUDA from a library beside its binding; probing without it only logs noise. */
function cudaProviderInstalled(): boolean {
  const binding = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(join(binding, 'libonnxruntime_providers_cuda.so'));
}

export async function chooseProvider(preference: 'auto' | 'cuda' | 'cpu'): Promise<ProviderChoice> {
  if (preference === 'cpu') return { provider: 'cpu', reason: 'EXECUTION_PROVIDER=cpu' };
  const listed = ort.listSupportedBackends().some((b) => b.name === 'cuda');
  if (!listed || !cudaProviderInstalled()) {
    const why = listed ? 'its CUDA provider library is not installed (npm skipped the download)' : 'this onnxruntime-node build has no CUDA provider';
    if (preference === 'cuda') throw new Error(`EXECUTION_PROVIDER=cuda, but ${why}`);
    return { provider: 'cpu', reason: `CPU: ${why}` };
  }
  try {
    const session = await ort.InferenceSession.create(probeModel(), { executionProviders: ['cuda'] });
    await session.run({ x: new ort.Tensor('float32', new Float32Array([1]), [1, 1, 1, 1]) });
    await session.release();
    return { provider: 'cuda', reason: 'CUDA provider loaded and ran a probe model' };
  } catch (error) {
    if (preference === 'cuda') throw new Error(`EXECUTION_PROVIDER=cuda, but the CUDA provider failed: ${(error as Error).message}`);
    return { provider: 'cpu', reason: `CUDA provider failed to load (${(error as Error).message.split('\n')[0]}); using CPU` };
  }
}

export class OnnxRuntime {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  constructor(
    readonly choice: ProviderChoice,
    private readonly intraOpThreads: number,
  ) {}

  /** Runs one network; `key` names it for the session cache. */
  async run(key: string, model: Uint8Array, inputName: string, outputName: string, input: Nchw): Promise<Nchw> {
    const session = await this.session(key, model);
    const feeds = { [inputName]: new ort.Tensor('float32', input.data, input.dims) };
    const results = await session.run(feeds, [outputName]);
    const output = results[outputName];
    try {
      const dims = output.dims.map(Number);
      if (dims.length !== 4) throw new Error(`network ${key} returned ${dims.length}-D output [${dims}], expected NCHW`);
      return { data: output.data as Float32Array, dims: dims as Nchw['dims'] };
    } finally {
      for (const value of Object.values(results)) if (value !== output) value.dispose();
    }
  }

  private session(key: string, model: Uint8Array): Promise<ort.InferenceSession> {
    let session = this.sessions.get(key);
    if (!session) {
      session = ort.InferenceSession.create(model, {
        executionProviders: [this.choice.provider],
        graphOptimizationLevel: 'all',
        // Memory pattern planning makes every run after the first allocate one new block of the
        // planned size next to the arena chunks the first run left free: measured +200 MiB for
        // taef2 at 512x512 on CPU, and no faster. Off, a session's peak stays at its first run's,
        // which is what the memory estimates assume (src/routing/profiles.ts).
        ...(this.choice.provider === 'cpu' ? { enableMemPattern: false } : {}),
        ...(this.intraOpThreads > 0 ? { intraOpNumThreads: this.intraOpThreads } : {}),
      });
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  /** Creates a network's session now, so the first request does not pay for it. */
  async warm(key: string, model: Uint8Array): Promise<void> {
    await this.session(key, model);
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.allSettled(all.map(async (s) => (await s).release()));
  }
}
