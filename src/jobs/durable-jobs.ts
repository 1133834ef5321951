/**
 * Jobs on a shared BullMQ queue (REDIS_URL): any instance submits, reads, cancels and follows any job;
 * each instance's worker runs the jobs it has room for.
 *
 * - The queue entry is small (operation, model, the run's size); the spec lives in the job's hash and
 *   the input bytes in a binary key (src/jobs/redis-job-log.ts): BullMQ reads and rewrites its entry
 *   on every fetch, hand-back and stalled check, and an image as base64 there would cost a third more
 *   memory and a JSON parse each time; the bytes are read once, by the instance that runs the job.
 * - An instance takes a job only when its ledger would admit the run now (no queue, the planned bytes
 *   free) or the router sends it upstream; otherwise it hands the job back with a short delay for
 *   another instance (or itself, later) rather than holding it while it waits.
 * - A job whose instance died keeps its lock until JOB_LOCK_MS passes; another instance's stalled
 *   check (every JOB_STALLED_INTERVAL_MS) puts it back and it runs again. Its terminal event, which
 *   carries the result, is written once (the log's Lua script refuses a second), so a job run twice
 *   still has one outcome.
 * - cancelJob sets the job's cancel flag and announces it; a queued job leaves the queue at once, a
 *   running one is aborted by the instance that runs it.
 */
import { hostname } from 'node:os';
import { type Job as BullJob, DelayedError, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Ticket } from '../auth/limiter.js';
import { issueId } from '../common/ids.js';
import type { Config } from '../config/config.js';
import { cancelled, GatewayError, isCancellation } from '../errors.js';
import { type Observability, reportAnswer } from '../observability/answers.js';
import { resultCost } from '../pipeline/compute-cost.js';
import type { CapacityLedger } from '../routing/ledger.js';
import type { ExecuteHooks } from '../routing/router.js';
import type { Services } from '../schema/builder.js';
import { type RedisSettings, redisOptions, viaRedis } from '../storage/redis-client.js';
import type { JobBackend } from './backend.js';
import { fromJson, toJson } from './codec.js';
import type { JobEvent, JobEventBody, JobOperation, JobView } from './events.js';
import { type JobRun, toJobError } from './manager.js';
import { JobEventFeed, type JobRecord, RedisJobLog } from './redis-job-log.js';
import { inputOf, type JobSpec, planHere, prepareRun, type RunSize, runSize, withInput } from './runs.js';

interface QueuedJob {
  operation: JobOperation;
  model: string;
  size: RunSize | null;
}

/** How long a job this instance has no room for waits before any instance looks at it again. */
const HAND_BACK_DELAY_MS = 150;
/**
 * Starts a job's run may have: a job whose instance died this often (a run that kills its process,
 * say) ends FAILED rather than taking down one instance after another. BullMQ's own stall limit is
 * set above it, so the job is still queued when the next instance finds the count spent and writes
 * the terminal event.
 */
const MAX_RUNS = 5;
const MAX_STALLED = MAX_RUNS + 1;
/**
 * Attempts of the processor itself: it throws only when Redis fails it (every job-level failure is a
 * FAILED event), so BullMQ tries again after a backoff; after the last, the job ends FAILED if Redis
 * lets that be written.
 */
const PROCESS_ATTEMPTS = 5;
const PROCESS_BACKOFF_MS = 1000;
/** How long one step of closing may wait on Redis. */
const CLOSE_STEP_MS = 2000;

/** The abort reason of runs handed back while this instance drains. */
const HAND_BACK = cancelled('the instance is shutting down; the job goes back to the queue');

export class DurableJobs implements JobBackend {
  /** This instance, as recorded on the jobs it starts. */
  readonly runner = `${hostname()}:${process.pid}`;
  private readonly log: RedisJobLog;
  private readonly feed: JobEventFeed;
  private readonly queue: Queue<QueuedJob>;
  private worker: Worker<QueuedJob> | null = null;
  /** The worker's own connection: BullMQ leaves a connection it was given open on close. */
  private workerConnection: Redis | null = null;
  private services: Services | null = null;
  private ledger: CapacityLedger | null = null;
  /** Runs in this instance by job id. */
  private readonly running = new Map<string, AbortController>();
  /** Bytes of taken jobs not yet admitted by the ledger, and how many taken jobs' sizes are unknown. */
  private claimedBytes = 0;
  private claimedUnknown = 0;
  private draining = false;

