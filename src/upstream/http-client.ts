/**
 * One call to an upstream endpoint over Node's fetch, bounded in time and size, with retries.
 *
 * - `deadlineMs` bounds the whole call, retries and back-off included: every attempt runs under an
 *   AbortSignal that fires when the deadline passes (connect, send and reading the whole body), so
 *   a slow or silent endpoint cannot hold a request longer than that.
 * - Retried: connection errors (refused, reset, body cut short) and HTTP 429 / 503, after an
 *   exponential back-off with jitter (or the endpoint's `Retry-After`, when it fits the deadline).
 *   Not retried: a timeout (the deadline is spent), other statuses, a caller's abort.
 * - The response body is read to the end (at most `maxResponseBytes`); a short body is a
 *   connection error, as is a body longer than its `Content-Length`.
 */
import { declaredLength, readLimitedBody } from '../protocol/body.js';

export type UpstreamErrorKind = 'timeout' | 'connection' | 'status' | 'protocol' | 'too-large' | 'cancelled';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    readonly status: number | null = null,
    readonly attempts = 1,
  ) {
    super(message);
  }

  /** Whether the failure says something bad about the endpoint (and counts for its circuit breaker). */
  get countsAgainstEndpoint(): boolean {
    if (this.kind === 'cancelled') return false;
    if (this.kind === 'status' && this.status !== null && this.status >= 400 && this.status < 500)
      return this.status === 408 || this.status === 429;
    return true;
  }
}

export interface UpstreamRequest {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: Uint8Array;
}

export interface CallOptions {
  deadlineMs: number;
  retries: number;
  maxResponseBytes: number;
  signal?: AbortSignal;
  /** First back-off in ms (doubles per retry, ±50% jitter). */
  backoffMs?: number;
}

export interface UpstreamResponse {
  status: number;
  headers: Headers;
  body: Buffer;
  attempts: number;
  /** Wall time of the successful attempt. */
  seconds: number;
}

const RETRY_STATUSES = new Set([429, 503]);

export async function callUpstream(request: UpstreamRequest, options: CallOptions): Promise<UpstreamResponse> {
  const started = performance.now();
  const deadline = started + options.deadlineMs;
  const backoff = options.backoffMs ?? 100;
  let attempt = 0;
  for (;;) {
    attempt++;
    const remaining = deadline - performance.now();
    if (remaining <= 0)
      throw new UpstreamError('timeout', `no answer within ${options.deadlineMs} ms`, null, attempt - 1);
    let retryAfterMs: number | null = null;
    let failure: UpstreamError;
    const attemptStarted = performance.now();
    try {
      const response = await attemptOnce(request, remaining, options);
      if (response.status >= 200 && response.status < 300)
        return { ...response, attempts: attempt, seconds: (performance.now() - attemptStarted) / 1000 };
      failure = new UpstreamError(
        'status',
        `HTTP ${response.status}${describeErrorBody(response.body)}`,
        response.status,
        attempt,
      );
      if (RETRY_STATUSES.has(response.status)) retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      else throw failure;
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      if (error.kind !== 'connection' && !(error.kind === 'status' && RETRY_STATUSES.has(error.status ?? 0))) {
        throw new UpstreamError(error.kind, error.message, error.status, attempt);
      }
      failure = error;
    }
    if (attempt > options.retries)
      throw new UpstreamError(failure.kind, `${failure.message} (after ${attempt} attempts)`, failure.status, attempt);
    const jittered = backoff * 2 ** (attempt - 1) * (0.5 + Math.random());
    const wait = retryAfterMs !== null ? Math.max(retryAfterMs, jittered) : jittered;
    if (performance.now() + wait >= deadline) {
      throw new UpstreamError(
        failure.kind,
        `${failure.message} (no time left to retry within ${options.deadlineMs} ms)`,
        failure.status,
        attempt,
      );
    }
    await sleep(wait, options.signal);
  }
}

async function attemptOnce(
  request: UpstreamRequest,
  timeoutMs: number,
  options: CallOptions,
): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.floor(timeoutMs)));
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const classify = (error: unknown): UpstreamError => {
    if (options.signal?.aborted) return new UpstreamError('cancelled', 'the request was cancelled');
    if (timeout.aborted) return new UpstreamError('timeout', `no complete answer within ${Math.round(timeoutMs)} ms`);
    if (error instanceof UpstreamError) return error;
    return new UpstreamError('connection', `connection failed: ${describeNetworkError(error)}`);
  };
  try {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body as Uint8Array<ArrayBuffer> | undefined,
      signal,
      redirect: 'error',
    });
    const declared = response.headers.get('content-length');
    const limit = options.maxResponseBytes;
    const body = await readLimitedBody(
      // Node's web streams are async iterable; the DOM lib's ReadableStream type does not say so.
      response.body as AsyncIterable<Uint8Array> | null,
      limit,
      declaredLength(declared),
      (bytes) =>
        new UpstreamError(
          'too-large',
          bytes === null
            ? `the response is over ${limit} bytes`
            : `the response is ${bytes} bytes; at most ${limit} are accepted`,
          response.status,
        ),
    ).catch(async (error: unknown) => {
      // Refused (or cut short) before the end: release the stream rather than drain it.
      await response.body?.cancel().catch(() => {});
      throw error;
    });
    // (A compressed body is longer once decoded; undici itself reports one cut short.)
    if (declared !== null && !response.headers.get('content-encoding') && Number(declared) !== body.length) {
      throw new UpstreamError('connection', `the response body ended after ${body.length} of ${declared} bytes`);
    }
    return { status: response.status, headers: response.headers, body };
  } catch (error) {
    throw classify(error);
  }
}

/** undici hides the socket's error in `cause` (sometimes an AggregateError of several tries). */
export function describeNetworkError(error: unknown): string {
  type Cause = { code?: string; message?: string; errors?: Cause[] };
  const cause = (error as { cause?: Cause }).cause;
  const detail = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (error as Error).message;
  return detail || String(error);
}

/** Seconds or an HTTP date; capped at 30 s. */
function parseRetryAfter(value: string | null): number | null {
  if (!value) return null;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, 30_000) : null;
}

/** `: <message>` from a `{"error": ...}` body (the protocol's), else a short excerpt. */
function describeErrorBody(body: Buffer): string {
  if (body.length === 0) return '';
  const text = body.subarray(0, 2000).toString('utf8');
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (parsed && typeof parsed === 'object' && 'error' in parsed)
      return `: ${typeof parsed.error === 'string' ? parsed.error : JSON.stringify(parsed.error)}`;
  } catch {
    // not JSON
  }
  const printable = text
    .replace(/[^\x20-\x7e]+/g, ' ')
    .trim()
    .slice(0, 200);
  return printable ? `: ${printable}` : '';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new UpstreamError('cancelled', 'the request was cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new UpstreamError('cancelled', 'the request was cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
