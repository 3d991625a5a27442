// An Ultravox Call object, checked and mapped to a row of `calls` (DESIGN §4).
//
// Loose on purpose: fields come and go between API versions, so unknown fields are ignored here
// and kept in `raw`. Timestamps stay the strings received; durations are exact decimal strings
// (a JS Date keeps milliseconds only, and Ultravox sends microseconds).

import { z } from "zod";
import { formatMicros, microsBetween, readTimestamp } from "../time.ts";

export const END_REASONS = [
  "unjoined",
  "hangup",
  "agent_hangup",
  "timeout",
  "connection_error",
  "system_error",
] as const;

export type EndReason = typeof END_REASONS[number];

// The grammar of time.ts, so both checks agree on every timestamp.
const Timestamp = z.string().refine((v) => readTimestamp(v) !== null, "Invalid ISO datetime");
/** Protobuf JSON duration: seconds, up to 9 decimals, an `s` suffix ("27s", "0.384s"). */
const DURATION_RE = /^-?\d+(?:\.\d{1,9})?s$/;
const Duration = z.string().regex(DURATION_RE, "Invalid duration");

export const CallSchema = z.looseObject({
  callId: z.guid(),
  created: Timestamp,
  joined: Timestamp.nullish(),
  ended: Timestamp.nullish(),
  endReason: z.enum(END_REASONS).nullish(),
  billedDuration: Duration.nullish(),
  shortSummary: z.string().nullish(),
  summary: z.string().nullish(),
  agentId: z.guid().nullish(),
  agent: z.looseObject({ agentId: z.guid().nullish() }).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  recordingEnabled: z.boolean().nullish(),
});

export type Call = z.infer<typeof CallSchema>;

/** A row of `calls`, without the columns the importer adds (agency, job, source). */
export interface CallRow {
  ultravox_call_id: string;
  ultravox_agent_id: string | null;
  created_at: string;
  joined_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  duration_seconds: string | null;
  billed_duration_seconds: string | null;
  short_summary: string | null;
  summary: string | null;
  recording_enabled: boolean;
  metadata: Record<string, string>;
  raw: unknown;
}

export type ParsedCall =
  | { ok: true; row: CallRow }
  | { ok: false; callId: string | null; reason: string };

const REASON_MAX_CHARS = 200;

/**
 * Checks one call object and maps it to a row. Never throws: a bad call is reported, not fatal.
 *
 * Most calls are fine, so a hand-written check (about 1 µs a call) vouches for them, and zod
 * (about 6 µs, mostly its calendar-aware date regex and copying every field) runs only for the
 * ones it cannot vouch for, to accept them after all or to say what is wrong.
 */
export function parseCall(input: unknown): ParsedCall {
  if (!passesFastCheck(input)) {
    const parsed = CallSchema.safeParse(input);
    if (!parsed.success) {
      return { ok: false, callId: readableCallId(input), reason: describe(parsed.error) };
    }
  }
  // Either check passed, so the input has the schema's shape; build from it, keeping it as raw.
  const call = input as Call;
  const joined = call.joined ?? null;
  const ended = call.ended ?? null;
  let duration: string | null = null;
  if (joined !== null && ended !== null) {
    let micros: bigint;
    try {
      micros = microsBetween(joined, ended);
    } catch {
      // Unreachable while both checks read dates with time.ts; here so parseCall never throws.
      return { ok: false, callId: call.callId, reason: "joined/ended: unreadable date-time" };
    }
    // A negative duration would poison every statistic built on the column.
    if (micros < 0n) return { ok: false, callId: call.callId, reason: "ended: before joined" };
    duration = formatMicros(micros);
  }
  return {
    ok: true,
    row: {
      ultravox_call_id: call.callId,
      ultravox_agent_id: call.agentId ?? call.agent?.agentId ?? null,
      created_at: call.created,
      joined_at: joined,
      ended_at: ended,
      end_reason: call.endReason ?? null,
      duration_seconds: duration,
      billed_duration_seconds: call.billedDuration == null
        ? null
        : parseDurationSeconds(call.billedDuration),
      short_summary: call.shortSummary ?? null,
      summary: call.summary ?? null,
      recording_enabled: call.recordingEnabled ?? false,
      metadata: call.metadata ?? {},
      raw: input,
    },
  };
}

/**
 * True only for calls CallSchema accepts (it may say false for some it accepts too; zod then
 * decides). Keep the two in step: a test checks this one never accepts what zod rejects.
 */