  private constructor(
    private readonly config: Config,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly observability: Observability | null,
  ) {
    const prefix = config.redisPrefix;
    this.log = new RedisJobLog(redis, prefix, config.jobTtlSeconds);
    this.feed = new JobEventFeed(this.log, subscriber);
    this.queue = new Queue<QueuedJob>('jobs', { connection: redis, prefix: `${prefix}bull` });
    subscriber.on('message', (channel: string, id: string) => {
      if (channel === this.log.cancelChannel)
        this.running.get(id)?.abort(cancelled('the job was cancelled (cancelJob)'));
    });
  }

  static async connect(
    config: Config,
    target: RedisSettings,
    observability: Observability | null,
    /** Whether Redis answered at start; if not, nothing here waits for it. */
    redisUp = true,
  ): Promise<DurableJobs> {
    // The bounded options (a command fails after REDIS_COMMAND_TIMEOUT_MS), but no retry cap: BullMQ asks for that.
    const redis = new Redis(target.url, { ...redisOptions(target), maxRetriesPerRequest: null });
    // The SUBSCRIBE waits for a connection (no timeout) and ioredis renews it after each reconnection.
    const subscriber = new Redis(target.url, {
      ...redisOptions(target),
      maxRetriesPerRequest: null,
      commandTimeout: undefined,
    });
    for (const connection of [redis, subscriber])
      connection.on('error', (error: Error) => observability?.logger.warn({ error: error.message }, 'redis (jobs)'));
    const jobs = new DurableJobs(config, redis, subscriber, observability);
    const subscribed = subscriber.subscribe(jobs.log.eventsChannel, jobs.log.cancelChannel);
    // A degraded start (REDIS_REQUIRED=false, Redis down) goes on; the subscription is made when Redis answers.
    if (redisUp) await subscribed;
    else
      subscribed.catch((error: Error) =>
        observability?.logger.warn({ error: error.message }, 'redis (jobs): job events not subscribed'),
      );
    return jobs;
  }

  /** Starts taking jobs from the queue; `services` run them, `ledger` says whether there is room. */
  start(services: Services, ledger: CapacityLedger): void {
    this.services = services;
    this.ledger = ledger;
    const { lockMs, stalledIntervalMs, concurrency } = this.config.jobQueue;
    // No command timeout here: the worker's blocking fetch waits longer than any command should.
    this.workerConnection = this.redis.duplicate({ maxRetriesPerRequest: null, commandTimeout: undefined });
    this.worker = new Worker<QueuedJob>('jobs', (job, token) => this.process(job, token), {
      connection: this.workerConnection,
      prefix: `${this.config.redisPrefix}bull`,
      concurrency,
      lockDuration: lockMs,
      stalledInterval: stalledIntervalMs,
      maxStalledCount: MAX_STALLED,
    });
    this.worker.on('error', (error) => this.observability?.logger.warn({ error: error.message }, 'job worker'));
    this.worker.on('failed', (job, error) => {
      if (!job?.id || job.attemptsMade < (job.opts.attempts ?? 1)) return;
      void this.giveUp(job.id, error.message);
    });
  }

  /** The processor's last attempt failed (Redis): end the job FAILED, once, if Redis takes the write now. */
  private async giveUp(id: string, reason: string): Promise<void> {
    try {
      const record = await this.log.record(id);
      if (record && !record.finished)
        await this.end(record, {
          type: 'FAILED',
          error: {
            code: 'SERVICE_UNAVAILABLE',
            message: `the job could not be run: Redis failed it ${PROCESS_ATTEMPTS} times (${reason})`,
            retryAfterSeconds: null,
          },
        });
    } catch (error) {
      this.observability?.logger.warn({ job: id, error: (error as Error).message }, 'job given up without an end');
    }
  }

  private get ready(): Services {
    if (!this.services) throw new Error('DurableJobs.start was not called');
    return this.services;
  }

  /**
   * Records the job and its input in Redis and queues it; `owner` keeps its URL results, `ticket` is
   * settled when the job ends, by whichever instance ends it.
   */
  async submit(spec: JobSpec, owner: string | null, ticket: Ticket | null = null): Promise<JobView> {
    const id = issueId();
    const { operation, request } = spec;
    const size = await runSize(this.ready, spec);
    const record = { id, operation, model: request.model, owner, ticket, createdAt: new Date() };
    return viaRedis('submitting a job', async () => {
      await this.log.create(record, toJson(withInput(spec, null)), inputOf(spec));
      await this.queue.add(
        'run',
        { operation, model: request.model, size },
        {
          jobId: id,
          removeOnComplete: true,
          removeOnFail: true,
          attempts: PROCESS_ATTEMPTS,
          backoff: { type: 'exponential', delay: PROCESS_BACKOFF_MS },
        },
      );
      return this.log.view(id);
    });
  }

