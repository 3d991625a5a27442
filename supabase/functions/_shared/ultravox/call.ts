// An Ultravox Call object mapped to a row of `calls` (docs/ARCHITECTURE.md §4, and §5 "What a
// call needs"; the fields are described in docs/ULTRAVOX.md "The Call object").
//
// A call needs only a `callId` (a uuid in any 8-4-4-4-12 hex form) and a `created` timestamp.
// Every other column is read when its field has the documented shape and is null otherwise
// (`recording_enabled` false, `metadata` {}), and the field's name is listed in `unreadable`;
// `raw` is always the object exactly as received. Ultravox adds fields and enum values between
// API versions (the endReason enum grew three times in five months), so nothing here rejects a
// call for a field it does not store. A call fails only when it cannot be stored at all: no
// valid callId/created, or something jsonb cannot hold (see unstorableText).
//
// Timestamps stay the strings received; durations are exact decimal strings (a JS Date keeps
// milliseconds only, and Ultravox sends microseconds). Conversions live in ../time.ts.

import { z } from "zod";
import { formatMicros, isoFromMicros, readTimestamp } from "../time.ts";

/**
 * The end reasons documented today (docs/ULTRAVOX.md), for reference only: `end_reason` keeps
 * whatever string Ultravox sends, since the enum keeps growing.
 */
export const END_REASONS = [
  "unjoined",
  "hangup",
  "agent_hangup",
  "timeout",
  "connection_error",
  "system_error",
] as const;

export type EndReason = typeof END_REASONS[number];

/** The grammar of time.ts, narrowed to what Postgres stores (see pgTimestamp). */
const Timestamp = z.string().superRefine((value, ctx) => {
  if (readTimestamp(value) === null) {
    ctx.addIssue({ code: "custom", message: "Invalid ISO datetime" });
  } else if (pgTimestamp(value) === null) {
    ctx.addIssue({
      code: "custom",
      message: "Invalid ISO datetime (an offset beyond ±15:59, which Postgres refuses)",
    });
  }
});

/** What a call needs to be stored at all. Every other field is optional and read leniently. */
export const CallSchema = z.looseObject({
  callId: z.guid(),
  created: Timestamp,
});

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

/**
 * `unreadable`: the top-level fields that were present (not null or undefined) but not of
 * their documented shape, sorted; their columns hold null (false, {}). One entry is not a
 * field of the object: `"duration"` means joined and ended were both readable but ended is
 * before joined, so `duration_seconds` is null (joined_at and ended_at keep what was sent).
 */
export type ParsedCall =
  | { ok: true; row: CallRow; unreadable: string[] }
  | { ok: false; callId: string | null; reason: string };

/** The names `unreadable` may hold. */
export const READ_FIELDS = [
  "agent",
  "agentId",
  "billedDuration",
  "duration",
  "endReason",
  "ended",
  "joined",
  "metadata",
  "recordingEnabled",
  "shortSummary",
  "summary",
] as const;

const REASON_MAX_CHARS = 200;

/**
 * Values nested deeper than this (objects and arrays, the call itself at level 0) are refused
 * as unstorable. JSON.stringify, which the engine runs on every page, can overflow V8's stack at
 * about 5,000 levels (measured here: 5,369 for objects it did not parse itself), and Postgres
 * parses json recursively and gives up with "stack depth limit exceeded" past about 14,500
 * levels at its default max_stack_depth (2 MB). Either would fail the whole page on every retry;
 * a real call is a few levels deep.
 */
export const MAX_NESTING = 1_000;

/**
 * Maps one call object to a row. Never throws, whatever the input (getters that throw and
 * proxies included): a call that cannot be stored is reported, not fatal.
 *
 * The needs are checked by hand (zod runs only to word a refusal), then one walk over the
 * whole object checks that jsonb can hold it, then each column is read by hand. About 2 µs
 * for a typical call.
 */
export function parseCall(input: unknown): ParsedCall {
  try {
    return mapCall(input);
  } catch (error) {
    // A getter or proxy that throws, say: nothing of such an object could be stored either.
    const reason = shorten(`call: could not be read (${errorName(error)})`);
    return { ok: false, callId: readableCallId(input), reason };
  }
}

function errorName(error: unknown): string {
  try {
    const name = error instanceof Error ? error.name : null;
    return typeof name === "string" ? name.slice(0, 40) : "an exception";
  } catch {
    return "an exception";
  }
}

