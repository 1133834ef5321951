/** Parses human byte sizes: `4GiB`, `512MiB`, `10GB`, `1073741824`. */
import { z } from 'zod';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

export function parseBytes(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return null;
  const factor = UNITS[match[2].toLowerCase()];
  if (factor === undefined) return null;
  return Math.round(Number(match[1]) * factor);
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 2)} ${units[unit]}`;
}

/** A byte size setting: text such as `4GiB` or `1000000` → bytes, at least `min`. */
export function byteSize(min = 0) {
  const allowed = `it must be a size such as 4GiB, 512MiB or 1000000, at least ${formatBytes(min)}`;
  return z.string().transform((text, context) => {
    const bytes = parseBytes(text);
    if (bytes !== null && bytes >= min) return bytes;
    context.issues.push({ code: 'custom', message: allowed, input: text });
    return z.NEVER;
  });
}