  get(id: string): Promise<JobView> {
    return viaRedis('reading a job', () => this.log.view(id));
  }

  cancel(id: string): Promise<JobView> {
    return viaRedis('cancelling a job', () => this.cancelHere(id));
  }

  private async cancelHere(id: string): Promise<JobView> {
    await this.log.view(id);
    if (await this.log.requestCancel(id)) {
      // Still queued (waiting or handed back): it leaves the queue here; a running job's lock refuses this.
      const queued = await this.queue.getJob(id);
      const removed = queued
        ? await queued.remove().then(
            () => true,
            () => false,
          )
        : false;
      const record = removed && (await this.log.record(id));
      if (record)
        await this.end(record, { type: 'CANCELLED', reason: 'the job was cancelled (cancelJob) while queued' });
    }
    return this.log.view(id);
  }

  subscribe(id: string): Promise<AsyncIterableIterator<JobEvent>> {
    return viaRedis('following a job', () => this.feed.follow(id));
  }

  /**
   * Appends the job's terminal event; the instance whose event was taken (the first; a rerun's is
   * refused) settles its quota ticket: a DONE run's measured cost, anything else 0.
   */
  private async end(record: JobRecord, body: Extract<JobEventBody, { type: 'DONE' | 'FAILED' | 'CANCELLED' }>) {
    const taken = (await this.log.append(record.id, body)) !== null;
    if (taken && record.ticket)
      await this.ready.limiter.settle(
        record.ticket,
        body.type === 'DONE' ? resultCost(record.operation, body.result) : 0,
      );
  }

  /**
   * Stops taking jobs, lets runs here finish for up to `deadlineMs`, then aborts the rest and puts
   * them back on the queue for another instance (they run again from the start).
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    // Pausing tells Redis too; a Redis that is down must not hold the drain (draining already refuses new claims).
    if (this.worker) await within(CLOSE_STEP_MS, this.worker.pause(true));
    const end = Date.now() + deadlineMs;
    while (this.running.size > 0 && Date.now() < end) await sleep(25);
    for (const controller of this.running.values()) controller.abort(HAND_BACK);
    // A run stops at its next tile boundary.
    while (this.running.size > 0 && Date.now() < end + 5000) await sleep(25);
  }

  /** Bounded: with Redis gone, BullMQ's close and QUIT would wait for it forever; then the connections are cut. */
  async close(): Promise<void> {
    await within(CLOSE_STEP_MS, this.drain(0));
    if (this.worker) await within(CLOSE_STEP_MS, closeWorker(this.worker));
    await within(CLOSE_STEP_MS, this.queue.close());
    for (const connection of [this.workerConnection, this.subscriber, this.redis]) {
      if (!connection) continue;
      if (connection.status === 'ready') await within(CLOSE_STEP_MS, connection.quit());
      connection.disconnect();
    }
  }

  private async process(bull: BullJob<QueuedJob>, token: string | undefined): Promise<void> {
    const id = bull.id!;
    const handBack = async (delayMs: number): Promise<never> => {
      await bull.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError();
    };
    if (this.draining) await handBack(0);
    const claim = this.claim(bull.data);
    if (!claim) await handBack(HAND_BACK_DELAY_MS);
    const controller = new AbortController();
    this.running.set(id, controller);
    try {
      const stored = await this.log.runInput(id);
      // Gone (expired) or already ended (a retry after the terminal event was written): nothing to run.
      if (!stored || stored.record.finished) return;
      if (stored.record.cancelRequested) {
        await this.end(stored.record, { type: 'CANCELLED', reason: 'the job was cancelled (cancelJob) while queued' });
        return;
      }
      if (stored.record.runs >= MAX_RUNS) {
        await this.end(stored.record, {
          type: 'FAILED',
          error: {
            code: 'INTERNAL',
            message: `the job's run was started ${stored.record.runs} times and its instance was lost each time; not run again`,
            retryAfterSeconds: null,
          },
        });
        return;
      }
      const spec = withInput(fromJson<JobSpec>(stored.spec), stored.input && new Uint8Array(stored.input));
      const owner = stored.record.owner;
      let run: JobRun;
      try {
        run = await prepareRun(owner ? { ...this.ready, owner } : this.ready, spec);
      } catch (error) {
        // No host memory here now: another instance (or this one, later) takes it.
        if (error instanceof GatewayError && error.code === 'BUSY') return await handBack(HAND_BACK_DELAY_MS);
        await this.finish(stored.record, error, controller);
        return;
      }
      await this.log.started(id, this.runner);
      await this.execute(stored.record, run, controller, claim!, handBack);
    } finally {
      claim?.release();
      this.running.delete(id);
    }
  }

