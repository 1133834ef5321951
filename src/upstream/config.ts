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
 *
 * A whole img2img request can go to an endpoint that serves img2img, named by its `protocol`:
 *
 *   { "model": "sd15", "url": "http://10.0.0.3:4000/graphql", "protocol": "latentgate" }
 *   { "model": "sd15", "url": "https://xyz.endpoints.huggingface.cloud/", "protocol": "hf-image-to-image" }
 *   { "model": "sd15", "url": "http://10.0.0.4:7860/sdapi/v1/img2img", "protocol": "a1111" }
 *
 * Such an entry serves img2img only (`operations` defaults to, and may only be, `["img2img"]`);
 * encode and decode stay with `hybrid-inference` entries (the default protocol).
 */
import { z } from 'zod';
import { MAX_SEED } from '../diffusion/random.js';
import { FAMILIES, type FamilyId } from '../models/families.js';
import type { Operation } from '../models/model.js';
import { describeProblem, integerIn, settingsObject, validate } from '../validation/problems.js';

/** What an entry's URL speaks: the Hybrid Inference VAE protocol, or one of the img2img APIs. */
export const IMG2IMG_PROTOCOLS = ['latentgate', 'hf-image-to-image', 'a1111'] as const;
export type Img2ImgProtocol = (typeof IMG2IMG_PROTOCOLS)[number];
export const UPSTREAM_PROTOCOLS = ['hybrid-inference', ...IMG2IMG_PROTOCOLS] as const;
export type UpstreamProtocol = (typeof UPSTREAM_PROTOCOLS)[number];
export type UpstreamOperation = Operation | 'img2img';

/**
 * The largest seed each img2img protocol is sent by default. latentgate takes torch's whole range;
 * A1111 reads a signed 64-bit integer (-1 means random); the HF task's seed is a JSON integer that
 * non-Python readers hold as a double, so beyond 2^53 it could change silently on the way.
 */
export const DEFAULT_MAX_SEED: Record<Img2ImgProtocol, bigint> = {
  latentgate: MAX_SEED,
  'hf-image-to-image': 2n ** 53n - 1n,
  a1111: 2n ** 63n - 1n,
};

export function isImg2ImgProtocol(protocol: UpstreamProtocol): protocol is Img2ImgProtocol {
  return protocol !== 'hybrid-inference';
}

export interface UpstreamConfig {
  /** Shown as the route's target: `upstream:<name>`. Defaults to the URL's host. */
  name: string;
  /** The model id this gateway exposes (the upstream may call it anything: the URL says where). */
  model: string;
  url: string;
  /** `hybrid-inference`: encode and/or decode; an img2img protocol: `["img2img"]`. */
  operations: UpstreamOperation[];
  protocol: UpstreamProtocol;
  /** img2img: the model id sent to a latentgate, or the checkpoint an A1111 loads (`sd_model_checkpoint`). */
  remoteModel: string | null;
  /** img2img: the largest seed this endpoint is sent; a request with a larger one skips it. */
  maxSeed: bigint;
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
  /** Run-time guess before the first measurement (img2img: per megapixel and denoising step). */
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

const OPERATIONS_MESSAGE = 'it must be a non-empty list of "encode", "decode" and "img2img"';

/** A seed bound: an integer, or a decimal string beyond 2^53 (where JSON numbers lose digits). */
const seedBound = z
  .union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,20}$/)], {
    error: `it must be an integer from 0 to ${MAX_SEED} (a decimal string beyond ${Number.MAX_SAFE_INTEGER})`,
  })
  .transform((value) => BigInt(value))
  .refine((value) => value <= MAX_SEED, { error: `it must be at most ${MAX_SEED}` });

