/**
 * Upstream endpoints from configuration (`UPSTREAMS` as JSON, or `upstreams` in the config file).
 * URLs come only from here, never from a request. Each entry is one endpoint for one model:
 *
 *   { "model": "taef2", "url": "http://10.0.0.2:4000/v1/vae/taef2/{operation}" }
 *   { "model": "flux1", "url": "https://xyz.endpoints.huggingface.cloud/", "operations": ["decode"],
 *     "token": "hf_..." }
 *
 * `{operation}` in the URL is replaced by `encode` or `decode`; without it `operations` must say
 * which one the URL serves (Hugging Face endpoints serve one each).
 */
import { z } from 'zod';
import { FAMILIES, type FamilyId } from '../models/families.js';
import type { Operation } from '../models/model.js';
import { describeProblem, integerIn, settingsObject, validate } from '../validation/problems.js';

export interface UpstreamConfig {
  /** Shown as the route's target: `upstream:<name>`. Defaults to the URL's host. */
  name: string;
  /** The model id this gateway exposes (the upstream may call it anything: the URL says where). */
  model: string;
  url: string;
  operations: Operation[];
  /** Sent as `Authorization: Bearer <token>`. */
  token: string | null;
  /** Limit for one attempt: connect, send, and read the whole response. */
  timeoutMs: number;
  /** Retries after a 429, a 503 or a connection error (not after a timeout). */
  retries: number;
  /** Largest image (width x height) this endpoint is sent; null = no limit. */
  maxPixels: number | null;
  /** For models with no local weights: the latent conventions (defaults to the model id when it is a family). */
  family: FamilyId | null;
  latentChannels: number | null;
  downscaleFactor: number | null;
  /**
   * GET that answers 2xx when the endpoint is up; default `<origin>/healthz` for latentgate URLs; null = passive only.
   */
  healthUrl: string | null;
  healthIntervalMs: number;
  /** Consecutive failures that open the circuit, and how long it stays open before one trial request. */
  failureThreshold: number;
  cooldownMs: number;
  /** Run-time guess before the first measurement. */
  expectedSecondsPerMegapixel: number;
}

export const OPERATION_PLACEHOLDER = '{operation}';

/** The URL for one operation. */
export function endpointUrl(config: Pick<UpstreamConfig, 'url'>, operation: Operation): string {
  return config.url.replaceAll(OPERATION_PLACEHOLDER, operation);
}

const FAMILY_IDS = Object.keys(FAMILIES) as [FamilyId, ...FamilyId[]];
const HTTP_URL = z.url({ protocol: /^https?$/ });

const nonEmptyString = z
  .string({ error: (issue) => (issue.input === undefined ? undefined : 'it must be a non-empty string') })
  .min(1, { error: 'it must be a non-empty string' });

/** `schema`, or `fallback` when the key is missing or null. */
function orDefault<S extends z.ZodType, F>(schema: S, fallback: F) {
  return schema.nullish().transform((value): NonNullable<z.output<S>> | F => value ?? fallback);
}

