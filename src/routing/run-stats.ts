/**
 * Recent run times, per model, operation and route, as seconds per megapixel (exponentially
 * weighted), so the router predicts run time from what this machine actually did. Pipeline stages
 * are kept per network call: a denoising step's seconds per latent pixel of its batch, a text
 * encode's seconds per sequence.
 */
import { ewma } from '../common/ewma.js';
import type { StageOperation } from './memory-profile.js';

export type RunKind = 'LOCAL' | 'TILED';

/** Before any measurement: a conservative CPU guess, replaced by the first real run. */
const UNMEASURED_SECONDS_PER_MEGAPIXEL = 2;
/** Until tiled runs are measured, assume the overlap and per-tile overhead cost this much more. */
const TILED_OVERHEAD = 1.5;

/**
 * Before a stage is measured: conservative CPU guesses (an SD 1.5 UNet step at 64x64 latents, batch
 * 2, ~1.6 s; a CLIP sequence 0.5 s), replaced by the first real run.
 */
const UNMEASURED_STAGE_SECONDS: Record<StageOperation, number> = { denoise: 2e-4, textEncode: 0.5 };

/** What one call of a stage's network is measured in: latent pixels x batch (denoise), sequences (textEncode). */
export function stageWork(operation: StageOperation, latentPixels: number, batch: number): number {
  return operation === 'denoise' ? latentPixels * batch : batch;
}

export class RunStats {
  private readonly rates = new Map<string, number>();

  /** One network call of a stage took `seconds` for `work` (see stageWork). */
  recordStage(model: string, operation: StageOperation, work: number, seconds: number): void {
    const key = `${model}/${operation}/STAGE`;
    this.rates.set(key, ewma(this.rates.get(key), seconds / Math.max(work, 1e-6)));
  }

  /** Expected seconds of one network call of a stage (one denoising step) over `work`. */
  expectedStageSeconds(model: string, operation: StageOperation, work: number): { seconds: number; measured: boolean } {
    const own = this.rates.get(`${model}/${operation}/STAGE`);
    return { seconds: (own ?? UNMEASURED_STAGE_SECONDS[operation]) * work, measured: own !== undefined };
  }

  record(model: string, operation: string, kind: RunKind, pixels: number, seconds: number): void {
    const key = `${model}/${operation}/${kind}`;
    const rate = seconds / Math.max(pixels / 1e6, 1e-6);
    this.rates.set(key, ewma(this.rates.get(key), rate));
  }

  expectedSeconds(
    model: string,
    operation: string,
    kind: RunKind,
    pixels: number,
  ): { seconds: number; measured: boolean } {
    const own = this.rates.get(`${model}/${operation}/${kind}`);
    if (own !== undefined) return { seconds: (own * pixels) / 1e6, measured: true };
    const other = this.rates.get(`${model}/${operation}/${kind === 'LOCAL' ? 'TILED' : 'LOCAL'}`);
    const factor = kind === 'TILED' ? TILED_OVERHEAD : 1 / TILED_OVERHEAD;
    const rate =
      other !== undefined ? other * factor : UNMEASURED_SECONDS_PER_MEGAPIXEL * (kind === 'TILED' ? TILED_OVERHEAD : 1);
    return { seconds: (rate * pixels) / 1e6, measured: false };
  }
}
