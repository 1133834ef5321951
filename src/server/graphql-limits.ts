/**
 * Limits on what one GraphQL request may ask for, checked before any work (README, Limits):
 * - the body: at most what its largest legal content needs (one base64 image or latent plus the document
 *   allowance), a multipart file at most MAX_IMAGE_BYTES: `REQUEST_TOO_LARGE` (HTTP 413);
 * - the document: tokens (counted while parsing, so a huge document stops early), depth, aliases,
 *   directives and cost (graphql-armor), and how many compute fields one operation runs: `QUERY_TOO_COMPLEX`
 *   (HTTP 400 for clients that accept application/graphql-response+json, as Yoga does for validation errors).
 * Each refusal names the setting and its value.
 */

import type { IncomingMessage } from 'node:http';
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import { createFetch } from '@whatwg-node/fetch';
import { type DocumentNode, GraphQLError, type ValidationRule } from 'graphql';
import type { FetchAPI, Plugin, YogaServerOptions } from 'graphql-yoga';
import type { Config } from '../config/config.js';
import { GatewayError } from '../errors.js';
import { graphqlRequestError } from './error-edges.js';
import { rootFields } from './root-fields.js';

/** Mutation fields that run a model; armor's cost counts every field alike, so these are capped on their own. */
export const COMPUTE_FIELDS: ReadonlySet<string> = new Set([
  'encode',
  'decode',
  'img2img',
  'submitEncode',
  'submitDecode',
  'submitImg2img',
]);

export interface GraphQLBodyLimits {
  /** A whole request body (JSON, multipart, WebSocket message). */
  maxBodyBytes: number;
  /** One multipart file (an image upload). */
  maxFileBytes: number;
  maxFiles: number;
}

/** The body limits the configuration implies: one base64 image or latent of the largest allowed size, plus the allowance. */
export function graphqlBodyLimits(config: Pick<Config, 'limits' | 'graphqlLimits'>): GraphQLBodyLimits {
  const largest = Math.max(config.limits.maxImageBytes, config.limits.maxLatentBytes);
  return {
    maxBodyBytes: 4 * Math.ceil(largest / 3) + config.graphqlLimits.maxDocumentBytes,
    maxFileBytes: config.limits.maxImageBytes,
    maxFiles: config.graphqlLimits.maxComputeFields,
  };
}

function tooComplex(what: string, setting: string, max: number, found?: number): GraphQLError {
  const foundText = found === undefined ? `more than ${max}` : String(found);
  return graphqlRequestError(
    new GatewayError(
      'QUERY_TOO_COMPLEX',
      `the operation's ${what} is ${foundText}; the limit is ${setting} = ${max}`,
      found === undefined ? { limit: setting, max } : { limit: setting, max, found },
    ),
    { spec: true },
  );
}

const BODY_SETTING = 'MAX_IMAGE_BYTES/MAX_LATENT_BYTES + MAX_DOCUMENT_BYTES';

function tooLarge(message: string, details: Record<string, unknown>): GraphQLError {
  return graphqlRequestError(new GatewayError('REQUEST_TOO_LARGE', message, details), { spec: false });
}

function bodyTooLarge(maxBytes: number, bytes?: number): GraphQLError {
  const given = bytes === undefined ? `over ${maxBytes}` : String(bytes);
  return tooLarge(
    `the request body is ${given} bytes; the limit is ${maxBytes} bytes (base64 of the larger of MAX_IMAGE_BYTES ` +
      'and MAX_LATENT_BYTES, plus MAX_DOCUMENT_BYTES)',
    bytes === undefined ? { limit: BODY_SETTING, maxBytes } : { limit: BODY_SETTING, maxBytes, bytes },
  );
}

/** armor's messages end in "found N." */
function foundIn(error: GraphQLError): number | undefined {
  const match = /found (\d+(?:\.\d+)?)/.exec(error.message);
  // The cost is a sum of powers of 1.5: its whole part is enough.
  return match ? Math.ceil(Number(match[1])) : undefined;
}

