/**
 * `latentgate keys create|list|revoke`: API keys in the keys file (`API_KEYS_FILE`) and, with
 * `REDIS_URL`, in Redis for every instance. A new key is printed once, on stdout alone (so
 * `KEY=$(latentgate keys create ...)` works); only its hash is kept.
 */
import { z } from 'zod';
import { KeyStore } from '../auth/key-store.js';
import { type ApiKey, SCOPES } from '../auth/keys.js';
import { formatRate, parseQuota, parseRate } from '../auth/limit-specs.js';
import { loadConfig } from '../config/config.js';
import { parseCommandLine, switchFlag, UsageError } from './args.js';

const scopesFlag = () =>
  z
    .string()
    .transform((text) => text.split(',').map((s) => s.trim()))
    .pipe(
      z
        .array(z.enum(SCOPES, { error: `allowed scopes: ${SCOPES.join(', ')}` }))
        .min(1, { error: `name at least one of ${SCOPES.join(', ')}` }),
    );

/** A flag read by `parse`, whose refusal (a GatewayError naming what is allowed) becomes the flag's issue. */
const parsedFlag = <T>(parse: (text: string) => T) =>
  z.string().transform((text, ctx) => {
    try {
      return parse(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

const rateFlag = () =>
  parsedFlag((text) => {
    const { requests, windowSeconds } = parseRate(text);
    return { requests, windowSeconds };
  });

const quotaFlag = () => parsedFlag((text) => parseQuota(text).pixelSeconds);

export async function keysCommand(argv: string[]): Promise<void> {
  const [action, ...rest] = argv;
  switch (action) {
    case 'create':
      return create(rest);
    case 'list':
      return list(rest);
    case 'revoke':
      return revoke(rest);
    default:
      throw new UsageError(
        action === undefined ? 'keys needs create, list or revoke' : `unknown keys command "${action}"`,
      );
  }
}

async function withStore<T>(use: (store: KeyStore) => Promise<T>): Promise<T> {
  const store = await KeyStore.fromConfig(loadConfig(), false);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

async function create(argv: string[]): Promise<void> {
  const { positional, flags } = parseCommandLine(argv, {
    name: z.string(),
    scopes: scopesFlag(),
    rate: rateFlag().optional(),
    quota: quotaFlag().optional(),
    json: switchFlag(),
  });
  if (positional.length) throw new UsageError(`keys create takes no arguments besides flags (got ${positional[0]})`);
  const { key, record } = await withStore((store) =>
    store.create({
      name: flags.name,
      scopes: flags.scopes,
      rate: flags.rate ?? null,
      quotaPixelSecondsPerDay: flags.quota ?? null,
    }),
  );
  if (flags.json) {
    console.log(JSON.stringify({ name: record.name, key }));
    return;
  }
  console.error(`[latentgate] created key "${record.name}": ${describe(record)}`);
  console.error('[latentgate] the key is shown this once; only its hash is kept');
  console.log(key);
}

async function list(argv: string[]): Promise<void> {
  const { positional, flags } = parseCommandLine(argv, { json: switchFlag() });
  if (positional.length) throw new UsageError(`keys list takes no arguments (got ${positional[0]})`);
  const { keys, fileOnly } = await withStore(async (store) => ({ keys: store.list(), fileOnly: store.fileOnlyNames }));
  if (fileOnly.length)
    console.error(`[latentgate] in API_KEYS_FILE but not in Redis, so not accepted: ${fileOnly.join(', ')}`);
  if (flags.json) {
    console.log(JSON.stringify(keys));
    return;
  }
  if (!keys.length) console.error('[latentgate] no API keys');
  for (const key of keys) console.log(`${key.name}\t${describe(key)}`);
}

async function revoke(argv: string[]): Promise<void> {
  const { positional } = parseCommandLine(argv, {});
  if (positional.length !== 1) throw new UsageError('keys revoke takes one key name');
  const [name] = positional;
  const { removed, left } = await withStore(async (store) => ({
    removed: await store.revoke(name),
    left: store.list().map((k) => k.name),
  }));
  if (removed) {
    console.error(`[latentgate] revoked key "${name}"`);
    return;
  }
  console.error(`latentgate: no key named "${name}"; keys: ${left.join(', ') || 'none'}`);
  process.exitCode = 1;
}

function describe(key: ApiKey): string {
  const quota = key.quotaPixelSecondsPerDay === null ? 'unlimited' : `${key.quotaPixelSecondsPerDay} pixel-seconds/day`;
  return `scopes ${key.scopes.join(',')}; rate ${formatRate(key.rate)}; quota ${quota}; created ${key.created}`;
}
