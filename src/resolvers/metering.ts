/**
 * A compute field's cost against its key's daily quota. The edge admitted the field with a ticket
 * (src/server/api-keys.ts, keyed by the field's response key); the resolver settles it with the
 * pixel-seconds its run measured (src/pipeline/compute-cost.ts), or 0 when nothing ran; a job settles
 * when it ends. Without keys there is no ticket and no count.
 */
import type { GraphQLResolveInfo } from 'graphql';
import type { KeyLimiter, Ticket } from '../auth/limiter.js';
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
