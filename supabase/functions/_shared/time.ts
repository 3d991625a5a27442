// Every timestamp conversion of the project, at microsecond precision (docs/ARCHITECTURE.md
// §5 "Range"): the HTTP date bounds, Ultravox's `created`/`joined`/`ended`, and the text
// Postgres returns. A JS Date keeps milliseconds, so instants travel as bigint microseconds
// since the epoch, and a Date is used only where milliseconds are all there is (now()).
//
// One grammar for all of them, ISO 8601 with an offset:
//   YYYY-MM-DD T HH:MM [:SS [.fraction]] (Z | ±HH:MM)     (T and Z in any case)
// read by hand: it runs three times per imported call, and a capturing regex costs several
// times more.

/** An instant with its canonical form: UTC, six fractional digits ("…T….ffffffZ"). */
export interface Instant {
  micros: bigint;
  iso: string;
}

/** How digits beyond the microsecond become a microsecond. */
export type Rounding = "half-up" | "up" | "down";

const MICROS_PER_SECOND = 1_000_000n;
const MIN_MICROS = -62135596800n * MICROS_PER_SECOND; // 0001-01-01T00:00:00Z
const MAX_MICROS = 253402300800n * MICROS_PER_SECOND - 1n; // 9999-12-31T23:59:59.999999Z

/**
 * Microseconds since the epoch of a date-time in the grammar above, or null for anything
 * else (no offset, a date not on the calendar, a year before 0001). `half-up` is how
 * Postgres rounds a stored timestamptz.
 */
export function readTimestamp(s: string, rounding: Rounding = "half-up"): bigint | null {
  if (s.length < 17) return null;
  const y = digitsAt(s, 0, 4);
  const mo = digitsAt(s, 5, 2);
  const d = digitsAt(s, 8, 2);
  const h = digitsAt(s, 11, 2);
  const mi = digitsAt(s, 14, 2);
  if (
    s[4] !== "-" || s[7] !== "-" || (s[10] !== "T" && s[10] !== "t") || s[13] !== ":" ||
    y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) ||
    h < 0 || h > 23 || mi < 0 || mi > 59
  ) return null;
  let i = 16;
  let sec = 0;
  let fraction = "";
  if (s[i] === ":") {
    sec = digitsAt(s, i + 1, 2);
    if (sec < 0 || sec > 59) return null;
    i += 3;
    if (s[i] === "." || s[i] === ",") {
      let j = i + 1;
      while (j < s.length && s.charCodeAt(j) >= 48 && s.charCodeAt(j) <= 57) j++;
      if (j === i + 1) return null;
      fraction = s.slice(i + 1, j);
      i = j;
    }
  }
  let offset = 0;
  if (s[i] === "Z" || s[i] === "z") {
    if (s.length !== i + 1) return null;
  } else if ((s[i] === "+" || s[i] === "-") && s.length === i + 6 && s[i + 3] === ":") {
    const oh = digitsAt(s, i + 1, 2);
    const om = digitsAt(s, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return null;
    offset = (s[i] === "-" ? -1 : 1) * (oh * 3600 + om * 60);
  } else {
    return null;
  }
  const seconds = daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
  return BigInt(seconds) * MICROS_PER_SECOND + fractionMicros(fraction, rounding);
}

function fractionMicros(fraction: string, rounding: Rounding): bigint {
  if (fraction.length <= 6) return BigInt(fraction.padEnd(6, "0"));
  const micros = BigInt(fraction.slice(0, 6));
  const rest = fraction.slice(6);
  if (rounding === "down" || /^0*$/.test(rest)) return micros;
  if (rounding === "up") return micros + 1n;
  return rest.charCodeAt(0) >= 53 /* "5" */ ? micros + 1n : micros;
}

/**
 * A range bound (docs/ARCHITECTURE.md §6): a date-time in the grammar above, or a bare
 * `YYYY-MM-DD`, which means 00:00:00Z of that day as a `from` bound and 23:59:59.999999Z as
 * a `to` bound. Digits beyond the microsecond round inward (up for `from`, down for `to`),
 * so the bound never admits an instant the input excluded. Null for anything else.
 */
export function parseDateBound(input: string, bound: "from" | "to"): Instant | null {
  if (input.length === 10) {
    const start = readTimestamp(`${input}T00:00Z`);
    if (start === null) return null;
    return instant(bound === "from" ? start : start + 86_400n * MICROS_PER_SECOND - 1n);
  }
  const micros = readTimestamp(input, bound === "from" ? "up" : "down");
  return micros === null ? null : instant(micros);
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

/**
 * Microseconds since the epoch of a date-time in the grammar above (an Ultravox timestamp);
 * digits past the sixth round half up, as Postgres rounds them. Throws on anything else.
 */
export function isoToMicros(iso: string): bigint {
  const micros = readTimestamp(iso);
  if (micros === null) {
    throw new TypeError(`not an ISO date-time: ${JSON.stringify(iso.slice(0, 40))}`);
  }
  return micros;
}

/**
 * Microseconds since the epoch of a timestamp as the functions read it from Postgres
 * ("…T….ffffffZ", see isoFromPg), as a number (exact up to the year 2255).
 */
export function microsFromIso(iso: string): number {
  return Number(isoToMicros(iso));
}

/** `to` − `from` in microseconds, exactly. */
export function microsBetween(from: string, to: string): bigint {
  return isoToMicros(to) - isoToMicros(from);
}

/** 25814921n → "25.814921", 27000000n → "27", -1500000n → "-1.5". */
export function formatMicros(micros: bigint): string {
  const sign = micros < 0n ? "-" : "";
  const abs = micros < 0n ? -micros : micros;
  const whole = abs / MICROS_PER_SECOND;
  const fraction = String(abs % MICROS_PER_SECOND).padStart(6, "0").replace(/0+$/, "");
  return fraction === "" ? `${sign}${whole}` : `${sign}${whole}.${fraction}`;
}

/** ended − joined as exact decimal seconds: "…33.841005Z" → "…59.655926Z" = "25.814921". */
export function durationSeconds(joined: string, ended: string): string {
  return formatMicros(microsBetween(joined, ended));
}

/**
 * A timestamptz as Postgres prints it in a UTC session ("2025-03-22 15:48:32.997+00") →
 * "2025-03-22T15:48:32.997000Z". Text of another shape is returned as it came.
 */
export function isoFromPg(text: string): string {
  if (text.length < 22 || text[10] !== " " || !text.endsWith("+00")) return text;
  const micros = readTimestamp(`${text.slice(0, 10)}T${text.slice(11, -3)}Z`);
  return micros === null ? text : isoFromMicros(micros);
}

/** The decimal number written by `n` digits at `from`, or -1 if one of them is not a digit. */
function digitsAt(s: string, from: number, n: number): number {
  let value = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    value = value * 10 + c;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}
