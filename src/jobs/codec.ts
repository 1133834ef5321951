/**
 * JSON for what jobs keep in Redis (specs, events, results): plain JSON loses Dates, bigints (img2img
 * seeds), byte arrays and non-finite numbers (an estimate of Infinity), so these travel tagged.
 */

type Tagged = { $date: number } | { $bigint: string } | { $bytes: string } | { $number: string };

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  if (raw instanceof Date) return { $date: raw.getTime() } satisfies Tagged;
  if (typeof raw === 'bigint') return { $bigint: raw.toString() } satisfies Tagged;
  if (raw instanceof Uint8Array) return { $bytes: Buffer.from(raw).toString('base64') } satisfies Tagged;
  if (typeof raw === 'number' && !Number.isFinite(raw)) return { $number: String(raw) } satisfies Tagged;
  return value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (keys.length !== 1) return value;
  const tagged = value as Record<string, unknown>;
  if (typeof tagged.$date === 'number') return new Date(tagged.$date);
  if (typeof tagged.$bigint === 'string') return BigInt(tagged.$bigint);
  if (typeof tagged.$bytes === 'string') return new Uint8Array(Buffer.from(tagged.$bytes, 'base64'));
  if (typeof tagged.$number === 'string') return Number(tagged.$number);
  return value;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer);
}

export function fromJson<T>(text: string): T {
  return JSON.parse(text, reviver) as T;
}
