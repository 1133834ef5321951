/**
 * Host memory ledger (`HOST_MEMORY`): the bytes requests hold in this process outside the device's
 * runs, counted from the moment a request is accepted, so queued work cannot run the machine out of
 * memory. The device ledger (ledger.ts) counts what runs hold on the device; this one counts the rest.
 *
 * An admission has two parts:
 * - `baseBytes`, held from acceptance until released: the compressed input, and the result until it
 *   is delivered (a job's result until the job expires, see `keep`).
 * - `workBytes`, held only while `work()` runs: decoded pixels, float tensors, outputs. `work()` waits
 *   in a FIFO queue until they fit, so a queued job holds its base (compressed input) only.
 *
 * Admission rule (no deadlock, RSS bounded): a request is accepted only if, with it, the bases held
 * plus the largest work still to start fit the budget, and its base fits what is free now. Then the
 * head of the work queue always fits once the running work ends, whatever else was accepted.
 * Otherwise BUSY with `retryAfterSeconds`: when that would hold, simulated from the expected seconds
 * of the running and queued work (FIFO, as memory frees) and the expiry of kept results.
 * Holds (`hold`) count bytes that already exist (the result store's entries) and are never refused.
 */
import { cancelled, GatewayError } from '../errors.js';

export interface HostAdmissionRequest {
  /** Held from acceptance until release: compressed input, the result awaiting delivery. */
  baseBytes: number;
  /** Held only while `work()` runs: decoded pixels, tensors, outputs. */
  workBytes: number;
  /** The work's own expected seconds once it starts (no queue wait), for retry estimates. */
  workSeconds: number;
  /** Free text for errors. */
  label: string;
}

export interface HostSnapshot {
  budgetBytes: number;
  /** Bytes held now: every base, the running work, and holds. */
  heldBytes: number;
  /** Admissions whose work has not started (queued or not yet asked). */
  pending: number;
  /** Admissions whose work runs now. */
  running: number;
}

interface Entry {
  base: number;
  work: number;
  workSeconds: number;
  /** performance.now() ms when the work started; null while pending. */
  startedAt: number | null;
  /** performance.now() ms when the base is expected to be released (kept results, store entries). */
  releaseAt: number | null;
  done: boolean;
}

/** One accepted request's host memory. */
export class HostAdmission {
  #released = false;

  constructor(
    private readonly ledger: HostLedger,
    /** @internal */ readonly entry: Entry,
    readonly label: string,
  ) {}

  /**
   * Waits (FIFO) until the work bytes fit and holds them until `release` (for handlers that release
   * when their response closes); `work` is the scoped form.
   */
  start(signal?: AbortSignal): Promise<void> {
    return this.ledger.startWork(this, signal);
  }

