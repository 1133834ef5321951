/**
 * A compute field's cost against its key's daily quota. The edge admitted the field with a ticket
 * (src/server/api-keys.ts, keyed by the field's response key); the resolver settles it with the
 * pixel-seconds its run measured, or 0 when nothing ran. Without keys there is no ticket and no count.
 */
import type { GraphQLResolveInfo } from 'graphql';
import { type KeyLimiter, pixelSeconds, type Ticket } from '../auth/limiter.js';
import type { DecodeResult } from '../pipeline/decode.js';
import type { EncodeResult } from '../pipeline/encode.js';
import type { Img2ImgResult } from '../pipeline/img2img-types.js';
import type { GraphQLContext } from '../schema/builder.js';

export function ticketOf(ctx: GraphQLContext, info: GraphQLResolveInfo): Ticket | null {
  return ctx.tickets?.get(String(info.path.key)) ?? null;
}

/** Runs `run`, then settles `ticket` with `cost` of its result (0 when it failed); the result is returned unchanged. */
export async function metered<T>(
  limiter: KeyLimiter,
  ticket: Ticket | null,
  cost: (result: T) => number,
  run: () => Promise<T>,
): Promise<T> {
  if (!ticket) return run();
  let measured = 0;
  try {
    const result = await run();
    measured = cost(result);
    return result;
  } finally {
    await limiter.settle(ticket, measured);
  }
}

/**
 * For a submit field: `submit` reads the input and submits the job, whose run settles `ticket`
 * (through `metered`); when it throws, no job exists and the reservation is given back here.
 */
export async function submitted<T>(limiter: KeyLimiter, ticket: Ticket | null, submit: () => Promise<T>): Promise<T> {
  try {
    return await submit();
  } catch (error) {
    if (ticket) await limiter.settle(ticket, 0);
    throw error;
  }
}

/** The input image's pixels x the run's seconds. */
export function encodeCost(result: EncodeResult): number {
  return pixelSeconds(result.width * result.height, result.seconds);
}

/** The output images' pixels x the run's seconds. */
export function decodeCost(result: DecodeResult): number {
  return pixelSeconds(
    result.images.reduce((n, image) => n + image.width * image.height, 0),
    result.seconds,
  );
}

/** The output image's pixels (per image of the batch) x the whole request's seconds. */
export function img2imgCost(result: Img2ImgResult): number {
  return pixelSeconds(result.width * result.height * Math.max(1, result.images.length), result.seconds);
}