/** Tokens, depth, aliases, directives and cost, through graphql-armor, each refusal typed. */
function armorPlugins(limits: Config['graphqlLimits']): Plugin[] {
  const report =
    (what: string, setting: string, max: number) =>
    (context: { reportError(error: GraphQLError): void } | null, error: GraphQLError) => {
      const typed = tooComplex(what, setting, max, foundIn(error));
      // The token count runs in the parser, which has no validation context: stop parsing there.
      if (!context) throw typed;
      context.reportError(typed);
    };
  const { plugins } = new EnvelopArmor({
    // The schema is public (introspection is on): suggestions give nothing away.
    blockFieldSuggestion: { enabled: false },
    maxTokens: {
      n: limits.maxTokens,
      propagateOnRejection: false,
      onReject: [report('token count', 'MAX_QUERY_TOKENS', limits.maxTokens)],
    },
    maxDepth: {
      n: limits.maxDepth,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [report('depth', 'MAX_QUERY_DEPTH', limits.maxDepth)],
    },
    maxAliases: {
      n: limits.maxAliases,
      propagateOnRejection: false,
      onReject: [report('alias count', 'MAX_QUERY_ALIASES', limits.maxAliases)],
    },
    maxDirectives: {
      n: limits.maxDirectives,
      propagateOnRejection: false,
      onReject: [report('directive count', 'MAX_QUERY_DIRECTIVES', limits.maxDirectives)],
    },
    costLimit: {
      maxCost: limits.maxCost,
      flattenFragments: true,
      propagateOnRejection: false,
      onReject: [report('cost', 'MAX_QUERY_COST', limits.maxCost)],
    },
  }).protect();
  return plugins as Plugin[];
}

/**
 * A document nested deeper than the parser's recursion can follow overflows the stack (a RangeError,
 * which would be a 500) before the depth rule, which runs on the parsed document, sees it.
 */
function useParseDepthGuard(maxDepth: number): Plugin {
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parseFn(source, options);
        } catch (error) {
          if (error instanceof RangeError) throw tooComplex('depth', 'MAX_QUERY_DEPTH', maxDepth);
          throw error;
        }
      });
    },
  };
}

/**
 * At most `max` compute fields per operation (fields merged under one response key run once; @skip and
 * @include are not evaluated, so a skipped field counts).
 */
export function computeFieldsRule(max: number): ValidationRule {
  return (context) => ({
    OperationDefinition(operation) {
      if (operation.operation !== 'mutation') return false;
      const fields = rootFields(operation.selectionSet, (name) => context.getFragment(name));
      const compute = [...fields.values()].filter((name) => COMPUTE_FIELDS.has(name)).length;
      if (compute > max) context.reportError(tooComplex('compute field count', 'MAX_COMPUTE_FIELDS', max, compute));
      return false;
    },
  });
}

/**
 * A body without a declared length (chunked), cut off once it passes `maxBytes`: Yoga's own check,
 * kept for the requests that need it (see useBodyLimits).
 */
function countedBody(request: Request, maxBytes: number, fetchAPI: FetchAPI): Request {
  const body = request.body;
  if (!body) return request;
  let bytesRead = 0;
  // The native stream's pipeThrough needs the native TransformStream (graphql-yoga issue 4583).
  const Transform = body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  const limited = body.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytesRead += chunk.byteLength;
        if (bytesRead > maxBytes) controller.error(bodyTooLarge(maxBytes));
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: limited,
    duplex: 'half',
  } as RequestInit);
}

/**
 * Body limits: a declared length checked before reading, a body without one counted as it is read, and
 * Yoga's and the multipart parser's refusals typed. A body that came through node:http with a declared
 * length is not counted again: Node's parser hands over exactly the declared bytes (and the declared
 * number was checked), while piping every upload through a counting stream cost ~0.3 ms a 512² request.
 */
