/**
 * What a web page may do with the gateway. A browser attaches a page's requests to whatever the
 * user can reach (a gateway on localhost, on the office network), so:
 * - CORS headers only for the origins in CORS_ORIGINS; the gateway's own pages (the playground at /)
 *   are same-origin and need none. Yoga's default would reflect any origin with credentials.
 * - CSRF prevention, Yoga's rule: a request a page could send without a CORS preflight (a form
 *   post, a multipart upload, a GET) must carry CSRF_HEADER, which a page can only add after a
 *   preflight that CORS refuses to unlisted origins. `application/json` needs a preflight anyway.
 * - The WebSocket upgrade and the Hybrid Inference endpoints, which CORS does not guard, check
 *   `Origin` the same way.
 * - GraphiQL and introspection only when enabled (GRAPHIQL, INTROSPECTION).
 */
import type { IncomingMessage } from 'node:http';
import { GraphQLError, NoSchemaIntrospectionCustomRule } from 'graphql';
import type { CORSOptions, Plugin } from 'graphql-yoga';
import type { Config } from '../config/config.js';
import { GatewayError } from '../errors.js';
import type { Observability } from '../observability/answers.js';
import { httpErrorAnswer } from './error-edges.js';

/**
 * The header a non-JSON GraphQL request must carry (any value): the name Yoga's
 * `@graphql-yoga/plugin-csrf-prevention` uses. That package is not among the dependencies, hence
 * the same rule here as a plugin of a few lines.
 */
export const CSRF_HEADER = 'x-graphql-yoga-csrf';

/** The content types a page may POST without a preflight (the Fetch standard's CORS-safelisted ones). */
const SIMPLE_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/** Yoga's `cors` option: the request's own origin when listed, no CORS headers otherwise. */
export function corsFor(allowed: readonly string[]): (request: Request) => CORSOptions {
  const listed = new Set(allowed);
  return (request) => {
    const origin = request.headers.get('origin');
    return origin !== null && listed.has(origin) ? { origin: [origin], credentials: true } : false;
  };
}

/** The CORS headers depend on `Origin`, so a cache must not hand one origin's answer to another. */
function useVaryOrigin(): Plugin {
  return {
    onResponse({ response }) {
      response.headers.append('vary', 'Origin');
    },
  };
}

/** True when a browser would have preflighted the request: a content type a form cannot send. */
function preflighted(request: Request): boolean {
  const type = request.headers.get('content-type')?.split(';')[0].trim().toLowerCase();
  return type !== undefined && type !== '' && !SIMPLE_CONTENT_TYPES.has(type);
}

export function useCSRFPrevention(): Plugin {
  return {
    onRequestParse({ request }) {
      if (preflighted(request) || request.headers.has(CSRF_HEADER)) return;
      // A GraphQLError of its own (no originalError) keeps its HTTP status through error masking.
      throw new GraphQLError(
        `refused as a possible cross-site request: a GraphQL request that is not application/json ` +
          `(a multipart upload, a form post, a GET) must carry the header ${CSRF_HEADER} (any value)`,
        { extensions: { code: 'FORBIDDEN', http: { status: 403 } } },
      );
    },
  };
}

/** Refuses `__schema` and `__type` (graphql-js' rule); `__typename` is not introspection and stays. */
export function useNoIntrospection(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(NoSchemaIntrospectionCustomRule);
    },
  };
}

/**
 * With GraphiQL off, a browser opening /graphql is told so instead of being refused as a
 * cross-site request (which is what a GET without CSRF_HEADER otherwise is).
 */
export function useGraphiQLOffNotice(observability: Observability): Plugin {
  return {
    onRequest({ request, url, endResponse, fetchAPI }) {
      if (request.method !== 'GET' || url.searchParams.has('query')) return;
      if (!request.headers.get('accept')?.includes('text/html')) return;
      const { status, body } = httpErrorAnswer(
        observability,
        new GatewayError(
          'NOT_FOUND',
          'GraphiQL is off on this gateway (the server enables it with GRAPHIQL=true); the playground is at /',
        ),
      );
      endResponse(fetchAPI.Response.json(body, { status }));
    },
  };
}

/**
 * Whether a request that CORS does not guard may proceed: a WebSocket upgrade, or a Hybrid Inference
 * POST (a page can send one as a "simple" request and the run happens even though it cannot read the
 * answer). Allowed without `Origin` (not a browser), from the gateway's own host (the page was served
 * by it), or from a listed origin.
 */
export function originAllowed(request: IncomingMessage, allowed: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (origin === undefined || allowed.includes(origin)) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    // "null" (a sandboxed frame, a file:// page) and anything else that is not a URL.
    return false;
  }
}

/** The refusal of a request from a page whose origin `originAllowed` does not allow. */
export function crossSiteRefusal(origin: string | undefined, what: string): GatewayError {
  return new GatewayError(
    'FORBIDDEN',
    `refused a cross-site ${what} from origin ${origin}; the server allows pages from CORS_ORIGINS only`,
    { origin },
  );
}

/** The Yoga options that carry the above, from the configuration. */
export function browserSafety(config: Pick<Config, 'browser'>, observability: Observability) {
  const { corsOrigins, graphiql, introspection } = config.browser;
  return {
    cors: corsFor(corsOrigins),
    graphiql,
    plugins: [
      useVaryOrigin(),
      ...(graphiql ? [] : [useGraphiQLOffNotice(observability)]),
      useCSRFPrevention(),
      ...(introspection ? [] : [useNoIntrospection()]),
    ],
  };
}
