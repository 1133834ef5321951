/**
 * Recent run times, per model, operation and route, as seconds per megapixel (exponentially
 * weighted), so the router predicts run time from what this machine actually did.
 */
import { ewma } from '../common/ewma.js';

export type RunKind = 'LOCAL' | 'TILED';

/** Before any measurement: a conservative CPU guess, replaced by the first real run. */
const UNMEASURED_SECONDS_PER_MEGAPIXEL = 2;
/** Until tiled runs are measured, assume the overlap and per-tile overhead cost this much more. */
const TILED_OVERHEAD = 1.5;

export class RunStats {
  private readonly rates = new Map<string, number>();

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
