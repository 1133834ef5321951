/**
 * A small typed client for the gateway, on the documents graphql-codegen generated from
 * ./operations.ts: queries and mutations over HTTP (files as GraphQL multipart requests), and
 * subscriptions over SSE (fetch streaming, Yoga's default) or WebSocket (graphql-ws).
 *
 *   const client = new LatentgateClient('http://127.0.0.1:4000');
 *   const job = await client.submitEncode({ model: 'taef2', image: { upload: new File([bytes], 'a.png') } });
 *   const end = await client.follow(job.id, { onEvent: (e) => console.log(e.type) });
 */
import { createClient, type Client as WsClient } from 'graphql-ws';
import WebSocket from 'ws';
import {
  CancelJobDocument,
  type DecodeInput,
  type EncodeInput,
  type ErrorCode,
  type Img2ImgInput,
  JobDocument,
  type JobEventFieldsFragment,
  type JobFieldsFragment,
  JobProgressDocument,
  ModelsDocument,
  SubmitDecodeDocument,
  SubmitEncodeDocument,
  SubmitImg2imgDocument,
  type TypedDocumentString,
} from './generated/graphql.js';

export type Transport = 'sse' | 'ws';

export type JobEvent = JobEventFieldsFragment;
export type TerminalJobEvent = Extract<
  JobEvent,
  { __typename: 'JobDoneEvent' | 'JobFailedEvent' | 'JobCancelledEvent' }
>;
export type JobSnapshot = JobFieldsFragment;

export interface GraphQLErrorPayload {
  message: string;
  path?: readonly (string | number)[];
  extensions?: Record<string, unknown>;
}

interface ExecutionResult<T> {
  data?: T | null;
  errors?: readonly GraphQLErrorPayload[];
}

/** A GraphQL error from the gateway (its `extensions.code`), or a transport failure (`code` TRANSPORT). */
export class LatentgateError extends Error {
  constructor(
    readonly code: ErrorCode | 'TRANSPORT',
    message: string,
    readonly errors: readonly GraphQLErrorPayload[] = [],
  ) {
    super(message);
    this.name = 'LatentgateError';
  }

  static from(errors: readonly GraphQLErrorPayload[]): LatentgateError {
    const first = errors[0];
    const code = (first?.extensions?.code as ErrorCode | undefined) ?? 'INTERNAL';
    return new LatentgateError(code, errors.map((e) => e.message).join('; ') || 'unknown GraphQL error', errors);
  }
}

export interface ClientOptions {
  /** How subscriptions travel unless a call says otherwise (default sse). */
  transport?: Transport;
  headers?: Record<string, string>;
}

export function isTerminal(event: JobEvent): event is TerminalJobEvent {
  return (
    event.__typename === 'JobDoneEvent' ||
    event.__typename === 'JobFailedEvent' ||
    event.__typename === 'JobCancelledEvent'
  );
}

export class LatentgateClient {
  /** The GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql. */
  readonly endpoint: string;
  private ws: WsClient | undefined;

  constructor(
    baseUrl: string,
    private readonly options: ClientOptions = {},
  ) {
    const url = new URL(baseUrl);
    if (!url.pathname.endsWith('/graphql')) url.pathname = `${url.pathname.replace(/\/$/, '')}/graphql`;
    this.endpoint = url.toString();
  }

  /** A query or mutation. Blobs / Files anywhere in `variables` are sent as a multipart request. */
  async request<R, V>(document: TypedDocumentString<R, V>, variables: V): Promise<R> {
    const query = document.toString();
    const { clean, files } = extractFiles(variables);
    let body: string | FormData;
    const headers: Record<string, string> = {
      ...this.options.headers,
      accept: 'application/graphql-response+json, application/json',
    };
    if (files.length === 0) {
      body = JSON.stringify({ query, variables });
      headers['content-type'] = 'application/json';
    } else {
      const form = new FormData();
      form.set('operations', JSON.stringify({ query, variables: clean }));
      form.set('map', JSON.stringify(Object.fromEntries(files.map((f, i) => [String(i), [f.path]]))));
      for (const [i, f] of files.entries())
        form.set(String(i), f.blob, f.blob instanceof File ? f.blob.name : `file${i}`);
      body = form;
      // The gateway refuses a multipart request without it (a form on another site cannot add it).
      headers['x-graphql-yoga-csrf'] = '1';
    }
    let response: Response;
    try {
      response = await fetch(this.endpoint, { method: 'POST', headers, body });
    } catch (error) {
      throw new LatentgateError(
        'TRANSPORT',
        `cannot reach ${this.endpoint}: ${(error as Error).cause ?? (error as Error).message}`,
      );
    }
    const text = await response.text();
    let result: ExecutionResult<R>;
    try {
      result = JSON.parse(text) as ExecutionResult<R>;
    } catch {
      throw new LatentgateError(
        'TRANSPORT',
        `${this.endpoint} answered ${response.status} with a non-JSON body: ${text.slice(0, 200)}`,
      );
    }
    if (result.errors?.length) throw LatentgateError.from(result.errors);
    if (!result.data)
      throw new LatentgateError('TRANSPORT', `${this.endpoint} answered ${response.status} without data`);
    return result.data;
  }

  /** A subscription's results, until it completes; leaving the loop early unsubscribes. */
  subscribe<R, V>(
    document: TypedDocumentString<R, V>,
    variables: V,
    transport: Transport = this.options.transport ?? 'sse',
  ): AsyncGenerator<R> {
    const payload = { query: document.toString(), variables: variables as Record<string, unknown> };
    return transport === 'ws' ? this.wsResults<R>(payload) : this.sseResults<R>(payload);
  }

  // ---- the operations ---------------------------------------------------------------------------