function useBodyLimits(limits: GraphQLBodyLimits): Plugin {
  const translate = (error: unknown): unknown => {
    if (!(error instanceof GraphQLError)) return error;
    const message = error.message;
    if (message === 'Request body too large' || message.includes('Field value size exceeded'))
      return bodyTooLarge(limits.maxBodyBytes);
    if (message.startsWith('File size limit exceeded'))
      return tooLarge(`an uploaded file is over ${limits.maxFileBytes} bytes; the limit is MAX_IMAGE_BYTES`, {
        limit: 'MAX_IMAGE_BYTES',
        maxBytes: limits.maxFileBytes,
      });
    if (/Files limit exceeded|Parts limit exceeded/.test(message))
      return tooLarge(
        `the request uploads more than ${limits.maxFiles} files; the limit is one per compute field (MAX_COMPUTE_FIELDS)`,
        { limit: 'MAX_COMPUTE_FIELDS', maxFiles: limits.maxFiles },
      );
    if (message.includes('Fields limit exceeded'))
      return graphqlRequestError(
        new GatewayError('BAD_REQUEST', 'a GraphQL multipart request has two fields (operations, map) and its files'),
        { spec: false },
      );
    return error;
  };
  return {
    onRequestParse({ request, requestParser, setRequestParser, serverContext, fetchAPI }) {
      const declared = request.headers.get('content-length');
      const length = declared !== null && /^\d+$/.test(declared) ? Number(declared) : null;
      if (length !== null && length > limits.maxBodyBytes) throw bodyTooLarge(limits.maxBodyBytes, length);
      if (!requestParser) return;
      const lengthKeptByNode = length !== null && (serverContext as { req?: IncomingMessage }).req !== undefined;
      setRequestParser(async (req) => {
        try {
          return await requestParser(lengthKeptByNode ? req : countedBody(req, limits.maxBodyBytes, fetchAPI));
        } catch (error) {
          throw translate(error);
        }
      });
    },
  };
}

/** An LRU of parsed documents that leaves out long ones: a document with inline data is one client's, once. */
function smallDocumentCache<T>(maxKeyLength: number, maxEntries = 1024) {
  const entries = new Map<string, T>();
  return {
    get(key: string): T | undefined {
      const value = entries.get(key);
      if (value !== undefined) {
        entries.delete(key);
        entries.set(key, value);
      }
      return value;
    },
    set(key: string, value: T): void {
      if (key.length > maxKeyLength) return;
      entries.delete(key);
      entries.set(key, value);
      if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    },
  };
}

/** Yoga options and plugins for every limit here. */
export function graphqlLimitOptions(config: Pick<Config, 'limits' | 'graphqlLimits'>): Pick<
  YogaServerOptions<object, object>,
  'maxRequestBodySize' | 'parserAndValidationCache'
> & {
  fetchAPI: FetchAPI;
  plugins: Plugin[];
} {
  const limits = config.graphqlLimits;
  const body = graphqlBodyLimits(config);
  return {
    // Counted by useBodyLimits instead, only where Node does not already keep a declared length.
    maxRequestBodySize: false,
    // The multipart parser's own limits (busboy's): files of an image's size; `operations` may carry what a JSON body may.
    fetchAPI: createFetch({
      formDataLimits: {
        fileSize: body.maxFileBytes,
        files: body.maxFiles,
        fields: 2,
        fieldSize: body.maxBodyBytes,
        parts: body.maxFiles + 2,
      },
    }),
    parserAndValidationCache: {
      documentCache: smallDocumentCache<DocumentNode>(64 * 1024),
      errorCache: smallDocumentCache<unknown>(64 * 1024),
    },
    plugins: [
      useBodyLimits(body),
      ...armorPlugins(limits),
      useParseDepthGuard(limits.maxDepth),
      { onValidate: ({ addValidationRule }) => addValidationRule(computeFieldsRule(limits.maxComputeFields)) },
    ],
  };
}
