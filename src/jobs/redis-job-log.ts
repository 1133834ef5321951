/**
 * Jobs' state in Redis, shared by every instance: per job a hash (operation, model, owner, creation
 * time, status, the cancel flag, and `finished` once the terminal event is in), a list of its events
 * (entry i has `seq` i + 1), its input bytes, and a tombstone that outlives them by one TTL so a late
 * caller hears EXPIRED rather than NOT_FOUND. Every write renews the TTL (JOB_TTL_SECONDS).
 *
 * Events are appended by one Lua script that numbers them, keeps the status, refuses anything after a
 * terminal event, and publishes the entry, all in one step: so a job retried after its instance died
 * still has one terminal event and one result (the DONE entry, written once for the job id), and
 * subscribers see events in the order of the list.
 */

import type { Redis } from 'ioredis';
import type { Ticket } from '../auth/limiter.js';
import { GatewayError } from '../errors.js';
import { fromJson, toJson } from './codec.js';
import {
  applyEvent,
  compactLog,
  isTerminal,
  type JobEvent,
  type JobEventBody,
  type JobOperation,
  type JobStateFields,
  type JobView,
} from './events.js';

/**
 * KEYS: hash, events, tombstone; ARGV: the event's JSON less its opening brace, its type, ttl ms,
 * channel. Returns the new seq, 0 when the job already ended, -1 when it is gone. The status rule is
 * `statusAfter` (src/jobs/events.ts) in Lua.
 */
const APPEND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'finished') == 1 then return 0 end
local t = ARGV[2]
local status = t
if t == 'QUEUED' or t == 'ROUTED' then
  status = (redis.call('HGET', KEYS[1], 'status') == 'RUNNING') and 'RUNNING' or 'QUEUED'
