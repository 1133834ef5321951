/**
 * Loop prevention between peers: a request one instance forwards to another carries
 * `x-latentgate-forwarded-by: <its name>`, and while the receiving instance handles it, its upstream
 * pool leaves the peers out, so a request makes at most one hop. The mark travels with the request's
 * async context, so routing deep in the pipelines sees it without every call passing it on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';

export const FORWARDED_HEADER = 'x-latentgate-forwarded-by';

const hop = new AsyncLocalStorage<string>();

/** Runs `handle` as the handling of `req`: marked as forwarded when the header says so. */
export function withHop<T>(req: IncomingMessage, handle: () => T): T {
  const by = req.headers[FORWARDED_HEADER];
  return typeof by === 'string' && by !== '' ? hop.run(by, handle) : handle();
}

/** The peer that forwarded the request being handled; undefined for a request from a client. */
export function forwardedBy(): string | undefined {
  return hop.getStore();
}