  /** Waits (FIFO) until the work bytes fit, holds them while `fn` runs, and frees them after. */
  async work<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.start(signal);
    try {
      return await fn();
    } finally {
      this.ledger.endWork(this);
    }
  }

  /** Keeps `bytes` of the base (the result) for `seconds` more, then releases it; frees the rest now. */
  keep(bytes: number, seconds: number): void {
    if (this.#released) return;
    this.ledger.shrinkBase(this, Math.min(bytes, this.entry.base), seconds);
    setTimeout(() => this.release(), seconds * 1000).unref();
  }

  /** Frees the base (and queued work). Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.ledger.drop(this);
  }
}

interface Waiter {
  admission: HostAdmission;
  resolve: () => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class HostLedger {
  readonly budgetBytes: number;
  private readonly entries = new Set<Entry>();
  private readonly queue: Waiter[] = [];
  private held = 0;

  constructor(
    budgetBytes: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!Number.isFinite(budgetBytes) || budgetBytes <= 0)
      throw new RangeError(`HOST_MEMORY must be a positive number of bytes, got ${budgetBytes}`);
    this.budgetBytes = budgetBytes;
  }

  /** Accepts the request (its base is held from now) or throws BUSY / DOES_NOT_FIT naming HOST_MEMORY. */
  admit(req: HostAdmissionRequest): HostAdmission {
    const { baseBytes, workBytes } = req;
    for (const [name, v] of Object.entries({ baseBytes, workBytes, workSeconds: req.workSeconds }))
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
    if (baseBytes + workBytes > this.budgetBytes) {
      throw new GatewayError(
        'DOES_NOT_FIT',
        `${req.label} needs ${mib(baseBytes + workBytes)} of host memory ` +
          `(input and result ${mib(baseBytes)}, decoded pixels and tensors ${mib(workBytes)}); ` +
          `HOST_MEMORY is ${mib(this.budgetBytes)}`,
        { requiredBytes: baseBytes + workBytes, budgetBytes: this.budgetBytes, limit: 'HOST_MEMORY' },
      );
    }
    if (!this.accepts(baseBytes, workBytes, this.currentState())) {
      const retryAfterSeconds = Math.max(1, Math.ceil(this.retryAfterSeconds(baseBytes, workBytes)));
      throw new GatewayError(
        'BUSY',
        `host memory is busy: ${mib(this.held)} of HOST_MEMORY ${mib(this.budgetBytes)} is held by accepted ` +
          `requests and ${req.label} needs ${mib(baseBytes + workBytes)}. Retry after ${retryAfterSeconds} s.`,
        { retryAfterSeconds, limit: 'HOST_MEMORY', budgetBytes: this.budgetBytes, heldBytes: this.held },
      );
    }
    const entry: Entry = {
      base: baseBytes,
      work: workBytes,
      workSeconds: req.workSeconds,
      startedAt: null,
      releaseAt: null,
      done: false,
    };
    this.entries.add(entry);
    this.held += baseBytes;
    return new HostAdmission(this, entry, req.label);
  }

  /** Counts `bytes` that already exist until `release` (called by their owner, e.g. on expiry). */
  hold(bytes: number, expectedSeconds: number): { release(): void } {
    const entry: Entry = {
      base: bytes,
      work: 0,
      workSeconds: 0,
      startedAt: null,
      releaseAt: this.now() + expectedSeconds * 1000,
      done: true,
    };
    this.entries.add(entry);
    this.held += bytes;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.entries.delete(entry);
        this.held -= entry.base;
        this.pump();
      },
    };
  }

  snapshot(): HostSnapshot {
    let pending = 0;
    let running = 0;
    for (const e of this.entries) {
      if (e.startedAt !== null && !e.done) running++;
      else if (e.startedAt === null && !e.done) pending++;
    }
    return { budgetBytes: this.budgetBytes, heldBytes: this.held, pending, running };
  }

  /**
   * Seconds until a request of `baseBytes` + `workBytes` would be accepted: running work ends at its
   * expected seconds, queued work starts in FIFO order as memory frees and then runs its own seconds,
   * kept results and store entries go at their expiry. Infinity when nothing frees enough.
   */
  retryAfterSeconds(baseBytes: number, workBytes: number): number {
    const nowMs = this.now();
    const state = this.currentState();
    // Base and work releases to come: [seconds from now, base bytes, work bytes].
    const events: Array<[number, number, number]> = [];
    const later = (ms: number | null) => (ms === null ? Infinity : Math.max(0, (ms - nowMs) / 1000));
    for (const e of this.entries) {
      if (e.startedAt !== null && !e.done) {
        const end = Math.max(0, e.workSeconds - (nowMs - e.startedAt) / 1000);
        events.push([end, 0, e.work]);
        // A running request's base goes when it answers, unless kept (then at its expiry).
        events.push([e.releaseAt === null ? end : later(e.releaseAt), e.base, 0]);
      } else if (e.done) {
        // Finished and not kept: answering now.
        events.push([e.releaseAt === null ? 0 : later(e.releaseAt), e.base, 0]);
      }
    }
    const pendingQueue = [...this.entries].filter((e) => e.startedAt === null && !e.done);
    let t = 0;
    let free = this.budgetBytes - state.held;
    let pendingWork = pendingQueue.map((e) => e.work);
    const sorted = () => events.sort((a, b) => a[0] - b[0]);
    sorted();
    const advance = () => {
      const [at, base, work] = events.shift()!;
      t = Math.max(t, at);
      free += base + work;
      state.bases -= base;
    };
    for (;;) {
      // Start queued work, FIFO, while the head fits.
      while (pendingQueue.length > 0 && pendingQueue[0].work <= free) {
        const e = pendingQueue.shift()!;
        pendingWork = pendingWork.slice(1);
        free -= e.work;
        events.push([t + e.workSeconds, e.base, e.work]);
        sorted();
      }
      state.maxPendingWork = Math.max(0, ...pendingWork);
      state.held = this.budgetBytes - free;
      if (this.accepts(baseBytes, workBytes, state)) return t;
      if (events.length === 0 || events[0][0] === Infinity) return Infinity;
      advance();
    }
  }

  // ---------------------------------------------------------------------------------------------

  /** @internal */
  startWork(admission: HostAdmission, signal: AbortSignal | undefined): Promise<void> {
    const entry = admission.entry;
    if (entry.startedAt !== null || entry.done) return Promise.reject(new Error('work() runs once per admission'));
    if (signal?.aborted) return Promise.reject(cancelled());
    if (this.queue.length === 0 && this.held + entry.work <= this.budgetBytes) {
      this.begin(entry);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { admission, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const i = this.queue.indexOf(waiter);
          if (i < 0) return;
          this.queue.splice(i, 1);
          reject(cancelled(`${admission.label} was cancelled while waiting for host memory`));
          this.pump();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
  }

  /** @internal */
  endWork(admission: HostAdmission): void {
    const entry = admission.entry;
    if (entry.done) return;
    entry.done = true;
    this.held -= entry.work;
    this.pump();
  }

  /** @internal */
  shrinkBase(admission: HostAdmission, bytes: number, seconds: number): void {
    const entry = admission.entry;
    this.held -= entry.base - bytes;
    entry.base = bytes;
    entry.releaseAt = this.now() + seconds * 1000;
    this.pump();
  }

  /** @internal */
  drop(admission: HostAdmission): void {
    const entry = admission.entry;
    if (!this.entries.delete(entry)) return;
    this.held -= entry.base;
    if (entry.startedAt !== null && !entry.done) {
      entry.done = true;
      this.held -= entry.work;
    }
    const i = this.queue.findIndex((w) => w.admission === admission);
    if (i >= 0) {
      const [w] = this.queue.splice(i, 1);
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.reject(cancelled(`${admission.label} was released while waiting for host memory`));
    }
    entry.done = true;
    this.pump();
  }

  private begin(entry: Entry): void {
    entry.startedAt = this.now();
    this.held += entry.work;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.held + this.queue[0].admission.entry.work <= this.budgetBytes) {
      const w = this.queue.shift()!;
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      this.begin(w.admission.entry);
      w.resolve();
    }
  }

  private currentState(): { held: number; bases: number; maxPendingWork: number } {
    let bases = 0;
    let maxPendingWork = 0;
    for (const e of this.entries) {
      bases += e.base;
      if (e.startedAt === null && !e.done) maxPendingWork = Math.max(maxPendingWork, e.work);
    }
    return { held: this.held, bases, maxPendingWork };
  }

  private accepts(base: number, work: number, s: { held: number; bases: number; maxPendingWork: number }): boolean {
    return s.held + base <= this.budgetBytes && s.bases + base + Math.max(s.maxPendingWork, work) <= this.budgetBytes;
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