end
local seq = redis.call('LLEN', KEYS[2]) + 1
local entry = '{"seq":' .. seq .. ',"status":"' .. status .. '",' .. ARGV[1]
redis.call('RPUSH', KEYS[2], entry)
redis.call('HSET', KEYS[1], 'status', status)
if t == 'DONE' or t == 'FAILED' or t == 'CANCELLED' then redis.call('HSET', KEYS[1], 'finished', seq) end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], '1', 'PX', 2 * tonumber(ARGV[3]))
redis.call('PUBLISH', ARGV[4], entry)
return seq
`;

export interface JobRecord {
  id: string;
  operation: JobOperation;
  model: string;
  owner: string | null;
  /** The quota reservation its end settles (src/auth/limiter.ts); null without API keys. */
  ticket: Ticket | null;
  createdAt: Date;
  cancelRequested: boolean;
  finished: boolean;
  /** How many times an instance has started its run (src/jobs/durable-jobs.ts bounds the reruns). */
  runs: number;
}

/** A job read from Redis: the hash, and its state replayed from the event log. */
class StoredJob implements JobView {
  status: JobView['status'] = 'QUEUED';
  plan: JobView['plan'] = null;
  queuePosition: number | null = null;
  progress: JobView['progress'] = null;
  startedAt: Date | null = null;
  finishedAt: Date | null = null;
  expiresAt: Date | null = null;
  result: JobView['result'] = null;
  error: JobView['error'] = null;
  readonly id: string;
  readonly operation: JobOperation;
  readonly model: string;
  readonly createdAt: Date;
  readonly cancelRequested: boolean;

  constructor(
    record: JobRecord,
    readonly events: readonly JobEvent[],
    ttlMs: number,
  ) {
    ({ id: this.id, operation: this.operation, model: this.model, createdAt: this.createdAt } = record);
    this.cancelRequested = record.cancelRequested;
    for (const event of events) applyEvent(this as JobStateFields, event, ttlMs);
  }
}

export class RedisJobLog {
  readonly eventsChannel: string;
  readonly cancelChannel: string;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly ttlSeconds: number,
  ) {
    this.eventsChannel = `${prefix}jobs:events`;
    this.cancelChannel = `${prefix}jobs:cancel`;
    redis.defineCommand('latentgateAppendJobEvent', { numberOfKeys: 3, lua: APPEND });
  }

  private keys(id: string) {
    const base = `${this.prefix}job:${id}`;
    return { hash: base, events: `${base}:events`, input: `${base}:input`, tombstone: `${base}:gone` };
  }

  private get ttlMs(): number {
    return this.ttlSeconds * 1000;
  }

  /** Records a new job with its first event (QUEUED, no position) and its input bytes. */
  async create(
    record: Omit<JobRecord, 'cancelRequested' | 'finished' | 'runs'>,
    spec: string,
    input: Uint8Array | null,
  ): Promise<void> {
    const k = this.keys(record.id);
    const multi = this.redis.multi().hset(k.hash, {
      id: record.id,
      operation: record.operation,
      model: record.model,
      owner: record.owner ?? '',
      ticket: record.ticket ? JSON.stringify(record.ticket) : '',
      createdAt: String(record.createdAt.getTime()),
      status: 'QUEUED',
      spec,
    });
    multi.pexpire(k.hash, this.ttlMs);
    if (input) multi.set(k.input, Buffer.from(input.buffer, input.byteOffset, input.byteLength), 'PX', this.ttlMs);
    await multi.exec();
    await this.append(record.id, { type: 'QUEUED', position: null });
  }

  /** Appends an event; its seq, or null when the job had already ended (or is gone). */
  async append(id: string, body: JobEventBody): Promise<number | null> {
    const k = this.keys(id);
    const json = toJson({ ...body, jobId: id, at: new Date() });
    const seq = (await (this.redis as unknown as AppendCommand).latentgateAppendJobEvent(
      k.hash,
      k.events,
      k.tombstone,
      json.slice(1),
      body.type,
      this.ttlMs,
      this.eventsChannel,
    )) as number;
    return seq > 0 ? seq : null;
  }

  /** The spec (JSON) and input bytes a run needs; null when the job is gone. */
  async runInput(id: string): Promise<{ record: JobRecord; spec: string; input: Buffer | null } | null> {
    const k = this.keys(id);
    const [fields, input] = await Promise.all([this.redis.hgetall(k.hash), this.redis.getBuffer(k.input)]);
    if (!fields.id) return null;
    return { record: recordOf(fields), spec: fields.spec, input };
  }

  /** Counts a start of the job's run by `runner` (an instance), for operators and tests. */
  async started(id: string, runner: string): Promise<void> {
    const k = this.keys(id);
    await this.redis.multi().hincrby(k.hash, 'runs', 1).hset(k.hash, 'runner', runner).exec();
  }

  async record(id: string): Promise<JobRecord | null> {
    const fields = await this.redis.hgetall(this.keys(id).hash);
    return fields.id ? recordOf(fields) : null;
  }

  /** Events with seq > `after`, in order. */
  async events(id: string, after = 0): Promise<JobEvent[]> {
    const entries = await this.redis.lrange(this.keys(id).events, after, -1);
    return entries.map((entry) => fromJson<JobEvent>(entry));
  }

  /** The job, or NOT_FOUND / EXPIRED. */
  async view(id: string): Promise<JobView> {
    const [fields, entries, gone] = await Promise.all([
      this.redis.hgetall(this.keys(id).hash),
      this.redis.lrange(this.keys(id).events, 0, -1),
      this.redis.exists(this.keys(id).tombstone),
    ]);
    if (!fields.id) {
      if (gone)
        throw new GatewayError(
          'EXPIRED',
          `job ${id} finished more than ${this.ttlSeconds} s ago and was removed (JOB_TTL_SECONDS)`,
          { id },
        );
      throw new GatewayError('NOT_FOUND', `no job with id ${id}`, { id });
    }
    const events = entries.map((entry) => fromJson<JobEvent>(entry));
    return new StoredJob(recordOf(fields), events, this.ttlMs);
  }

  /** Sets the cancel flag (false when the job had already ended) and tells every instance. */
  async requestCancel(id: string): Promise<boolean> {
    const k = this.keys(id);
    const [[, finished]] = (await this.redis
      .multi()
      .hexists(k.hash, 'finished')
      .hset(k.hash, 'cancel', '1')
      .publish(this.cancelChannel, id)
      .exec()) as [[unknown, number]];
    return finished === 0;
  }

  async cancelRequested(id: string): Promise<boolean> {
    return (await this.redis.hget(this.keys(id).hash, 'cancel')) === '1';
  }
}

interface AppendCommand {
  latentgateAppendJobEvent(...args: (string | number)[]): Promise<unknown>;
}

function recordOf(fields: Record<string, string>): JobRecord {
  return {
    id: fields.id,
    operation: fields.operation as JobOperation,
    model: fields.model,
    owner: fields.owner || null,
    ticket: fields.ticket ? (JSON.parse(fields.ticket) as Ticket) : null,
    createdAt: new Date(Number(fields.createdAt)),
    cancelRequested: fields.cancel === '1',
    finished: fields.finished !== undefined,
    runs: Number(fields.runs ?? 0),
  };
}

/**
 * Live events of any job, from the events channel (one subscription per instance): `follow` returns
 * the compacted log, then each later event in seq order, ending after the terminal event. A gap (a
 * message lost while the connection was down) is filled from the list, which is also reread when
 * nothing arrives for a while.
 */
export class JobEventFeed {
  private readonly listeners = new Map<string, Set<(event: JobEvent) => void>>();

  constructor(
    private readonly log: RedisJobLog,
    subscriber: Redis,
    private readonly idleRereadMs = 2000,
  ) {
    subscriber.on('message', (channel: string, message: string) => {
      if (channel !== log.eventsChannel) return;
      const event = fromJson<JobEvent>(message);
      for (const listener of this.listeners.get(event.jobId) ?? []) listener(event);
    });
  }

  async follow(id: string): Promise<AsyncIterableIterator<JobEvent>> {
    const live: JobEvent[] = [];
    let wake: (() => void) | null = null;
    const listener = (event: JobEvent) => {
      live.push(event);
      wake?.();
    };
    // Listening before the log is read: an event appended in between is in one or the other (or both).
    const set = this.listeners.get(id) ?? new Set();
    set.add(listener);
    this.listeners.set(id, set);
    const stop = () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
      wake?.();
    };
    let snapshot: JobEvent[];
    try {
      if (!(await this.log.record(id))) await this.log.view(id); // throws NOT_FOUND or EXPIRED
      snapshot = await this.log.events(id);
    } catch (error) {
      stop();
      throw error;
    }
    const pending = compactLog(snapshot);
    let seen = snapshot.at(-1)?.seq ?? 0;
    let ended = snapshot.some(isTerminal);
    let closed = false;
    const log = this.log;
    const idle = this.idleRereadMs;
    const close = () => {
      closed = true;
      stop();
    };
    /** Moves live events (and any missed ones, from the list) after `seen` into `pending`. */
    const catchUp = async (reread: boolean) => {
      live.sort((a, b) => a.seq - b.seq);
      let expected = seen + 1;
      let gap = false;
      for (const event of live) {
        if (event.seq > expected) gap = true;
        if (event.seq >= expected) expected = event.seq + 1;
      }
      if (gap || reread) {
        live.length = 0;
        for (const event of await log.events(id, seen)) pending.push(event);
      } else {
        for (const event of live.splice(0)) if (event.seq > seen) pending.push(event);
      }
      const last = pending.at(-1);
      if (last && last.seq > seen) seen = last.seq;
    };
    const iterator: AsyncIterableIterator<JobEvent> = {
      next: async () => {
        for (;;) {
          const event = pending.shift();
          if (event) {
            if (isTerminal(event)) {
              ended = true;
              close();
            }
            return { value: event, done: false };
          }
          if (closed || ended) {
            close();
            return { value: undefined, done: true };
          }
          if (live.length === 0) {
            let timer: NodeJS.Timeout | undefined;
            const woke = await new Promise<boolean>((resolve) => {
              wake = () => resolve(true);
              timer = setTimeout(() => resolve(false), idle);
            });
            clearTimeout(timer);
            wake = null;
            if (closed) continue;
            await catchUp(!woke);
          } else await catchUp(false);
        }
      },
      return: async () => {
        pending.length = 0;
        close();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
}