function mapCall(input: unknown): ParsedCall {
  if (!passesFastCheck(input)) {
    const parsed = CallSchema.safeParse(input);
    if (!parsed.success) {
      return { ok: false, callId: readableCallId(input), reason: describe(parsed.error) };
    }
    // Unreachable while both read callId and created the same way; never store what the fast
    // check could not vouch for.
    return { ok: false, callId: readableCallId(input), reason: "call: unreadable callId/created" };
  }
  const c = input as Record<string, unknown>;
  const callId = c.callId as string;

  const unstorable = unstorableText(input);
  if (unstorable !== null) return { ok: false, callId: storableText(callId), reason: unstorable };

  const unreadable: string[] = [];

  // agentId is typed a plain string (no uuid format); agent.agentId is a uuid.
  let agentId: string | null = null;
  const topAgentId = c.agentId;
  if (topAgentId != null) {
    if (isGuid(topAgentId)) agentId = topAgentId;
    else unreadable.push("agentId");
  }
  const agent = c.agent;
  if (agent != null) {
    if (typeof agent === "object" && !Array.isArray(agent)) {
      const nested = (agent as { agentId?: unknown }).agentId;
      if (nested != null) {
        if (isGuid(nested)) agentId ??= nested;
        else unreadable.push("agent");
      }
    } else {
      unreadable.push("agent");
    }
  }

  let joinedAt: string | null = null;
  let joinedMicros: bigint | null = null;
  const joined = c.joined;
  if (joined != null) {
    const micros = typeof joined === "string" ? readTimestamp(joined) : null;
    const text = micros === null ? null : pgTimestamp(joined as string);
    if (text === null) unreadable.push("joined");
    else {
      joinedAt = text;
      joinedMicros = micros;
    }
  }
  let endedAt: string | null = null;
  let endedMicros: bigint | null = null;
  const ended = c.ended;
  if (ended != null) {
    const micros = typeof ended === "string" ? readTimestamp(ended) : null;
    const text = micros === null ? null : pgTimestamp(ended as string);
    if (text === null) unreadable.push("ended");
    else {
      endedAt = text;
      endedMicros = micros;
    }
  }
  let duration: string | null = null;
  if (joinedMicros !== null && endedMicros !== null) {
    const micros = endedMicros - joinedMicros;
    // A negative duration would poison every statistic built on the column.
    if (micros < 0n) unreadable.push("duration");
    else duration = formatMicros(micros);
  }

  const endReason = readText(c.endReason, "endReason", unreadable);

  let billed: string | null = null;
  const billedDuration = c.billedDuration;
  if (billedDuration != null) {
    billed = typeof billedDuration === "string" ? readBilledSeconds(billedDuration) : null;
    if (billed === null) unreadable.push("billedDuration");
  }

  const shortSummary = readText(c.shortSummary, "shortSummary", unreadable);
  const summary = readText(c.summary, "summary", unreadable);

  let recordingEnabled = false;
  const recording = c.recordingEnabled;
  if (recording != null) {
    if (typeof recording === "boolean") recordingEnabled = recording;
    else unreadable.push("recordingEnabled");
  }

  let metadata: Record<string, string>;
  const meta = c.metadata;
  if (meta == null) metadata = {};
  else if (typeof meta !== "object" || Array.isArray(meta)) {
    metadata = {};
    unreadable.push("metadata");
  } else {
    const read = readStringEntries(meta as Record<string, unknown>);
    metadata = read ?? stringEntries(meta as Record<string, unknown>);
    if (read === null) unreadable.push("metadata");
  }

  if (unreadable.length > 1) unreadable.sort();
  return {
    ok: true,
    row: {
      ultravox_call_id: callId,
      ultravox_agent_id: agentId,
      created_at: pgTimestamp(c.created as string)!,
      joined_at: joinedAt,
      ended_at: endedAt,
      end_reason: endReason,
      duration_seconds: duration,
      billed_duration_seconds: billed,
      short_summary: shortSummary,
      summary,
      recording_enabled: recordingEnabled,
      metadata,
      raw: input,
    },
    unreadable,
  };
}

/**
 * True only for calls that have what a call needs, as CallSchema says (it may say false for
 * some it accepts too; zod then decides). Keep the two in step: a test checks this one never
 * accepts what zod rejects.
 */
export function passesFastCheck(input: unknown): boolean {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return false;
  const c = input as Record<string, unknown>;
  const created = c.created;
  return isGuid(c.callId) && typeof created === "string" && readTimestamp(created) !== null &&
    pgTimestamp(created) !== null;
}

// The pattern z.guid() uses.
const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

function isGuid(v: unknown): v is string {
  return typeof v === "string" && v.length === 36 && GUID_RE.test(v);
}

/**
 * The text to hand Postgres for a timestamp time.ts reads, or null when Postgres would refuse
 * it: time.ts takes offsets up to ±23:59, Postgres only up to ±15:59 (no real zone is beyond
 * ±14:00). A decimal comma, which Postgres does not read, becomes a point; nothing else of
 * the string changes.
 */