  async models() {
    return (await this.request(ModelsDocument, {})).models;
  }

  async submitEncode(input: EncodeInput): Promise<JobSnapshot> {
    return (await this.request(SubmitEncodeDocument, { input })).submitEncode;
  }

  async submitDecode(input: DecodeInput): Promise<JobSnapshot> {
    return (await this.request(SubmitDecodeDocument, { input })).submitDecode;
  }

  async submitImg2img(input: Img2ImgInput): Promise<JobSnapshot> {
    return (await this.request(SubmitImg2imgDocument, { input })).submitImg2img;
  }

  async job(id: string): Promise<JobSnapshot> {
    return (await this.request(JobDocument, { id })).job;
  }

  async cancelJob(id: string): Promise<JobSnapshot> {
    return (await this.request(CancelJobDocument, { id })).cancelJob;
  }

  /** The job's events: its current state first, then live ones, ending after the terminal one. */
  async *jobProgress(id: string, transport?: Transport): AsyncGenerator<JobEvent> {
    for await (const data of this.subscribe(JobProgressDocument, { id }, transport)) yield data.jobProgress;
  }

  /** Follows a job to its terminal event (DONE, FAILED or CANCELLED) and returns it. */
  async follow(
    id: string,
    options: { onEvent?: (event: JobEvent) => void; transport?: Transport } = {},
  ): Promise<TerminalJobEvent> {
    let terminal: TerminalJobEvent | undefined;
    // Read to the stream's end: it completes right after the terminal event.
    for await (const event of this.jobProgress(id, options.transport)) {
      options.onEvent?.(event);
      if (isTerminal(event)) terminal = event;
    }
    if (!terminal)
      throw new LatentgateError('TRANSPORT', `the jobProgress stream of job ${id} ended without a terminal event`);
    return terminal;
  }

  async close(): Promise<void> {
    await this.ws?.dispose();
    this.ws = undefined;
  }

  // ---- transports -------------------------------------------------------------------------------

  private async *sseResults<R>(payload: { query: string; variables: Record<string, unknown> }): AsyncGenerator<R> {
    const abort = new AbortController();
    let response: Response;
    try {
      response = await fetch(this.endpoint, {
        method: 'POST',
        headers: { ...this.options.headers, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(payload),
        signal: abort.signal,
      });
    } catch (error) {
      throw new LatentgateError(
        'TRANSPORT',
        `cannot reach ${this.endpoint}: ${(error as Error).cause ?? (error as Error).message}`,
      );
    }
    try {
      if (!response.headers.get('content-type')?.startsWith('text/event-stream')) {
        const text = await response.text();
        let result: ExecutionResult<R> | undefined;
        try {
          result = JSON.parse(text) as ExecutionResult<R>;
        } catch {
          // not JSON: reported below
        }
        if (result?.errors?.length) throw LatentgateError.from(result.errors);
        throw new LatentgateError(
          'TRANSPORT',
          `${this.endpoint} answered ${response.status} ${response.headers.get('content-type')} ` +
            `instead of an event stream: ${text.slice(0, 200)}`,
        );
      }
      for await (const message of readEventStream(response.body!)) {
        if (message.event === 'complete') return;
        if (message.event !== 'next' && message.event !== 'message') continue;
        const result = JSON.parse(message.data) as ExecutionResult<R>;
        if (result.errors?.length) throw LatentgateError.from(result.errors);
        if (result.data) yield result.data;
      }
      throw new LatentgateError('TRANSPORT', 'the event stream ended before the subscription completed');
    } finally {
      abort.abort();
    }
  }

  private async *wsResults<R>(payload: { query: string; variables: Record<string, unknown> }): AsyncGenerator<R> {
    this.ws ??= createClient({
      url: this.endpoint.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      connectionParams: this.options.headers,
      retryAttempts: 0,
      lazyCloseTimeout: 100,
    });
    const results = this.ws.iterate<R>(payload);
    try {
      for (;;) {
        let next: IteratorResult<ExecutionResult<R>>;
        try {
          next = await results.next();
        } catch (error) {
          throw wsError(error, this.endpoint);
        }
        if (next.done) return;
        if (next.value.errors?.length) throw LatentgateError.from(next.value.errors);
        if (next.value.data) yield next.value.data;
      }
    } finally {
      await results.return?.();
    }
  }
}

function wsError(error: unknown, endpoint: string): LatentgateError {
  if (Array.isArray(error)) return LatentgateError.from(error as GraphQLErrorPayload[]);
  if (error instanceof Error) return new LatentgateError('TRANSPORT', `WebSocket to ${endpoint}: ${error.message}`);
  const close = error as { code?: number; reason?: string };
  return new LatentgateError(
    'TRANSPORT',
    `WebSocket to ${endpoint} closed${close.code ? ` (${close.code}${close.reason ? ` ${close.reason}` : ''})` : ''}`,
  );
}

/** Server-sent events from a response body: `event` and (joined) `data` of each message; comments skipped. */
export async function* readEventStream(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = /\r?\n\r?\n/.exec(buffer);
      if (!end) break;
      const block = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0 || event !== 'message') yield { event, data: data.join('\n') };
    }
  }
}

/** Replaces every Blob in `value` by null and lists it with its `variables.…` path (GraphQL multipart request spec). */
function extractFiles(value: unknown): { clean: unknown; files: { path: string; blob: Blob }[] } {
  const files: { path: string; blob: Blob }[] = [];
  const walk = (v: unknown, path: string): unknown => {
    if (v instanceof Blob) {
      files.push({ path, blob: v });
      return null;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, `${path}.${i}`));
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, `${path}.${k}`)]));
    return v;
  };
  return { clean: walk(value, 'variables'), files };
}
