// Timestamps as the stand-in Ultravox reads and writes them (docs/ULTRAVOX.md: ISO 8601 UTC with
// microseconds). Its own date arithmetic (Date.parse for the seconds, the digits for the
// fraction) instead of the importer's time.ts, so a bug there cannot hide behind the same bug here.

/**
 * Microseconds since the epoch of an ISO date-time, null if it is not one. Extra fraction digits
 * are dropped, as Django's parser drops them; no offset means UTC.
 */
export function microsOf(text: string): bigint | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/
    .exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s = "00", fraction = "", zone = "Z"] = m;
  // Date.parse would roll 2026-02-30 over to March; a real calendar date round-trips.
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone}`);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1000n + BigInt((fraction + "000000").slice(0, 6));
}

/** Microseconds since the epoch → "2026-10-31T23:59:59.999999Z" (always six digits). */
export function isoOfMicros(micros: bigint): string {
  const [seconds, fraction] = splitSeconds(micros);
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}Z`;
}

/**
 * What Python's `str()` makes of an aware UTC datetime, as DRF writes a cursor's position:
 * "2025-03-22 15:40:02.118204+00:00", the fraction left out when it is zero.
 */
export function pythonStrOfMicros(micros: bigint): string {
  const [seconds, fraction] = splitSeconds(micros);
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ");
  return `${base}${fraction === "000000" ? "" : `.${fraction}`}+00:00`;
}

/** A position as Django reads it back: a date-time with a space or a T, an offset or none. */
export function microsOfPosition(text: string): bigint | null {
  return microsOf(text.replace(/^(\d{4}-\d{2}-\d{2}) /, "$1T"));
}

function splitSeconds(micros: bigint): [bigint, string] {
  let seconds = micros / 1_000_000n;
  if (micros < 0n && seconds * 1_000_000n !== micros) seconds -= 1n; // floor, not truncation
  return [seconds, String(micros - seconds * 1_000_000n).padStart(6, "0")];
}
