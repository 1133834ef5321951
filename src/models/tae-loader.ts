/** Loads a tiny autoencoder from safetensors (either naming) into staged ONNX networks. */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LatentStep, StagedNetwork } from '../gpu/staged-network.js';
import { inferArchitecture, sequentialTensors, type TaeArchitecture } from '../gpu/tae/architecture.js';
import {
  buildBranchStatisticsGraph,
  buildTaeGraph,
  channelsBefore,
  GRAPH_INPUT,
  GRAPH_OUTPUT,
  GROUP_NORM_EPSILON,
  GROUP_NORM_GROUPS,
  haloOf,
  reachOf,
} from '../gpu/tae/onnx-graph.js';
import { readSafetensors, type StoredTensor, tensorToFloat32 } from '../tensors/safetensors.js';
import { FAMILIES } from './families.js';
import type { ModelDefinition } from './model.js';

const DIFFUSERS_FILE = 'diffusion_pytorch_model.safetensors';

/**
 * The files of a TAE folder, as madebyollin's repositories and diffusers lay them out: one file with
 * both parts (diffusers' `diffusion_pytorch_model.safetensors`, or `taef2.safetensors` as the FLUX.2
 * one ships), and/or one file per part (`encoder.safetensors`, or `taesd_encoder.safetensors` and the
 * like). Names other than the standard ones must start with "tae", so a cache scan does not take some
 * other single-file model for a TAE.
 */
function taeFiles(dir: string): { combined: string | null; encoder: string | null; decoder: string | null } {
  const names = existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.safetensors')) : [];
  const part = (which: 'encoder' | 'decoder') =>
    names.find((n) => n === `${which}.safetensors`) ??
    names.find((n) => n.startsWith('tae') && n.endsWith(`_${which}.safetensors`)) ??
    null;
  const combined =
    names.find((n) => n === DIFFUSERS_FILE) ??
    names.find((n) => n.startsWith('tae') && !/_(encoder|decoder)\.safetensors$/.test(n)) ??
    null;
  return { combined, encoder: part('encoder'), decoder: part('decoder') };
}

export function looksLikeTae(dir: string): boolean {
  const files = taeFiles(dir);
  return Boolean(files.combined || files.encoder || files.decoder);
}

export async function loadTae(id: string, dir: string): Promise<ModelDefinition> {
  const parts: Partial<Record<'encoder' | 'decoder', Map<string, StoredTensor>>> = {};
  const files = taeFiles(dir);
  if (files.combined) {
    const all = (await readSafetensors(join(dir, files.combined))).tensors;
    for (const part of ['encoder', 'decoder'] as const) parts[part] = sequentialTensors(all, part) ?? undefined;
  }
  for (const part of ['encoder', 'decoder'] as const) {
    const file = files[part];
    if (!parts[part] && file)
      parts[part] = sequentialTensors((await readSafetensors(join(dir, file))).tensors, part) ?? undefined;
  }
  const encoderArch = parts.encoder ? inferArchitecture(parts.encoder, 'encoder') : undefined;
  const decoderArch = parts.decoder ? inferArchitecture(parts.decoder, 'decoder') : undefined;
  if (!encoderArch && !decoderArch) throw new Error(`${dir} holds no encoder or decoder tensors`);
  const latentChannels = encoderArch?.outChannels ?? decoderArch!.inChannels;
  const downscaleFactor = encoderArch?.scaleFactor ?? decoderArch!.scaleFactor;
  if (
    encoderArch &&
    decoderArch &&
    (decoderArch.inChannels !== latentChannels || decoderArch.scaleFactor !== downscaleFactor)
  ) {
    throw new Error(
      `${dir}: encoder (${latentChannels} ch, ${downscaleFactor}x) ` +
        `and decoder (${decoderArch.inChannels} ch, ${decoderArch.scaleFactor}x) disagree`,
    );
  }
  return {
    id,
    family: { ...FAMILIES.tae, latentChannels, downscaleFactor },
    format: 'tae-safetensors',
    latentChannels,
    downscaleFactor,
    encoder: encoderArch && stage(encoderArch),
    decoder: decoderArch && stage(decoderArch),
    path: dir,
  };
}

