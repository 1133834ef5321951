/**
 * Capacity ledger: the memory budget of one local device, and the reservations held against it.
 *
 * Every run reserves its estimated bytes before it starts and releases them when it ends, fails
 * or is cancelled (use `withReservation` so the release happens in `finally`).
 *
 * Invariants
 * - `reservedBytes <= budgetBytes` at every moment (bytes are counted synchronously at admission,
 *   before the caller's promise even resolves).
 * - A request larger than the whole budget is rejected at once with DOES_NOT_FIT.
 * - A request that does not fit now waits in a bounded queue; when the queue already holds
 *   `maxQueueLength` waiters the caller gets BUSY with `details.retryAfterSeconds` (>= 1): the
 *   estimated seconds until the queue has room again, from the run times of the work ahead.
 * - `Reservation.release()` is idempotent: only the first call frees bytes.
 * - A waiter whose AbortSignal fires is removed from the queue and rejected with CANCELLED.
 *   An abort that arrives after admission does nothing: the caller owns the reservation and
 *   must release it (withReservation does).
 *
 * Fairness rule: strict FIFO admission. A request is admitted immediately only when the queue is
 * empty and it fits; otherwise it joins the tail. On every release the ledger admits from the
 * head while the head fits, and stops at the first head that does not fit, even if later waiters
 * would fit. So a large request is never bypassed: once it reaches the head it runs as soon as the
 * bytes held by already-running reservations are released, with zero small admissions in between
 * (the only requests admitted ahead of it are the ones queued before it).
 */
import { cancelled, GatewayError } from '../errors.js';

export interface ReservationRequest {
  /** Estimated device bytes the run needs. Finite, >= 0. */
  bytes: number;
  /** Free text for errors and metrics. */
  label?: string;
  /**
   * The run's own expected seconds once admitted, without any queue wait (the ledger adds the wait
   * of the queue ahead itself; used by `estimatedWaitSeconds` and BUSY's retryAfterSeconds).
   */
  expectedSeconds?: number;
  /** Aborting while queued removes the waiter and rejects with CANCELLED. */
  signal?: AbortSignal;
  /**
   * Called with the 1-based queue position (1 = head) when the request is enqueued and each time
   * its position changes. Not called for requests admitted immediately, nor on admission (the
   * promise resolving is the admission signal). Exceptions thrown by the callback are ignored.
   */
  onQueued?: (position: number) => void;
}

export interface Reservation {
  readonly id: number;
  readonly bytes: number;
  readonly label: string | undefined;
  /** `performance.now()`-style ms timestamp of admission. */
  readonly startedAt: number;
  /** True once released. */
  readonly released: boolean;
  /** Frees the bytes and admits waiters. Idempotent. */
  release(): void;
}

export interface LedgerOptions {
  /** Device memory in bytes. */
  budgetBytes: number;
  /** Bytes kept free for the runtime, fragmentation etc. Effective budget = budgetBytes - headroomBytes. Default 0. */
  headroomBytes?: number;
  /** Most waiters allowed in the queue; 0 means never wait (BUSY when it doesn't fit now). */
  maxQueueLength: number;
  /** Device name, used in error messages and snapshots. */
  name?: string;
  /** Run time assumed for reservations without `expectedSeconds`. Default 1 s. */
  defaultExpectedSeconds?: number;
  /** Clock in ms; injectable for tests. Default `performance.now()`. */
  now?: () => number;
}

export interface LedgerSnapshot {
  name: string;
  /** Effective budget (device budget minus headroom). */
  budgetBytes: number;
  headroomBytes: number;
  reservedBytes: number;
  freeBytes: number;
  queued: number;
  queuedBytes: number;
  running: number;
}

interface Waiter {
  id: number;
  bytes: number;
  label: string | undefined;
  expectedSeconds: number;
  onQueued: ((position: number) => void) | undefined;
  lastPosition: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (r: Reservation) => void;
  reject: (e: unknown) => void;
}

interface Held {
  reservation: ReservationImpl;
  expectedSeconds: number;
}

class ReservationImpl implements Reservation {
  #released = false;
  constructor(
    readonly id: number,
    readonly bytes: number,
    readonly label: string | undefined,
    readonly startedAt: number,
    private readonly onRelease: (r: ReservationImpl) => void,
  ) {}

  get released(): boolean {
    return this.#released;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease(this);
  }
}

function cancelledError(label: string | undefined, name: string): GatewayError {
  return cancelled(`Request${label ? ` '${label}'` : ''} was cancelled while waiting for device memory on ${name}.`);
}

export class CapacityLedger {
  readonly name: string;
  readonly budgetBytes: number;
  readonly headroomBytes: number;
  readonly maxQueueLength: number;
  private readonly defaultExpectedSeconds: number;
  private readonly now: () => number;
  private reserved = 0;
  private nextId = 1;
  private readonly running = new Map<number, Held>();
  private readonly queue: Waiter[] = [];

