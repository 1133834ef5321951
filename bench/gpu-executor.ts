/**
 * The local executor on each execution provider this machine has (WebGPU, then CPU): taef2 latents
 * and decodes against the PyTorch references (max abs difference), and whole-run encode / decode
 * times at 512², 1024² and 2048² (median of 5 after a warm-up run). A provider that cannot start
 * here is reported with its reason, so the benchmark runs (and says so) on machines without a GPU.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { LocalExecutor } from '../src/gpu/local-executor.ts';
import { chooseProvider, type ExecutionProvider, OnnxRuntime } from '../src/gpu/onnx-runtime.ts';
import type { Nchw } from '../src/gpu/tensor.ts';
import { ModelRegistry } from '../src/models/registry.ts';
import { rgbToPlanar } from '../src/tensors/pixel-range.ts';
import { readSafetensors, tensorToFloat32 } from '../src/tensors/safetensors.ts';
import { maxAbsDiff } from '../test/support/metrics.ts';
import { REFERENCE_DIR } from '../test/support/paths.ts';
import { IMAGES_DIR, MODELS_DIR, median, timeRuns } from './support.ts';

const PROVIDERS: readonly ExecutionProvider[] = ['webgpu', 'cpu'];
const SIZES = [512, 1024, 2048];

async function planarImage(file: string, size?: number): Promise<Nchw> {
  let image = sharp(readFileSync(join(IMAGES_DIR, file))).removeAlpha();
  if (size) image = image.resize(size, size, { kernel: 'nearest' });
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  return { data: rgbToPlanar(data, info.width, info.height, 'zero-one'), dims: [1, 3, info.height, info.width] };
}

async function referenceTensor(name: string, tensor: string): Promise<Nchw> {
  const stored = (await readSafetensors(join(REFERENCE_DIR, 'taef2', `${name}.safetensors`))).tensors.get(tensor)!;
  return { data: tensorToFloat32(stored), dims: stored.shape as Nchw['dims'] };
}

function gpuName(): string | null {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: 5000 })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

async function onProvider(provider: ExecutionProvider) {
  let runtime: OnnxRuntime;
  try {
    runtime = new OnnxRuntime(await chooseProvider(provider), 0);
  } catch (error) {
    return { provider, available: false, reason: (error as Error).message.split('\n')[0] };
  }
  try {
    const executor = new LocalExecutor(runtime);
    const model = (await ModelRegistry.load(MODELS_DIR)).require('taef2', 'encode');
    const accuracy: Record<string, number> = {};
    // Every reference present (the device machine may carry only some of them).
    const names = ['astronaut', 'coffee'].filter((name) =>
      existsSync(join(REFERENCE_DIR, 'taef2', `${name}.safetensors`)),
    );
    for (const name of names) {
      const latent = await executor.run(model, 'encode', await planarImage(`${name}.png`), undefined);
      accuracy[`${name}LatentMaxAbs`] = maxAbsDiff(latent.data, (await referenceTensor(name, 'latent')).data);
      const decoded = await executor.run(model, 'decode', await referenceTensor(name, 'latent'), undefined);
      accuracy[`${name}DecodedMaxAbs`] = maxAbsDiff(decoded.data, (await referenceTensor(name, 'decoded')).data);
    }
    const timings = [];
    for (const size of SIZES) {
      const image = await planarImage('astronaut-1024.png', size);
      const encode = () => executor.run(model, 'encode', { data: image.data.slice(), dims: image.dims }, undefined);
      const latent = await encode();
      const decode = () => executor.run(model, 'decode', { data: latent.data.slice(), dims: latent.dims }, undefined);
      await decode();
      const encodeSeconds = median(await timeRuns(5, encode));
      const decodeSeconds = median(await timeRuns(5, decode));
      timings.push({
        size,
        encodeMs: Math.round(encodeSeconds * 1e4) / 10,
        decodeMs: Math.round(decodeSeconds * 1e4) / 10,
      });
    }
    return { provider, available: true, reason: runtime.choice.reason, accuracy, timings };
  } finally {
    await runtime.close();
  }
}

export async function gpuExecutor() {
  const results = [];
  for (const provider of PROVIDERS) results.push(await onProvider(provider));
  return { benchmark: 'gpu-executor', model: 'taef2', gpu: gpuName(), results };
}
