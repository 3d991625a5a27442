// Date inputs of DESIGN.md §6, kept at microsecond precision. A JS Date keeps milliseconds,
// so it is used only to check calendar fields and do offset arithmetic at whole seconds;
// the fraction is carried as digits, and instants as bigint microseconds since the epoch.

/** An instant with its canonical form: UTC, six fractional digits ("…T….ffffffZ"). */
export interface Instant {
  micros: bigint;
  iso: string;
}

const BARE_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}:\d{2})$/;

const MICROS_PER_SECOND = 1_000_000n;
const MIN_MICROS = -62135596800n * MICROS_PER_SECOND; // 0001-01-01T00:00:00Z
const MAX_MICROS = 253402300800n * MICROS_PER_SECOND - 1n; // 9999-12-31T23:59:59.999999Z

/**
 * Parses a range bound: an ISO 8601 date-time with an offset (`Z` or `±hh:mm`; seconds and
 * up to nine fractional digits optional) or a bare `YYYY-MM-DD`, which means 00:00:00Z of
 * that day as a `from` bound and 23:59:59.999999Z as a `to` bound. Digits beyond the
 * microsecond round inward (up for `from`, down for `to`), so the bound never admits an
 * instant the input excluded. Returns null for anything else or an impossible date.
 */
export function parseDateBound(input: string, bound: "from" | "to"): Instant | null {
  const bare = BARE_DATE.exec(input);
  if (bare) {
    const seconds = epochSeconds(+bare[1], +bare[2], +bare[3], 0, 0, 0);
    if (seconds === null) return null;
    const start = BigInt(seconds) * MICROS_PER_SECOND;
    return instant(bound === "from" ? start : start + 86_400n * MICROS_PER_SECOND - 1n);
  }
  const m = DATE_TIME.exec(input);
  if (!m) return null;
  const local = epochSeconds(+m[1], +m[2], +m[3], +m[4], +m[5], m[6] === undefined ? 0 : +m[6]);
  if (local === null) return null;
  let offsetSeconds = 0;
  if (m[8] !== "Z" && m[8] !== "z") {
    const hours = +m[8].slice(1, 3);
    const minutes = +m[8].slice(4, 6);
    if (hours > 23 || minutes > 59) return null;
    offsetSeconds = (m[8][0] === "-" ? -1 : 1) * (hours * 3600 + minutes * 60);
  }
  const nanos = BigInt((m[7] ?? "").padEnd(9, "0"));
  const fraction = bound === "from" ? (nanos + 999n) / 1000n : nanos / 1000n;
  return instant(BigInt(local - offsetSeconds) * MICROS_PER_SECOND + fraction);
}

/** Seconds since the epoch of a UTC wall-clock time, or null when a field is out of range. */
function epochSeconds(y: number, mo: number, d: number, h: number, mi: number, s: number) {
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null; // e.g. 02-30
  date.setUTCHours(h, mi, s, 0);
  return date.getTime() / 1000;
}

function instant(micros: bigint): Instant | null {
  if (micros < MIN_MICROS || micros > MAX_MICROS) return null;
  return { micros, iso: isoFromMicros(micros) };
}

/** A JS Date (milliseconds) as an Instant. */
export function instantFromDate(date: Date): Instant {
  const micros = BigInt(date.getTime()) * 1000n;
  return { micros, iso: isoFromMicros(micros) };
}

/** Microseconds since the epoch → "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
export function isoFromMicros(micros: bigint): string {
  let seconds = micros / MICROS_PER_SECOND;
  let fraction = micros % MICROS_PER_SECOND;
  if (fraction < 0n) {
    fraction += MICROS_PER_SECOND;
    seconds -= 1n;
  }
  const whole = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  return `${whole}.${fraction.toString().padStart(6, "0")}Z`;
}

const ISO_UTC = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?(?:Z|\+00(?::?00)?)$/;

/**
 * Microseconds since the epoch of a UTC timestamp as Postgres returns it through db.ts
 * ("…T….ffffffZ"), as a number (exact up to the year 2255).
 */
export function microsFromIso(iso: string): number {
  const m = ISO_UTC.exec(iso);
  if (!m) throw new Error(`Not a UTC timestamp: ${iso}`);
  const millis = Date.parse(`${m[1]}Z`);
  if (Number.isNaN(millis)) throw new Error(`Not a UTC timestamp: ${iso}`);
  return millis * 1000 + Number((m[2] ?? "").padEnd(6, "0"));
}