function pgTimestamp(text: string): string | null {
  const n = text.length;
  const sign = text[n - 6];
  // The last six characters are "±HH:MM" exactly when the timestamp has a numeric offset.
  if ((sign === "+" || sign === "-") && text[n - 3] === ":") {
    const hours = (text.charCodeAt(n - 5) - 48) * 10 + text.charCodeAt(n - 4) - 48;
    if (hours > 15) return null;
  }
  return text.includes(",") ? text.replace(",", ".") : text;
}

/** A string field as it came; null (and listed) when it is present but not a string. */
function readText(value: unknown, field: string, unreadable: string[]): string | null {
  if (value == null) return null;
  if (typeof value === "string") return value;
  unreadable.push(field);
  return null;
}

/** The object itself when every value is a string; null when one is not. */
function readStringEntries(meta: Record<string, unknown>): Record<string, string> | null {
  for (const key in meta) {
    if (typeof meta[key] !== "string") return null;
  }
  return meta as Record<string, string>;
}

/**
 * The string entries of a metadata object that also holds other values: each entry is a
 * separate key/value pair (Ultravox filters on them one by one), so the readable ones are kept
 * and the column stays useful; the whole object is in `raw`. `fromEntries` keeps a key named
 * "__proto__" as an ordinary key.
 */
function stringEntries(meta: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(meta).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
}

/** Protobuf JSON duration: seconds, up to 9 decimals, an `s` suffix ("27s", "0.384s"). */
const DURATION_RE = /^-?\d+(?:\.\d{1,9})?s$/;

/**
 * billedDuration as exact decimal seconds, or null when it is not a protobuf duration within
 * protobuf's range (at most 12 digits of seconds, as the schema's duration pattern says): the
 * schema types it only "string", and a huge number would not fit the numeric column.
 */
