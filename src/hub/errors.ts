/** What went wrong talking to the Hub, as a typed error a user can act on. */
import { HubApiError } from '@huggingface/hub';
import { GatewayError } from '../errors.js';

export interface HubTarget {
  endpoint: string;
  repo: string;
  hasToken: boolean;
}

/** Turns a Hub client failure into a GatewayError that says what to do (401/403: the token; others: the network). */
export function hubFailure(error: unknown, target: HubTarget): GatewayError {
  if (error instanceof GatewayError) return error;
  const page = `${target.endpoint}/${target.repo}`;
  if (error instanceof HubApiError) {
    const details = { repo: target.repo, status: error.statusCode, url: error.url };
    if (error.statusCode === 401)
      return new GatewayError(
        target.hasToken ? 'FORBIDDEN' : 'UNAUTHENTICATED',
        target.hasToken
          ? `${target.repo} refused HF_TOKEN (401): the token is not valid on ${target.endpoint}; ` +
              'make one at https://huggingface.co/settings/tokens'
          : `${target.repo} is gated or private (401): set HF_TOKEN to a Hugging Face token ` +
              `(https://huggingface.co/settings/tokens) of an account that accepted its terms at ${page}`,
        details,
      );
    if (error.statusCode === 403)
      return new GatewayError(
        'FORBIDDEN',
        `${target.repo} is gated (403): the account of HF_TOKEN has no access yet; ` +
          `accept the repository's terms at ${page}, or use a token with read access to it`,
        details,
      );
    if (error.statusCode === 404)
      return new GatewayError(
        'NOT_FOUND',
        `${target.repo} (or that revision or file) is not on ${target.endpoint}`,
        details,
      );
    return new GatewayError(
      'UPSTREAM_FAILED',
      `the Hub answered ${error.statusCode} for ${target.repo}: ${error.message}`,
      details,
    );
  }
  // @huggingface/hub checks a token's form before any request.
  if (error instanceof TypeError && /access token/i.test(error.message))
    return new GatewayError('BAD_REQUEST', `HF_TOKEN is not a Hugging Face token: ${error.message}`);
  const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
  return new GatewayError(
    'UPSTREAM_FAILED',
    `cannot reach the Hub at ${target.endpoint} (${cause?.code ?? cause?.message ?? (error as Error).message}); ` +
      'check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache only',
    { repo: target.repo, endpoint: target.endpoint },
  );
}
