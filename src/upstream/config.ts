/**
 * Upstream endpoints from configuration (`UPSTREAMS` as JSON, or `upstreams` in the config file).
 * URLs come only from here, never from a request. Each entry is one endpoint for one model:
 *
 *   { "model": "taef2", "url": "http://10.0.0.2:4000/v1/vae/taef2/{operation}" }
 *   { "model": "flux1", "url": "https://xyz.endpoints.huggingface.cloud/", "operations": ["decode"], "token": "hf_..." }
 *
 * `{operation}` in the URL is replaced by `encode` or `decode`; without it `operations` must say
 * which one the URL serves (Hugging Face endpoints serve one each).
 */
import { FAMILIES, type FamilyId, isFamilyId } from '../models/families.js';
import type { Operation } from '../models/model.js';

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
  /** GET that answers 2xx when the endpoint is up; default `<origin>/healthz` for latentgate URLs; null = passive only. */
  healthUrl: string | null;
  healthIntervalMs: number;
  /** Consecutive failures that open the circuit, and how long it stays open before one trial request. */
  failureThreshold: number;
  cooldownMs: number;
  /** Run-time guess before the first measurement. */
  expectedSecondsPerMegapixel: number;
}

const KEYS = new Set([
  'name',
  'model',
  'url',
  'operations',
  'token',
  'tokenEnv',
  'timeoutMs',
  'retries',
  'maxPixels',
  'family',
  'latentChannels',
  'downscaleFactor',
  'healthUrl',
  'healthIntervalMs',
  'failureThreshold',
  'cooldownMs',
  'expectedSecondsPerMegapixel',
]);

export const OPERATION_PLACEHOLDER = '{operation}';

/** The URL for one operation. */
export function endpointUrl(config: Pick<UpstreamConfig, 'url'>, operation: Operation): string {
  return config.url.replaceAll(OPERATION_PLACEHOLDER, operation);
}

/**
 * Parses and checks the list; every problem is reported (naming the entry and the key) rather
 * than the first. `value` is the JSON text from the environment or the array from the file.
 */
export function parseUpstreams(
  value: unknown,
  env: NodeJS.ProcessEnv = {},
): { upstreams: UpstreamConfig[]; problems: string[] } {
  const problems: string[] = [];
  if (value === undefined || value === null || value === '') return { upstreams: [], problems };
  let list: unknown = value;
  if (typeof value === 'string') {
    try {
      list = JSON.parse(value);
    } catch (error) {
      return { upstreams: [], problems: [`UPSTREAMS (upstreams) is not JSON: ${(error as Error).message}`] };
    }
  }
  if (!Array.isArray(list))
    return { upstreams: [], problems: ['UPSTREAMS (upstreams) must be a JSON list of {model, url, ...} objects'] };
  const upstreams: UpstreamConfig[] = [];
  list.forEach((entry, index) => {
    const where = `upstreams[${index}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
      problems.push(`${where} must be an object with at least model and url`);
      return;
    }
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e))
      if (!KEYS.has(key)) problems.push(`${where}.${key} is not a setting; allowed: ${[...KEYS].join(', ')}`);
    const str = (key: string): string | null => {
      const v = e[key];
      if (v === undefined || v === null) return null;
      if (typeof v !== 'string' || v === '') {
        problems.push(`${where}.${key} must be a non-empty string`);
        return null;
      }
      return v;
    };
    const num = (key: string, fallback: number, min: number, integer = true): number => {
      const v = e[key];
      if (v === undefined || v === null) return fallback;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) {
        problems.push(
          `${where}.${key} is ${JSON.stringify(v)}; it must be ${integer ? 'an integer' : 'a number'} of at least ${min}`,
        );
        return fallback;
      }
      return v;
    };
    const model = str('model');
    if (!model) problems.push(`${where}.model is required`);
    const urlText = str('url');
    let url: URL | null = null;
    if (!urlText) problems.push(`${where}.url is required`);
    else {
      try {
        url = new URL(urlText.replaceAll(OPERATION_PLACEHOLDER, 'encode'));
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http');
      } catch {
        problems.push(`${where}.url is "${urlText}"; it must be an absolute http(s) URL`);
        url = null;
      }
    }
    let operations: Operation[] = [];
    if (e.operations === undefined) {
      if (urlText?.includes(OPERATION_PLACEHOLDER)) operations = ['encode', 'decode'];
      else if (urlText)
        problems.push(
          `${where}.operations is required when the url has no ${OPERATION_PLACEHOLDER}: ["encode"], ["decode"] or both`,
        );
    } else if (
      !Array.isArray(e.operations) ||
      e.operations.length === 0 ||
      !e.operations.every((o) => o === 'encode' || o === 'decode')
    ) {
      problems.push(`${where}.operations must be a non-empty list of "encode" and "decode"`);
    } else {
      operations = [...new Set(e.operations as Operation[])];
    }
    const familyText = str('family');
    let family: FamilyId | null = null;
    if (familyText !== null) {
      if (isFamilyId(familyText)) family = familyText;
      else problems.push(`${where}.family is "${familyText}"; allowed: ${Object.keys(FAMILIES).join(', ')}`);
    }
    let token = str('token');
    const tokenEnv = str('tokenEnv');
    if (tokenEnv !== null) {
      token = env[tokenEnv] || null;
      if (!token) problems.push(`${where}.tokenEnv names ${tokenEnv}, which is not set`);
    }
    const healthText = e.healthUrl === null ? null : str('healthUrl');
    let healthUrl: string | null = null;
    if (e.healthUrl === undefined) {
      // latentgate answers /healthz; other endpoints are watched passively through the circuit breaker.
      if (url?.pathname.startsWith('/v1/vae/')) healthUrl = `${url.origin}/healthz`;
    } else if (healthText !== null) {
      try {
        healthUrl = new URL(healthText).toString();
      } catch {
        problems.push(`${where}.healthUrl is "${healthText}"; it must be an absolute URL or null`);
      }
    }
    const maxPixels = e.maxPixels === undefined || e.maxPixels === null ? null : num('maxPixels', 0, 64);
    const latentChannels = e.latentChannels === undefined ? null : num('latentChannels', 0, 1);
    const downscaleFactor = e.downscaleFactor === undefined ? null : num('downscaleFactor', 0, 1);
    upstreams.push({
      name: str('name') ?? url?.host ?? `#${index}`,
      model: model ?? '',
      url: urlText ?? '',
      operations,
      token,
      timeoutMs: num('timeoutMs', 30_000, 1),
      retries: num('retries', 2, 0),
      maxPixels,
      family,
      latentChannels,
      downscaleFactor,
      healthUrl,
      healthIntervalMs: num('healthIntervalMs', 15_000, 100),
      failureThreshold: num('failureThreshold', 3, 1),
      cooldownMs: num('cooldownMs', 15_000, 0),
      expectedSecondsPerMegapixel: num('expectedSecondsPerMegapixel', 2, 0, false),
    });
  });
  // Names are targets in routes and must tell endpoints apart.
  const seen = new Map<string, number>();
  for (const u of upstreams) seen.set(u.name, (seen.get(u.name) ?? 0) + 1);
  const counters = new Map<string, number>();
  for (const u of upstreams) {
    if ((seen.get(u.name) ?? 0) > 1) {
      const n = (counters.get(u.name) ?? 0) + 1;
      counters.set(u.name, n);
      u.name = `${u.name}#${n}`;
    }
  }
  return { upstreams, problems };
}
