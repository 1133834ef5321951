/**
 * A job as data (`JobSpec`: operation, model, the pipeline request with its input bytes) and what turns
 * it into a run: the in-memory mode prepares the run where the job is submitted, the durable mode
 * queues the spec and prepares it on whichever instance takes it (src/jobs/durable-jobs.ts).
 */
import { GatewayError } from '../errors.js';
import { type DecodeRequest, decode, rawLatent } from '../pipeline/decode.js';
import { type EncodeRequest, encode } from '../pipeline/encode.js';
import { admitDecode, admitEncode, admitImg2Img, decodeHostBytes, encodeHostBytes } from '../pipeline/host-bytes.js';
import { defaultsFamilyOf, img2img } from '../pipeline/img2img.js';
import { type Img2ImgRequestInput, withDefaults } from '../pipeline/img2img-types.js';
import type { HostAdmission } from '../routing/host-ledger.js';
import type { Plan } from '../routing/planner.js';
import type { Services } from '../schema/builder.js';
import type { JobRun } from './manager.js';

export type JobSpec =
  | { operation: 'encode'; request: Omit<EncodeRequest, 'admission'> }
  | { operation: 'decode'; request: Omit<DecodeRequest, 'admission'> }
  | { operation: 'img2img'; request: Img2ImgRequestInput };

/** The services a run uses: results it keeps belong to `owner` (an API key's name). */
export type RunServices = Services & { owner?: string };

/**
 * Admits the spec's host memory (BUSY or DOES_NOT_FIT throw here) and returns its run, which keeps
 * an inline result counted for JOB_TTL_SECONDS and frees the rest when it ends.
 */
export async function prepareRun(services: RunServices, spec: JobSpec): Promise<JobRun> {
  const model = services.registry.require(spec.request.model, spec.operation);
  switch (spec.operation) {
    case 'encode': {
      const request = spec.request;
      // Accepted only if its host memory is; queued, it holds its compressed bytes only.
      const admission = await admitEncode(services, model, request.image, request.dtype, request.delivery);
      return (hooks) =>
        kept(
          services,
          admission,
          encode(services, { ...request, admission }, hooks),
          (r) => r.latent.data?.length ?? 0,
        );
    }
    case 'decode': {
      const request = spec.request;
      // A URL that does not resolve fails the job (as before), which then holds nothing.
      const raw = await rawLatent(services, request).catch((error: unknown) => {
        if (error instanceof GatewayError) return { bytes: new Uint8Array(0), shape: [], dtype: 'float32' as const };
        throw error;
      });
      const admission = admitDecode(services, model, raw, request.delivery, 'url' in request.latent);
      return (hooks) =>
        kept(services, admission, decode(services, { ...request, admission }, hooks), (r) =>
          r.images.reduce((n, image) => n + (image.data?.length ?? 0), 0),
        );
    }
    case 'img2img': {
      const request = spec.request;
      const admission = model.diffusion
        ? await admitImg2Img(services, model, withDefaults(request, defaultsFamilyOf(model)), 0)
        : undefined;
      return async (hooks, job) => {
        try {
          const result = await img2img(
            services,
            { ...request, admission },
            {
              signal: hooks.signal,
              onRouted: (stage, plan) => job.emit({ type: 'ROUTED', plan, stage }),
              onQueued: (_stage, position) => job.emit({ type: 'QUEUED', position }),
              onProgress: ({ stage, step, total, timestep }) =>
                job.emit({ type: 'RUNNING', done: step, total, stage, timestep }),
            },
          );
          const inline =
            result.images.reduce((n, image) => n + (image.data?.length ?? 0), 0) + (result.latent?.data?.length ?? 0);
          admission?.keep(inline, services.config.jobTtlSeconds);
          return result;
        } catch (error) {
          admission?.release();
          throw error;
        }
      };
    }
  }
}

/** A finished job keeps its inline result for JOB_TTL_SECONDS: counted that long, the rest freed now. */
async function kept<T>(
  services: Services,
  admission: HostAdmission,
  run: Promise<T>,
  resultBytes: (result: T) => number,
): Promise<T> {
  try {
    const result = await run;
    admission.keep(resultBytes(result), services.config.jobTtlSeconds);
    return result;
  } catch (error) {
    admission.release();
    throw error;
  }
}

/** The size of a spec's run where it can be told before running it (the queue carries it, so an instance can plan without the input). */
export interface RunSize {
  width: number;
  height: number;
  batch: number;
}

/**
 * An encode's size from its image header, a decode's from its tensor's shape; null when only the run
 * can tell (a latent URL, img2img's several stages) or the spec will fail wherever it runs.
 */
export async function runSize(services: Services, spec: JobSpec): Promise<RunSize | null> {
  const model = services.registry.require(spec.request.model, spec.operation);
  let size: RunSize;
  if (spec.operation === 'encode') {
    const { width, height } = await encodeHostBytes(services, model, spec.request.image, 'float32', 'URL');
    size = { width, height, batch: 1 };
  } else if (spec.operation === 'decode' && !('url' in spec.request.latent)) {
    const { width, height, batch } = decodeHostBytes(model, spec.request.latent, 'URL', false);
    size = { width, height, batch };
  } else return null;
  return size.width > 0 && size.height > 0 && size.batch > 0 ? size : null;
}

/** The router's plan for a run of `size` here; null when this instance cannot plan it (no such model here, no profile). */
export function planHere(
  services: Services,
  operation: 'encode' | 'decode',
  model: string,
  size: RunSize,
): Plan | null {
  try {
    return services.router.plan(
      services.registry.require(model, operation),
      operation,
      size.width,
      size.height,
      size.batch,
    );
  } catch (error) {
    if (error instanceof GatewayError) return null;
    throw error;
  }
}

/** The one byte array of a spec's request (its image or latent), or null (a latent URL). */
export function inputOf(spec: JobSpec): Uint8Array | null {
  const request = spec.request as { image?: Uint8Array; latent?: { bytes?: Uint8Array } };
  return request.image ?? request.latent?.bytes ?? null;
}

/** The spec with its input bytes set to `bytes` (or left out: `null`), where `inputOf` found them. */
export function withInput(spec: JobSpec, bytes: Uint8Array | null): JobSpec {
  const request = { ...spec.request } as { image?: Uint8Array; latent?: { bytes?: Uint8Array } };
  if (request.image) request.image = bytes ?? new Uint8Array(0);
  else if (request.latent && 'bytes' in request.latent)
    request.latent = { ...request.latent, bytes: bytes ?? new Uint8Array(0) };
  return { ...spec, request } as JobSpec;
}