export function passesFastCheck(input: unknown): boolean {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return false;
  const c = input as Record<string, unknown>;
  return isGuid(c.callId) &&
    isIsoDateTime(c.created) &&
    (c.joined == null || isIsoDateTime(c.joined)) &&
    (c.ended == null || isIsoDateTime(c.ended)) &&
    (c.endReason == null || END_REASON_SET.has(c.endReason as string)) &&
    (c.billedDuration == null ||
      (typeof c.billedDuration === "string" && DURATION_RE.test(c.billedDuration))) &&
    (c.shortSummary == null || typeof c.shortSummary === "string") &&
    (c.summary == null || typeof c.summary === "string") &&
    (c.agentId == null || isGuid(c.agentId)) &&
    (c.agent == null || isAgent(c.agent)) &&
    (c.metadata == null || isStringRecord(c.metadata)) &&
    (c.recordingEnabled == null || typeof c.recordingEnabled === "boolean");
}

const END_REASON_SET: ReadonlySet<string> = new Set(END_REASONS);
// The pattern z.guid() uses.
const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function isGuid(v: unknown): boolean {
  return typeof v === "string" && GUID_RE.test(v);
}

function isAgent(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const id = (v as { agentId?: unknown }).agentId;
  return id == null || isGuid(id);
}

function isStringRecord(v: unknown): boolean {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const key in v) {
    if (typeof (v as Record<string, unknown>)[key] !== "string") return false;
  }
  return true;
}

function isIsoDateTime(v: unknown): boolean {
  return typeof v === "string" && readTimestamp(v) !== null;
}

/** "27s" → "27", "0.384s" → "0.384", "1.500s" → "1.5": the decimal as sent, no float on the way. */
export function parseDurationSeconds(s: string): string {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(s);
  if (m === null) throw new TypeError(`not a duration: ${JSON.stringify(s.slice(0, 40))}`);
  const whole = m[2].replace(/^0+(?=\d)/, "");
  const fraction = (m[3] ?? "").replace(/0+$/, "");
  const sign = m[1] === "-" && (whole !== "0" || fraction !== "") ? "-" : "";
  return fraction === "" ? `${sign}${whole}` : `${sign}${whole}.${fraction}`;
}

function readableCallId(input: unknown): string | null {
  if (typeof input !== "object" || input === null) return null;
  const id = (input as { callId?: unknown }).callId;
  return typeof id === "string" && id !== "" ? storableText(id.slice(0, 64)) : null;
}

/**
 * Text Postgres can store: NUL characters and lone surrogates (also those a cut leaves)
 * become U+FFFD. For what a failure echoes back (call ids, field paths), never call data.
 */
export function storableText(text: string): string {
  return text.replaceAll("\0", "\uFFFD").toWellFormed();
}

function shorten(reason: string): string {
  return storableText(
    reason.length <= REASON_MAX_CHARS ? reason : reason.slice(0, REASON_MAX_CHARS - 1) + "…",
  );
}

/** "created: Invalid ISO datetime", plus how many other problems the call has. */
function describe(error: z.ZodError): string {
  const [first, ...rest] = error.issues;
  const where = first.path.length === 0 ? "call" : first.path.map(String).join(".");
  const more = rest.length === 0 ? "" : ` (+${rest.length} more)`;
  const reason = `${where}: ${first.message}${more}`;
  return shorten(reason);
}

const SUSPECT_TEXT = /[\0\uD800-\uDFFF]/;

/**
 * Where a value holds text Postgres cannot store (text and jsonb refuse U+0000 and lone
 * surrogates, and one such string would fail a whole page's insert on every retry), e.g.
 * "summary: contains a NUL character (U+0000)"; null when there is none.
 */
export function unstorableText(value: unknown, path = ""): string | null {
  if (typeof value === "string") {
    if (!SUSPECT_TEXT.test(value)) return null;
    const problem = value.includes("\0")
      ? "contains a NUL character (U+0000)"
      : value.isWellFormed()
      ? null
      : "contains a lone surrogate (invalid UTF-16)";
    if (problem === null) return null;
    const reason = `${path === "" ? "call" : path}: ${problem}`;
    return shorten(reason);
  }
  if (typeof value !== "object" || value === null) return null;
  for (const key in value) { // arrays too: "0", "1", …
    const here = path === "" ? key : `${path}.${key}`;
    const bad = unstorableText(key, here) ??
      unstorableText((value as Record<string, unknown>)[key], here);
    if (bad !== null) return bad;
  }
  return null;
}