  /**
   * Room here for the job now: its planned bytes free on the ledger with nobody waiting (or a route
   * that holds nothing here: upstream, or REJECT, which fails the same wherever it runs); a job of
   * unknown size only on an idle device. Null: leave it for another instance.
   */
  private claim(job: QueuedJob): { release(): void } | null {
    const ledger = this.ledger!.snapshot();
    const plan =
      job.size && job.operation !== 'img2img' ? planHere(this.ready, job.operation, job.model, job.size) : null;
    if (plan && plan.route !== 'LOCAL' && plan.route !== 'TILED') return { release() {} };
    if (ledger.queued > 0) return null;
    if (plan) {
      if (this.claimedBytes + plan.bytes > ledger.freeBytes) return null;
      this.claimedBytes += plan.bytes;
      return once(() => (this.claimedBytes -= plan.bytes));
    }
    if (ledger.reservedBytes > 0 || this.claimedBytes > 0 || this.claimedUnknown > 0) return null;
    this.claimedUnknown += 1;
    return once(() => (this.claimedUnknown -= 1));
  }

  /** Runs the job with its events appended in order, then appends its one terminal event. */
  private async execute(
    record: JobRecord,
    run: JobRun,
    controller: AbortController,
    claim: { release(): void },
    handBack: (delayMs: number) => Promise<never>,
  ): Promise<void> {
    let chain = Promise.resolve();
    const emit = (body: JobEventBody) => {
      chain = chain.then(
        () => this.log.append(record.id, body).then(() => undefined),
        () => undefined,
      );
    };
    const hooks: ExecuteHooks = {
      signal: controller.signal,
      onRouted: (plan) => emit({ type: 'ROUTED', plan }),
      onQueued: (position) => emit({ type: 'QUEUED', position }),
      onStarted: (total) => {
        // Admitted: the ledger counts it now.
        claim.release();
        emit({ type: 'RUNNING', done: 0, total });
      },
      onProgress: (done, total) => emit({ type: 'RUNNING', done, total }),
    };
    let outcome: { result: Awaited<ReturnType<JobRun>> } | { error: unknown };
    try {
      outcome = { result: await run(hooks, { signal: controller.signal, emit }) };
    } catch (error) {
      outcome = { error };
    }
    await chain.catch(() => undefined);
    const handedBack = controller.signal.reason === HAND_BACK;
    if ('result' in outcome) {
      await this.end(
        record,
        controller.signal.aborted && !handedBack
          ? {
              type: 'CANCELLED',
              reason: 'cancelled; the run had already finished its last step, its result was discarded',
            }
          : { type: 'DONE', result: outcome.result },
      );
    } else if (handedBack) await handBack(0);
    else await this.finish(record, outcome.error, controller);
  }

  private async finish(record: JobRecord, error: unknown, controller: AbortController): Promise<void> {
    if (controller.signal.aborted || isCancellation(error)) {
      await this.end(record, {
        type: 'CANCELLED',
        reason: isCancellation(error) ? error.message : 'cancelled',
      });
      return;
    }
    if (this.observability) {
      const { logger, metrics } = this.observability;
      const fields = { job: record.id, model: record.model, operation: record.operation };
      reportAnswer({ logger: logger.child(fields), metrics }, 'job', error);
    }
    await this.end(record, { type: 'FAILED', error: toJobError(error) });
  }
}

/**
 * `worker.close()`, then the stalled checker's timer stopped: BullMQ (5.x) stops that timer in close,
 * but a check still in flight then arms a new one (JOB_STALLED_INTERVAL_MS) that keeps the process
 * alive; it is stopped here once armed, through the worker's own (untyped) stopper.
 */
async function closeWorker(worker: Worker): Promise<void> {
  await worker.close();
  const internals = worker as unknown as { stalledCheckerRunning?: boolean; stalledCheckStopper?: () => void };
  for (let i = 0; internals.stalledCheckerRunning && i < 200; i++) {
    internals.stalledCheckStopper?.();
    await sleep(5);
  }
}

function once(release: () => void): { release(): void } {
  let done = false;
  return {
    release() {
      if (!done) release();
      done = true;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `work` at most `ms` (its failure is ignored: closing goes on either way). */
async function within(ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => {}), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