function entrySchema(env: NodeJS.ProcessEnv) {
  return settingsObject({
    name: nonEmptyString.nullish(),
    model: nonEmptyString,
    url: nonEmptyString.refine((text) => HTTP_URL.safeParse(text.replaceAll(OPERATION_PLACEHOLDER, 'encode')).success, {
      error: 'it must be an absolute http(s) URL',
    }),
    operations: z
      .array(z.enum(['encode', 'decode', 'img2img']), { error: OPERATIONS_MESSAGE })
      .min(1, { error: OPERATIONS_MESSAGE })
      .optional(),
    protocol: z.enum(UPSTREAM_PROTOCOLS).optional(),
    remoteModel: nonEmptyString.nullish(),
    maxSeed: seedBound.nullish(),
    token: nonEmptyString.nullish(),
    tokenEnv: nonEmptyString.nullish(),
    // Defaults depend on the protocol (an img2img call runs a whole denoising loop).
    timeoutMs: integerIn(1).nullish(),
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
    expectedSecondsPerMegapixel: z.number().min(0).nullish(),
  })
    .superRefine(
      (e, context) => {
        // Runs beside other problems of the entry (`when`), so it sees whatever the entry gave.
        const protocol = typeof e.protocol === 'string' ? e.protocol : undefined;
        const operations = Array.isArray(e.operations) ? (e.operations as unknown[]) : undefined;
        const issue = (path: string, message: string) => context.addIssue({ code: 'custom', path: [path], message });
        const img2imgProtocol = protocol !== undefined && protocol !== 'hybrid-inference';
        const listsImg2Img = operations?.includes('img2img') ?? false;
        if (listsImg2Img && protocol === undefined)
          issue('protocol', `is required when operations lists "img2img": ${IMG2IMG_PROTOCOLS.join(', ')}`);
        if (listsImg2Img && protocol === 'hybrid-inference')
          issue(
            'operations',
            `protocol "hybrid-inference" serves encode and decode; img2img needs ${IMG2IMG_PROTOCOLS.join(', ')}`,
          );
        if (img2imgProtocol && operations?.some((op) => op !== 'img2img'))
          issue(
            'operations',
            `protocol "${protocol}" serves only img2img; encode and decode need a "hybrid-inference" entry`,
          );
        if (img2imgProtocol && typeof e.url === 'string' && e.url.includes(OPERATION_PLACEHOLDER))
          issue(
            'url',
            `${OPERATION_PLACEHOLDER} is for encode/decode URLs; protocol "${protocol}" takes the URL it answers on`,
          );
        if (!img2imgProtocol && !listsImg2Img) {
          if (operations === undefined && typeof e.url === 'string' && !e.url.includes(OPERATION_PLACEHOLDER))
            issue(
              'operations',
              `is required when the url has no ${OPERATION_PLACEHOLDER}: ["encode"], ["decode"] or both`,
            );
          for (const key of ['remoteModel', 'maxSeed'] as const)
            if (e[key] !== undefined && e[key] !== null) issue(key, 'is only for img2img entries (latentgate, a1111)');
        }
        if (protocol === 'hf-image-to-image' && e.remoteModel !== undefined && e.remoteModel !== null)
          issue('remoteModel', 'is not taken by protocol "hf-image-to-image": its URL names the model');
        if (typeof e.tokenEnv === 'string' && e.tokenEnv && !env[e.tokenEnv])
          context.addIssue({
            code: 'custom',
            path: ['tokenEnv'],
            message: 'it names an environment variable that is not set',
          });
      },
      { when: (payload) => typeof payload.value === 'object' && payload.value !== null },
    )
    .transform(({ tokenEnv, operations, protocol = 'hybrid-inference', ...e }): UpstreamConfig => {
      const url = new URL(e.url.replaceAll(OPERATION_PLACEHOLDER, 'encode'));
      const img2img = isImg2ImgProtocol(protocol);
      const latentgate = protocol === 'latentgate' || url.pathname.startsWith('/v1/vae/');
      return {
        ...e,
        name: e.name ?? url.host,
        protocol,
        operations: operations ? [...new Set(operations)] : img2img ? ['img2img'] : ['encode', 'decode'],
        remoteModel: e.remoteModel ?? null,
        maxSeed: e.maxSeed ?? (img2img ? DEFAULT_MAX_SEED[protocol] : MAX_SEED),
        token: tokenEnv ? (env[tokenEnv] ?? null) : (e.token ?? null),
        timeoutMs: e.timeoutMs ?? (img2img ? 300_000 : 30_000),
        expectedSecondsPerMegapixel: e.expectedSecondsPerMegapixel ?? (img2img ? 0.5 : 2),
        // latentgate answers /healthz; other endpoints are watched passively through the circuit breaker.
        healthUrl:
          e.healthUrl === undefined
            ? latentgate
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
