/**
 * Ids of results and jobs that say when they were issued, so a gateway that keeps them in memory can
 * tell an id from before its restart (gone with the process) from a typo. The id is UUID-shaped
 * (version 8, RFC 9562): 32 bits of issue time in Unix seconds, 74 random bits (as many as a UUIDv7),
 * and a 16-bit check over the rest, so a mistyped id is not mistaken for an old one.
 */
import { createHash, randomBytes } from 'node:crypto';

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function check(bytes: Uint8Array): Buffer {
  return createHash('sha256').update('latentgate-id\n').update(bytes.subarray(0, 14)).digest().subarray(0, 2);
}

function text(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A new id issued at `now` (ms since the epoch). */
export function issueId(now: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0);
  bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
  check(bytes).copy(bytes, 14);
  return text(bytes);
}

/** When `id` was issued (ms, rounded down to a second), or null when it is not an id issueId made. */
export function issuedAt(id: string): number | null {
  if (!SHAPE.test(id)) return null;
  const bytes = Buffer.from(id.replaceAll('-', ''), 'hex');
  if (!check(bytes).equals(bytes.subarray(14))) return null;
  return bytes.readUInt32BE(0) * 1000;
}

/**
 * What to say of `id`, which this process does not hold: 'earlier-run' when a run of the gateway that
 * started before `startedAt` issued it and would still keep it now, 'expired' when it would have
 * expired by now anyway, else 'unknown' (a typo, or not an id of ours).
 */
export function unheldId(
  id: string,
  startedAt: number,
  ttlMs: number,
  now: number,
): 'earlier-run' | 'expired' | 'unknown' {
  const issued = issuedAt(id);
  // Issue times are whole seconds: an id of this run's first second is not taken for an older one.
  if (issued === null || issued >= Math.floor(startedAt / 1000) * 1000) return 'unknown';
  return issued + ttlMs > now ? 'earlier-run' : 'expired';
}

/** The message for an id of an earlier run: `what` ("result", "job") and what the caller can do. */
export function earlierRunMessage(what: string, id: string, advice: string): string {
  return `${what} ${id} was issued by an earlier run of this gateway, which kept it in memory only; ${advice}`;
}
