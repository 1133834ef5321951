/**
 * Exponentially weighted moving average, for measured run times and round trips: recent enough to
 * follow a device or endpoint that speeds up or slows down, smooth enough that one odd run does
 * not swing routing.
 */

/** How much each new sample counts. */
export const EWMA_WEIGHT = 0.3;

/** The average after `sample`: the sample itself when there is none yet. */
export function ewma(previous: number | null | undefined, sample: number, weight = EWMA_WEIGHT): number {
  return previous === null || previous === undefined ? sample : previous + weight * (sample - previous);
}