function readBilledSeconds(s: string): string | null {
  if (!DURATION_RE.test(s)) return null;
  const seconds = parseDurationSeconds(s);
  const point = seconds.indexOf(".");
  const whole = (point === -1 ? seconds : seconds.slice(0, point)).replace("-", "");
  return whole.length > 12 ? null : seconds;
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

/**
 * The `created` of an object the mapper refused, when it is readable (ISO, microseconds, as
 * the page step takes it), else null; never throws. A slice counts the object only inside its
 * range (docs/ARCHITECTURE.md §5 "Sliced walks").
 */
export function readableCreated(o: unknown): string | null {
  try {
    const created = typeof o === "object" && o !== null
      ? (o as { created?: unknown }).created
      : null;
    const micros = typeof created === "string" ? readTimestamp(created) : null;
    if (micros === null) return null;
    // Only what Postgres takes as timestamptz text (years 1 to 9999): anything else would
    // make the whole page step fail, where counting the object is the safe side.
    const iso = isoFromMicros(micros);
    return /^\d{4}-/.test(iso) && !iso.startsWith("0000") ? iso : null;
  } catch {
    return null; // a hostile object (a getter that throws): no range to count it by
  }
}

function readableCallId(input: unknown): string | null {
  try {
    if (typeof input !== "object" || input === null) return null;
    const id = (input as { callId?: unknown }).callId;
    return typeof id === "string" && id !== "" ? storableText(id.slice(0, 64)) : null;
  } catch {
    return null;
  }
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
  return shorten(`${where}: ${first.message}${more}`);
}

// ---- what jsonb can hold ------------------------------------------------------------------
//
// Both walks keep their own stack instead of recursing, so no input (deep nesting, a cycle)
// can overflow the engine's call stack; a cycle ends at MAX_NESTING like any deep nesting.

/**
 * Where a value holds something a jsonb column cannot hold as received, e.g.
 * "summary: contains a NUL character (U+0000)"; null when there is none. Text and jsonb refuse
 * U+0000 and lone surrogates (in keys too), and one such string would fail a whole page's
 * insert on every retry. A value JSON has no form for (a bigint, function or symbol, NaN or
 * ±Infinity, an object that is not a plain object or array) or nesting past MAX_NESTING is
 * refused too: it would not arrive in `raw` as it was received, or not at all. undefined reads
 * as absent, as JSON.stringify has it. parseCall runs this on every call.
 */
export function unstorableText(value: unknown, path = ""): string | null {
  if (!hasFlaw(value)) return null;
  const flaw = findFlaw(value);
  if (flaw === null) return null; // unreachable: the two walks agree
  const inner = flaw.path.join(".");
  let where = path === "" ? inner : inner === "" ? path : `${path}.${inner}`;
  if (where === "") where = "call";
  if (where.length > 120) where = where.slice(0, 119) + "…";
  return shorten(`${where}: ${flaw.problem}`);
}

const SUSPECT_TEXT = /[\0\uD800-\uDFFF]/;

/**
 * Keys already known clean. Calls repeat the same few dozen keys, and a Set look-up is several
 * times cheaper than scanning the key again; only short keys are kept, at most KEY_CACHE_MAX.
 */
const cleanKeys = new Set<string>();
const KEY_CACHE_MAX = 4096;

function keyIsClean(key: string): boolean {
  if (cleanKeys.has(key)) return true;
  if (SUSPECT_TEXT.test(key) && textProblem(key) !== null) return false;
  if (key.length <= 64 && cleanKeys.size < KEY_CACHE_MAX) cleanKeys.add(key);
  return true;
}

/** What is wrong with a value that is not an object or array (null: nothing). */
function leafProblem(value: unknown): string | null {
  switch (typeof value) {
    case "string":
      return SUSPECT_TEXT.test(value) ? textProblem(value) : null;
    case "boolean":
    case "undefined":
      return null;
    case "number":
      return Number.isFinite(value) ? null : `is ${value}, which JSON cannot hold`;
    default:
      return `is a ${typeof value}, which JSON cannot hold`;
  }
}

function textProblem(text: string): string | null {
  if (text.indexOf("\0") !== -1) return "contains a NUL character (U+0000)";
  if (!text.isWellFormed()) return "contains a lone surrogate (invalid UTF-16)";
  return null;
}

/** Objects and arrays are pushed; null and leaves are judged where they stand. */
function isContainer(value: unknown): value is object {
  return typeof value === "object" && value !== null;
}

function containerProblem(value: object, depth: number): string | null {
  if (depth >= MAX_NESTING) {
    return `nests deeper than ${MAX_NESTING} levels, which Postgres refuses`;
  }
  if (Array.isArray(value)) return null;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null ? null : "is not a plain JSON object";
}

/** The fast pass: whether findFlaw would find something. About 0.6 µs for a typical call. */
function hasFlaw(root: unknown): boolean {
  if (!isContainer(root)) return root !== null && leafProblem(root) !== null;
  const stack: object[] = [root];
  const depths: number[] = [0];
  while (stack.length > 0) {
    const value = stack.pop()!;
    const depth = depths.pop()!;
    if (containerProblem(value, depth) !== null) return true;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (isContainer(item)) {
          stack.push(item);
          depths.push(depth + 1);
        } else if (item !== null && leafProblem(item) !== null) return true;
      }
    } else {
      for (const key in value) { // own keys only: the prototype is Object.prototype or null
        if (!keyIsClean(key)) return true;
        const item = (value as Record<string, unknown>)[key];
        if (isContainer(item)) {
          stack.push(item);
          depths.push(depth + 1);
        } else if (item !== null && leafProblem(item) !== null) return true;
      }
    }
  }
  return false;
}

/** Where a value goes wrong: the keys leading to it, outermost first. */
interface Flaw {
  path: string[];
  problem: string;
}

/** The slow pass, once hasFlaw found something: what and where (depth first, in key order). */
function findFlaw(root: unknown): Flaw | null {
  if (!isContainer(root)) {
    const problem = root === null ? null : leafProblem(root);
    return problem === null ? null : { path: [], problem };
  }
  const stack: Frame[] = [{ value: root, key: "", parent: null, depth: 0 }];
  while (stack.length > 0) {
    const frame = stack.pop()!;
    const problem = containerProblem(frame.value, frame.depth);
    if (problem !== null) return { path: pathOf(frame, null), problem };
    const children: Frame[] = [];
    for (const key of Object.keys(frame.value)) {
      const keyProblem = textProblem(key);
      if (keyProblem !== null) return { path: pathOf(frame, key), problem: keyProblem };
      const item = (frame.value as Record<string, unknown>)[key];
      if (isContainer(item)) {
        children.push({ value: item, key, parent: frame, depth: frame.depth + 1 });
      } else if (item !== null) {
        const leaf = leafProblem(item);
        if (leaf !== null) return { path: pathOf(frame, key), problem: leaf };
      }
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return null;
}

/** A container met by findFlaw, linked to the one holding it. */
interface Frame {
  value: object;
  key: string;
  parent: Frame | null;
  depth: number;
}

function pathOf(frame: Frame, lastKey: string | null): string[] {
  const path: string[] = lastKey === null ? [] : [storableText(lastKey)];
  for (let f: Frame | null = frame; f !== null && f.parent !== null; f = f.parent) {
    path.push(storableText(f.key));
  }
  return path.reverse();
}
