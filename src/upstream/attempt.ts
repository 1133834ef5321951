/** What a failed call to an endpoint means for it, the same for every operation (encode, decode, img2img). */
import { cancellation } from '../errors.js';
import { ProtocolMismatch } from './codec.js';
import type { Endpoint } from './endpoint.js';
import { UpstreamError } from './http-client.js';

/**
 * Books a failed attempt against its endpoint's breaker and adds why to `failures`, so the caller can
 * fail over. A cancelled call throws CANCELLED (no verdict on the endpoint); an error that is not the
 * endpoint's (a bug here) is rethrown.
 */
export function recordFailedAttempt(
  endpoint: Endpoint,
  error: unknown,
  signal: AbortSignal | undefined,
  failures: string[],
): void {
  if (error instanceof UpstreamError) {
    if (error.kind === 'cancelled') {
      endpoint.breaker.releaseWithoutVerdict();
      throw cancellation(signal, `the request was cancelled while ${endpoint.name} ran it`);
    }
    if (error.countsAgainstEndpoint) endpoint.breaker.recordFailure();
    else endpoint.breaker.releaseWithoutVerdict();
    failures.push(`${endpoint.name}: ${error.kind === 'status' ? '' : `${error.kind}: `}${error.message}`);
  } else if (error instanceof ProtocolMismatch) {
    endpoint.breaker.recordFailure();
    failures.push(`${endpoint.name}: bad answer: ${error.message}`);
  } else {
    endpoint.breaker.releaseWithoutVerdict();
    throw error;
  }
}
