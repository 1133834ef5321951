/**
 * Draining for a graceful shutdown: once `begin` is called the gateway takes no new compute (GraphQL
 * compute fields and Hybrid Inference answer SERVICE_UNAVAILABLE with Retry-After, /healthz says
 * "draining" with 503 so a load balancer stops sending), while reads (job state, progress, result
 * URLs) are still served, and `settled` waits for the HTTP requests in flight to be answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { type GatewayError, serviceUnavailable } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import { graphqlAuthError } from './api-keys.js';
import { COMPUTE_FIELDS } from './graphql-limits.js';
import { fragmentsOf, rootFields } from './root-fields.js';

/** A refused caller is told to retry after this long (elsewhere, or here once the gateway is back). */
const DRAIN_RETRY_AFTER_SECONDS = 5;
const POLL_MS = 50;
const FLUSH_MIN_MS = 100;
const FLUSH_MS = 500;

export class Lifecycle {
  private drainingSince: number | null = null;
  private inFlight = 0;

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  begin(now: number = Date.now()): void {
    this.drainingSince ??= now;
  }

  /** The answer to new compute while draining. */
  refusal(): GatewayError {
    return serviceUnavailable(
      'the gateway is shutting down and takes no new work; send it to another instance or retry shortly',
      DRAIN_RETRY_AFTER_SECONDS,
      { reason: 'draining' },
    );
  }

  /**
   * Counts `req` as in flight until its answer is sent. Event streams (SSE subscriptions) are not
   * counted: they end with the jobs they follow.
   */
  track(req: IncomingMessage, res: ServerResponse): void {
    if (req.headers.accept?.includes('text/event-stream')) return;
    this.inFlight += 1;
    res.once('close', () => (this.inFlight -= 1));
    // A client on a kept-alive connection is sent elsewhere with its next request.
    if (this.draining) res.setHeader('connection', 'close');
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  /**
   * The last moment before connections close: the jobs' last events reach their subscribers (they are
   * written on later ticks) and requests still open get their answers, for at most FLUSH_MS.
   */
  async flush(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, FLUSH_MIN_MS));
    await this.settled(() => true, Date.now() + FLUSH_MS);
  }

  /** Resolves once no counted request is in flight and `idle()` holds, or at `deadline` (ms since the epoch). */
  async settled(idle: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      if (this.inFlight === 0 && idle()) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)));
    }
  }
}

/** Refuses GraphQL operations with a compute field while draining (before keys are charged for them). */
export function useDraining(services: Observability & { lifecycle: Lifecycle }): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (!services.lifecycle.draining) return;
      const operation = getOperationAST(args.document, args.operationName);
      if (!operation) return;
      const fields = rootFields(operation.selectionSet, fragmentsOf(args.document));
      if (![...fields.values()].some((name) => COMPUTE_FIELDS.has(name))) return;
      const refusal = services.lifecycle.refusal();
      // Counted and logged here: what onExecute answers does not pass the error mask.
      reportAnswer(services, 'graphql', refusal);
      setResultAndStopExecution({ errors: [graphqlAuthError(refusal)] });
    },
  };
}