  constructor(opts: LedgerOptions) {
    const headroom = opts.headroomBytes ?? 0;
    if (!Number.isFinite(opts.budgetBytes) || opts.budgetBytes < 0) {
      throw new RangeError(`budgetBytes must be a finite number >= 0, got ${opts.budgetBytes}`);
    }
    if (!Number.isFinite(headroom) || headroom < 0) {
      throw new RangeError(`headroomBytes must be a finite number >= 0, got ${headroom}`);
    }
    if (!Number.isInteger(opts.maxQueueLength) || opts.maxQueueLength < 0) {
      throw new RangeError(`maxQueueLength must be an integer >= 0, got ${opts.maxQueueLength}`);
    }
    this.name = opts.name ?? 'device';
    this.headroomBytes = headroom;
    this.budgetBytes = Math.max(0, opts.budgetBytes - headroom);
    this.maxQueueLength = opts.maxQueueLength;
    this.defaultExpectedSeconds = opts.defaultExpectedSeconds ?? 1;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * Reserve `req.bytes`. Resolves with the reservation once admitted. Rejects with
   * DOES_NOT_FIT (larger than the whole budget), BUSY (queue full; details.retryAfterSeconds),
   * CANCELLED (signal aborted before admission) or BAD_REQUEST (invalid bytes).
   */
  reserve(req: ReservationRequest): Promise<Reservation> {
    try {
      this.validate(req.bytes, req.label);
    } catch (e) {
      return Promise.reject(e);
    }
    if (req.signal?.aborted) return Promise.reject(cancelledError(req.label, this.name));
    const expectedSeconds = this.expectedOf(req.expectedSeconds);

    if (this.queue.length === 0 && this.fits(req.bytes)) {
      return Promise.resolve(this.admit(req.bytes, req.label, expectedSeconds));
    }
    if (this.queue.length >= this.maxQueueLength) {
      const retryAfterSeconds = Math.max(1, Math.ceil(this.retryAfterSeconds(req.bytes)));
      return Promise.reject(
        new GatewayError(
          'BUSY',
          `Device ${this.name} is busy: ${this.queue.length} request(s) already waiting ` +
            `(limit ${this.maxQueueLength}). Retry after ${retryAfterSeconds} s.`,
          { retryAfterSeconds },
        ),
      );
    }

    return new Promise<Reservation>((resolve, reject) => {
      const waiter: Waiter = {
        id: this.nextId++,
        bytes: req.bytes,
        label: req.label,
        expectedSeconds,
        onQueued: req.onQueued,
        lastPosition: 0,
        signal: req.signal,
        onAbort: undefined,
        resolve,
        reject,
      };
      if (req.signal) {
        waiter.onAbort = () => this.cancel(waiter);
        req.signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      this.notifyPositions(this.queue.length - 1);
    });
  }

  /**
   * Reserve now or not at all: returns null when the bytes don't fit or others are waiting
   * (respecting FIFO). Throws DOES_NOT_FIT / BAD_REQUEST like `reserve`.
   */
  tryReserve(bytes: number, opts: { label?: string; expectedSeconds?: number } = {}): Reservation | null {
    this.validate(bytes, opts.label);
    if (this.queue.length > 0 || !this.fits(bytes)) return null;
    return this.admit(bytes, opts.label, this.expectedOf(opts.expectedSeconds));
  }

  snapshot(): LedgerSnapshot {
    let queuedBytes = 0;
    for (const w of this.queue) queuedBytes += w.bytes;
    return {
      name: this.name,
      budgetBytes: this.budgetBytes,
      headroomBytes: this.headroomBytes,
      reservedBytes: this.reserved,
      freeBytes: this.budgetBytes - this.reserved,
      queued: this.queue.length,
      queuedBytes,
      running: this.running.size,
    };
  }

  /**
   * Estimated seconds until a request of `bytes` arriving now would be admitted.
   *
   * Model (simple, deterministic): each running reservation ends at
   * `startedAt + expectedSeconds` (overdue ones are assumed to end now); the queued waiters and
   * then the new request are admitted in FIFO order, each as soon as enough running bytes have
   * ended, and each then runs for its own expectedSeconds. The result is the admission time of
   * the new request. 0 when it would be admitted now; Infinity when it can never fit.
   * `expectedSeconds` defaults to `defaultExpectedSeconds` (1 s).
   */
  estimatedWaitSeconds(bytes: number): number {
    if (!(bytes <= this.budgetBytes)) return Infinity;
    return this.simulate(bytes).admittedAt;
  }

  /**
   * Estimated seconds until a request of `bytes` refused as BUSY now would be taken: until the queue
   * has room again (the waiter at index `queued - maxQueueLength` is admitted), or, with no queue
   * allowed, until the request itself would be admitted.
   */
  retryAfterSeconds(bytes: number): number {
    if (!(bytes <= this.budgetBytes)) return Infinity;
    const { admittedAt, waiterStarts } = this.simulate(bytes);
    const slot = this.queue.length - this.maxQueueLength;
    return this.maxQueueLength === 0 || slot < 0 ? admittedAt : waiterStarts[slot];
  }

  /**
   * The FIFO admission of the queue and then of `bytes`, simulated over expected run times: when
   * each waiter starts (seconds from now) and when the new request would.
   */
  private simulate(bytes: number): { admittedAt: number; waiterStarts: number[] } {
    const nowMs = this.now();
    // Simulated running set: [endSecondsFromNow, bytes], kept sorted by end time.
    const ends: Array<[number, number]> = [];
    for (const { reservation, expectedSeconds } of this.running.values()) {
      const elapsed = (nowMs - reservation.startedAt) / 1000;
      ends.push([Math.max(0, expectedSeconds - elapsed), reservation.bytes]);
    }
    ends.sort((a, b) => a[0] - b[0]);
    let free = this.budgetBytes - this.reserved;
    let t = 0;
    const admitAt = (need: number): number => {
      while (free < need && ends.length > 0) {
        const [end, b] = ends.shift()!;
        t = Math.max(t, end);
        free += b;
      }
      return t;
    };
    const insert = (end: number, b: number): void => {
      let i = ends.length;
      while (i > 0 && ends[i - 1][0] > end) i--;
      ends.splice(i, 0, [end, b]);
    };
    const waiterStarts: number[] = [];
    for (const w of this.queue) {
      const start = admitAt(w.bytes);
      waiterStarts.push(start);
      free -= w.bytes;
      insert(start + w.expectedSeconds, w.bytes);
    }
    return { admittedAt: admitAt(bytes), waiterStarts };
  }

  // ---------------------------------------------------------------------------------------------

  private validate(bytes: number, label: string | undefined): void {
    if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) {
      throw new GatewayError('BAD_REQUEST', `Reservation bytes must be a finite number >= 0, got ${bytes}.`, {
        bytes,
      });
    }
    if (bytes > this.budgetBytes) {
      throw new GatewayError(
        'DOES_NOT_FIT',
        `Request${label ? ` '${label}'` : ''} needs ${bytes} bytes ` +
          `but device ${this.name} has a budget of ${this.budgetBytes} bytes ` +
          `(after ${this.headroomBytes} bytes headroom).`,
        { requiredBytes: bytes, budgetBytes: this.budgetBytes, device: this.name },
      );
    }
  }

  private expectedOf(s: number | undefined): number {
    return s !== undefined && Number.isFinite(s) && s >= 0 ? s : this.defaultExpectedSeconds;
  }

  private fits(bytes: number): boolean {
    return this.reserved + bytes <= this.budgetBytes;
  }

  private admit(bytes: number, label: string | undefined, expectedSeconds: number): ReservationImpl {
    const r = new ReservationImpl(this.nextId++, bytes, label, this.now(), (x) => this.onRelease(x));
    this.reserved += bytes;
    this.running.set(r.id, { reservation: r, expectedSeconds });
    return r;
  }

  private onRelease(r: ReservationImpl): void {
    if (!this.running.delete(r.id)) return;
    this.reserved -= r.bytes;
    this.pump();
  }

  /** Admit from the head while the head fits (strict FIFO). */
  private pump(): void {
    let admitted = 0;
    while (this.queue.length > 0 && this.fits(this.queue[0].bytes)) {
      const w = this.queue.shift()!;
      this.detach(w);
      w.resolve(this.admit(w.bytes, w.label, w.expectedSeconds));
      admitted++;
    }
    if (admitted > 0) this.notifyPositions(0);
  }

  private cancel(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i < 0) return;
    this.queue.splice(i, 1);
    this.detach(w);
    w.reject(cancelledError(w.label, this.name));
    this.notifyPositions(i);
    // The cancelled waiter may have been the head blocking others that fit now.
    if (i === 0) this.pump();
  }

  private detach(w: Waiter): void {
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.onAbort = undefined;
  }

  private notifyPositions(from: number): void {
    for (let i = from; i < this.queue.length; i++) {
      const w = this.queue[i];
      const position = i + 1;
      if (w.lastPosition === position) continue;
      w.lastPosition = position;
      if (!w.onQueued) continue;
      try {
        w.onQueued(position);
      } catch {
        // A progress callback must not break the ledger.
      }
    }
  }
}

/** Reserve, run `fn`, and release in `finally` (on success, failure or cancellation). */
export async function withReservation<T>(
  ledger: CapacityLedger,
  req: ReservationRequest,
  fn: (reservation: Reservation) => Promise<T>,
): Promise<T> {
  const reservation = await ledger.reserve(req);
  try {
    return await fn(reservation);
  } finally {
    reservation.release();
  }
}