/**
 * Splits at the latent resolution: after the encoder's last downsampler, before the decoder's
 * first upsample. Every GroupNorm branch in the TAE family sits at latent resolution. The image-
 * resolution part runs in blended tiles; the latent part runs in tiles too, as `latentSteps`, with
 * each GroupNorm's statistics gathered over the whole map in a first pass (exact, see
 * src/gpu/latent-stage.ts). Running that part whole instead would be exact as well, but its
 * branches widen the map to 256 channels: ~1.3 GiB at float32 for a 4096x4096 image, whatever the
 * tile. Without GroupNorm branches (taesana, taesd) the latent part stays one whole-map graph: it
 * is 1/64 (1/1024) of the pixels at 64 channels, cheap to run whole.
 */
function stage(arch: TaeArchitecture): StagedNetwork {
  const layers = arch.layers;
  const split =
    arch.part === 'encoder'
      ? layers.findLastIndex((l) => l.kind === 'conv' && l.stride === 2) + 1
      : layers.findIndex((l) => l.kind === 'upsample');
  const network: StagedNetwork = {
    whole: buildTaeGraph(arch),
    inputName: GRAPH_INPUT,
    outputName: GRAPH_OUTPUT,
    outputChannels: arch.outChannels,
  };
  const globalOutsideLatentResolution = layers.some(
    (l, i) => l.kind === 'block' && l.hasGlobalBranch && (arch.part === 'encoder' ? i < split : i >= split),
  );
  if (split > 0 && !globalOutsideLatentResolution) {
    const [first, second] = [buildTaeGraph(arch, 0, split), buildTaeGraph(arch, split)];
    const [from, to] = arch.part === 'encoder' ? [split, layers.length] : [0, split];
    network.stages =
      arch.part === 'encoder'
        ? {
            highResolution: first,
            latentResolution: second,
            featureChannels: channelsBefore(arch, split),
            highResolutionReach: reachOf(arch, 0, split),
          }
        : {
            latentResolution: first,
            highResolution: second,
            featureChannels: channelsBefore(arch, split),
            highResolutionReach: reachOf(arch, split, layers.length),
          };
    if (layers.slice(from, to).some((l) => l.kind === 'block' && l.hasGlobalBranch))
      network.stages.latentSteps = latentSteps(arch, from, to);
  }
  return network;
}

/**
 * Layers [from, to) (one resolution) as steps: a step starts at each GroupNorm block and runs up
 * to the next one, so the layers between are fused into it; layers before the first GroupNorm
 * block form a local step of their own.
 */
export function latentSteps(arch: TaeArchitecture, from: number, to: number): LatentStep[] {
  const starts = [
    from,
    ...arch.layers
      .slice(from, to)
      .flatMap((l, i) => (l.kind === 'block' && l.hasGlobalBranch && from + i > from ? [from + i] : [])),
  ];
  return starts.map((start, i): LatentStep => {
    const end = starts[i + 1] ?? to;
    const halo = haloOf(arch, start, end);
    const outChannels = channelsBefore(arch, end);
    const first = arch.layers[start];
    if (!(first.kind === 'block' && first.hasGlobalBranch))
      return { kind: 'local', graph: buildTaeGraph(arch, start, end), halo, outChannels };
    return {
      kind: 'normalised',
      statistics: buildBranchStatisticsGraph(arch, start),
      graph: buildTaeGraph(arch, start, end, start),
      halo,
      outChannels,
      norm: {
        groups: GROUP_NORM_GROUPS,
        epsilon: GROUP_NORM_EPSILON,
        gamma: tensorToFloat32(arch.tensors.get(`${start}.pool.1.weight`)!),
      },
    };
  });
}
