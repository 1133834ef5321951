/**
 * A circuit breaker for one endpoint. Closed: requests flow, consecutive failures are counted.
 * After `failureThreshold` of them it opens: no requests for `cooldownMs`. Then it is half-open:
 * exactly one trial request may go; its success closes the circuit, its failure opens it again
 * for another cooldown.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | null = null;
  private trialInFlight = false;
  private readonly now: () => number;

  constructor(private readonly options: BreakerOptions) {
    this.now = options.now ?? (() => Date.now());
  }

  get state(): BreakerState {
    if (this.openedAt === null) return 'closed';
    return this.now() - this.openedAt >= this.options.cooldownMs ? 'half-open' : 'open';
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Whether a request could go now (without taking the half-open trial slot). */
  get available(): boolean {
    const state = this.state;
    return state === 'closed' || (state === 'half-open' && !this.trialInFlight);
  }

  /** Takes permission for one request: false when open, or half-open with the trial already out. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  recordSuccess(): void {
    this.failures = 0;
    this.openedAt = null;
    this.trialInFlight = false;
  }

  recordFailure(): void {
    this.failures++;
    const wasTrial = this.trialInFlight;
    this.trialInFlight = false;
    if (wasTrial || this.openedAt !== null || this.failures >= this.options.failureThreshold)
      this.openedAt = this.now();
  }

  /** A request that ended without telling anything about the endpoint (e.g. cancelled by the caller). */
  releaseWithoutVerdict(): void {
    this.trialInFlight = false;
  }
}