function entrySchema(env: NodeJS.ProcessEnv) {
  return settingsObject({
    name: nonEmptyString.nullish(),
    model: nonEmptyString,
    url: nonEmptyString.refine((text) => HTTP_URL.safeParse(text.replaceAll(OPERATION_PLACEHOLDER, 'encode')).success, {
      error: 'it must be an absolute http(s) URL',
    }),
    operations: z
      .array(z.enum(['encode', 'decode']), { error: 'it must be a non-empty list of "encode" and "decode"' })
      .min(1, { error: 'it must be a non-empty list of "encode" and "decode"' })
      .optional(),
    token: nonEmptyString.nullish(),
    tokenEnv: nonEmptyString.nullish(),
    timeoutMs: orDefault(integerIn(1), 30_000),
    retries: orDefault(integerIn(0), 2),
    maxPixels: orDefault(integerIn(64), null),
    family: orDefault(z.enum(FAMILY_IDS), null),
    latentChannels: orDefault(integerIn(1), null),
    downscaleFactor: orDefault(integerIn(1), null),
    // Missing: a default for latentgate URLs; null: watched passively through the circuit breaker.
    healthUrl: z.url({ error: 'it must be an absolute URL or null' }).nullable().optional(),
    healthIntervalMs: orDefault(integerIn(100), 15_000),
    failureThreshold: orDefault(integerIn(1), 3),
    cooldownMs: orDefault(integerIn(0), 15_000),
    expectedSecondsPerMegapixel: orDefault(z.number().min(0), 2),
  })
    .superRefine(
      (e, context) => {
        // Runs beside other problems of the entry (`when`), so it sees whatever the entry gave.
        if (e.operations === undefined && typeof e.url === 'string' && !e.url.includes(OPERATION_PLACEHOLDER))
          context.addIssue({
            code: 'custom',
            path: ['operations'],
            message: `is required when the url has no ${OPERATION_PLACEHOLDER}: ["encode"], ["decode"] or both`,
          });
        if (typeof e.tokenEnv === 'string' && e.tokenEnv && !env[e.tokenEnv])
          context.addIssue({
            code: 'custom',
            path: ['tokenEnv'],
            message: 'it names an environment variable that is not set',
          });
      },
      { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
    )
    .transform(({ tokenEnv, operations, ...e }): UpstreamConfig => {
      const url = new URL(e.url.replaceAll(OPERATION_PLACEHOLDER, 'encode'));
      return {
        ...e,
        name: e.name ?? url.host,
        operations: operations ? [...new Set(operations)] : ['encode', 'decode'],
        token: tokenEnv ? (env[tokenEnv] ?? null) : (e.token ?? null),
        // latentgate answers /healthz; other endpoints are watched passively through the circuit breaker.
        healthUrl:
          e.healthUrl === undefined
            ? url.pathname.startsWith('/v1/vae/')
              ? `${url.origin}/healthz`
              : null
            : e.healthUrl && new URL(e.healthUrl).toString(),
      };
    });
}

/**
 * The upstream list: the JSON text from the environment, or the list (or its JSON text) from the
 * config file. Names are route targets and must tell endpoints apart, so repeated ones get `#1`, `#2`.
 */
export function upstreamList(env: NodeJS.ProcessEnv) {
  const list = z.array(entrySchema(env), {
    error: (issue) => (issue.input === undefined ? undefined : 'it must be a JSON list of {model, url, ...} objects'),
  });
  const parsed = z.preprocess((value, context) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value) as unknown;
    } catch (error) {
      context.issues.push({ code: 'custom', input: value, message: `it must be JSON: ${(error as Error).message}` });
      return z.NEVER;
    }
  }, list);
  return parsed.transform(distinctNames);
}

function distinctNames(upstreams: UpstreamConfig[]): UpstreamConfig[] {
  const seen = new Map<string, number>();
  for (const u of upstreams) seen.set(u.name, (seen.get(u.name) ?? 0) + 1);
  const counters = new Map<string, number>();
  return upstreams.map((u) => {
    if ((seen.get(u.name) ?? 0) < 2) return u;
    const n = (counters.get(u.name) ?? 0) + 1;
    counters.set(u.name, n);
    return { ...u, name: `${u.name}#${n}` };
  });
}

/** The list on its own (outside the whole configuration): every problem, naming the entry and the key. */
export function parseUpstreams(
  value: unknown,
  env: NodeJS.ProcessEnv = {},
): { upstreams: UpstreamConfig[]; problems: string[] } {
  const result = validate(z.object({ upstreams: upstreamList(env).optional() }), {
    upstreams: value === null || value === '' ? undefined : value,
  });
  if (!result.ok) return { upstreams: [], problems: result.problems.map(describeProblem) };
  return { upstreams: result.value.upstreams ?? [], problems: [] };
}
