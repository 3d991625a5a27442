// The Call mapper: exact durations, documented nulls, loose about unknown fields and about every
// field but callId and created (an unexpected shape is stored as null and listed in
// `unreadable`), refusing only what cannot be stored, and never throwing on any input.

import assert from "node:assert/strict";
import {
  durationSeconds,
  formatMicros,
  isoToMicros,
  microsBetween,
} from "../../supabase/functions/_shared/time.ts";
import {
  type CallRow,
  CallSchema,
  MAX_NESTING,
  parseCall,
  type ParsedCall,
  parseDurationSeconds,
  passesFastCheck,
  READ_FIELDS,
  unstorableText,
} from "../../supabase/functions/_shared/ultravox/call.ts";
import { microsOf } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount, mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";
import { FUZZ_BASE, fuzzCall } from "../fixtures/ultravox/fuzz.ts";

/** The first call of the example page in docs/ULTRAVOX.md. */
const EXAMPLE = FUZZ_BASE;

/** The second, unjoined call of the same page. */
const UNJOINED = {
  callId: "9b2f0c1e-2d3a-4f7b-8a61-0c5e7d9a1b22",
  created: "2025-03-22T15:40:02.118204Z",
  joined: null,
  ended: "2025-03-22T15:40:32.120011Z",
  endReason: "unjoined",
  billedDuration: null,
  billingStatus: "BILLING_STATUS_FREE_ZERO_EFFECTIVE_DURATION",
  shortSummary: null,
  summary: null,
  agent: null,
  agentId: null,
  metadata: {},
  recordingEnabled: false,
  maxDuration: "3600s",
};

function row(parsed: ParsedCall) {
  assert.ok(parsed.ok, `expected a row, got ${JSON.stringify(parsed)}`);
  return parsed.row;
}

/** The row and the fields read as null for their shape. */
function imported(parsed: ParsedCall) {
  assert.ok(parsed.ok, `expected a row, got ${JSON.stringify(parsed)}`);
  return parsed;
}

function failure(parsed: ParsedCall) {
  assert.ok(!parsed.ok, "expected the call to be refused");
  return parsed;
}

// ---- rows -----------------------------------------------------------------------------------

Deno.test("the example call maps to a row with every field exact", () => {
  assert.deepEqual(row(parseCall(EXAMPLE)), {
    ultravox_call_id: "1371d2cb-5873-4976-9977-918823f69504",
    ultravox_agent_id: "87ab75a4-36dc-4219-8f3e-592dc165003e",
    created_at: "2025-03-22T15:48:32.997086Z",
    joined_at: "2025-03-22T15:48:33.841005Z",
    ended_at: "2025-03-22T15:48:59.655926Z",
    end_reason: "agent_hangup",
    duration_seconds: "25.814921",
    billed_duration_seconds: "27",
    short_summary: "Caller asked about pricing.",
    summary: "The caller asked about …",
    recording_enabled: true,
    metadata: { source: "web" },
    raw: EXAMPLE,
  });
});

Deno.test("an unjoined call has no duration, no billed duration, no summaries and no agent", () => {
  const r = row(parseCall(UNJOINED));
  assert.equal(r.joined_at, null);
  assert.equal(r.ended_at, "2025-03-22T15:40:32.120011Z");
  assert.equal(r.end_reason, "unjoined");
  assert.equal(r.duration_seconds, null);
  assert.equal(r.billed_duration_seconds, null);
  assert.equal(r.short_summary, null);
  assert.equal(r.summary, null);
  assert.equal(r.ultravox_agent_id, null);
  assert.equal(r.recording_enabled, false);
  assert.deepEqual(r.metadata, {});
});

Deno.test("a call still in progress has an end reason and an end of null", () => {
  const r = row(parseCall({ ...EXAMPLE, ended: null, endReason: null, billedDuration: null }));
  assert.equal(r.ended_at, null);
  assert.equal(r.end_reason, null);
  assert.equal(r.duration_seconds, null);
});

Deno.test("missing optional fields read as null, metadata as {} and recordingEnabled as false", () => {
  const r = row(parseCall({ callId: EXAMPLE.callId, created: EXAMPLE.created }));
  assert.deepEqual(r, {
    ultravox_call_id: EXAMPLE.callId,
    ultravox_agent_id: null,
    created_at: EXAMPLE.created,
    joined_at: null,
    ended_at: null,
    end_reason: null,
    duration_seconds: null,
    billed_duration_seconds: null,
    short_summary: null,
    summary: null,
    recording_enabled: false,
    metadata: {},
    raw: { callId: EXAMPLE.callId, created: EXAMPLE.created },
  });
});

Deno.test("the agent id falls back to agent.agentId when agentId is missing", () => {
  const { agentId: _, ...withoutAgentId } = EXAMPLE;
  assert.equal(
    row(parseCall(withoutAgentId)).ultravox_agent_id,
    "87ab75a4-36dc-4219-8f3e-592dc165003e",
  );
});

Deno.test("unknown fields are ignored and kept in raw, which is the object as received", () => {
  const input = { ...EXAMPLE, errorCount: 3, futureField: { nested: [1, 2] } };
  const r = row(parseCall(input));
  assert.equal(r.raw, input);
  assert.deepEqual((r.raw as typeof input).futureField, { nested: [1, 2] });
});

Deno.test("timestamps are kept as the exact strings received, offsets included", () => {
  const r = row(parseCall({
    ...EXAMPLE,
    created: "2025-03-22T17:48:32.997086+02:00",
    joined: "2025-03-22T15:48:33.8410051Z",
  }));
  assert.equal(r.created_at, "2025-03-22T17:48:32.997086+02:00");
  assert.equal(r.joined_at, "2025-03-22T15:48:33.8410051Z");
});

// ---- durations ------------------------------------------------------------------------------

Deno.test("duration is exact to the microsecond, where a JS Date is a millisecond short", () => {
  const joined = "2025-03-22T15:48:33.841005Z";
  const ended = "2025-03-22T15:48:59.655926Z";
  assert.equal(durationSeconds(joined, ended), "25.814921");
  assert.equal((Date.parse(ended) - Date.parse(joined)) / 1000, 25.814);
});

Deno.test("durations of a few microseconds survive across midnight and month ends", () => {
  assert.equal(
    durationSeconds("2026-10-31T23:59:59.999999Z", "2026-11-01T00:00:00.000001Z"),
    "0.000002",
  );
  assert.equal(durationSeconds("2024-02-28T23:59:59Z", "2024-03-01T00:00:00Z"), "86401");
  assert.equal(durationSeconds("2025-12-31T23:59:59.5Z", "2026-01-01T00:00:00.25Z"), "0.75");
});

Deno.test("offsets are applied before subtracting", () => {
  assert.equal(
    durationSeconds("2026-03-29T01:59:59.500000+01:00", "2026-03-29T01:00:00.500000Z"),
    "1",
  );
  assert.equal(durationSeconds("2026-01-01T00:00:00-05:30", "2026-01-01T05:30:00Z"), "0");
});

Deno.test("digits past the microsecond are rounded half up, as Postgres stores them", () => {
  assert.equal(microsBetween("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.0000005Z"), 1n);
  assert.equal(microsBetween("2026-01-01T00:00:00Z", "2026-01-01T00:00:00.0000004999Z"), 0n);
});

Deno.test("isoToMicros agrees with the stand-in's independent reckoning on 2,000 random instants", () => {
  const rand = mulberry32(99);
  for (let i = 0; i < 2_000; i++) {
    // Years 1970–2099, any microsecond, any quarter-hour offset.
    const ms = Math.floor(rand() * 4_102_444_800_000);
    const micros = String(Math.floor(rand() * 1_000_000)).padStart(6, "0");
    const offsetMin = (Math.floor(rand() * 105) - 48) * 15; // -12:00 … +14:00
    const local = new Date(ms + offsetMin * 60_000).toISOString().slice(0, 19);
    const sign = offsetMin < 0 ? "-" : "+";
    const abs = Math.abs(offsetMin);
    const zone = offsetMin === 0 && rand() < 0.5
      ? "Z"
      : `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${
        String(abs % 60).padStart(2, "0")
      }`;
    const iso = `${local}.${micros}${zone}`;
    assert.equal(isoToMicros(iso), microsOf(iso), iso);
  }
});

Deno.test("formatMicros writes exact decimals without trailing zeros", () => {
  assert.equal(formatMicros(25_814_921n), "25.814921");
  assert.equal(formatMicros(27_000_000n), "27");
  assert.equal(formatMicros(384_000n), "0.384");
  assert.equal(formatMicros(0n), "0");
  assert.equal(formatMicros(-1_500_000n), "-1.5");
  assert.equal(formatMicros(9_007_199_254_740_993_000_001n), "9007199254740993.000001");
});

Deno.test("billed durations become exact decimal strings", () => {
  assert.equal(parseDurationSeconds("27s"), "27");
  assert.equal(parseDurationSeconds("0.384s"), "0.384");
  assert.equal(parseDurationSeconds("1.500s"), "1.5");
  assert.equal(parseDurationSeconds("007s"), "7");
  assert.equal(parseDurationSeconds("0s"), "0");
  assert.equal(parseDurationSeconds("-0s"), "0");
  assert.equal(parseDurationSeconds("-1.5s"), "-1.5");
  assert.equal(parseDurationSeconds("0.000000001s"), "0.000000001");
  assert.equal(
    parseDurationSeconds("123456789012345678.123456789s"),
    "123456789012345678.123456789",
  );
});

Deno.test("a billed duration without its s suffix is not a duration", () => {
  for (const bad of ["27", "27 s", "0.1234567891s", "1e3s", ".5s", "s"]) {
    assert.throws(() => parseDurationSeconds(bad), TypeError, bad);
  }
});

// ---- refused calls --------------------------------------------------------------------------

Deno.test("a call without callId is refused with no id and says so", () => {
  const { callId: _, ...noId } = EXAMPLE;
  const f = failure(parseCall(noId));
  assert.equal(f.callId, null);
  assert.equal(f.reason, "callId: Invalid input: expected string, received undefined");
});

Deno.test("a callId that is not a uuid is refused, naming the id it had", () => {
  const f = failure(parseCall({ ...EXAMPLE, callId: "call-42" }));
  assert.equal(f.callId, "call-42");
  assert.equal(f.reason, "callId: Invalid GUID");
});

Deno.test("a created that is not an ISO date-time is refused with its callId", () => {
  const f = failure(parseCall({ ...EXAMPLE, created: "yesterday" }));
  assert.equal(f.callId, EXAMPLE.callId);
  assert.equal(f.reason, "created: Invalid ISO datetime");
});

Deno.test("timestamps without an offset, or not on the calendar, are refused", () => {
  for (
    const created of [
      "2025-03-22T15:48:32.997086",
      "2025-02-29T00:00:00Z",
      "2025-03-22T24:00:00Z",
      "2025-03-22 15:48:32Z",
      "2025-03-22T15:48:32+0200",
    ]
  ) {
    assert.equal(
      failure(parseCall({ ...EXAMPLE, created })).reason,
      "created: Invalid ISO datetime",
    );
  }
});

Deno.test("an end reason Ultravox does not document yet is imported and kept as text", () => {
  const p = imported(parseCall({ ...EXAMPLE, endReason: "exploded" }));
  assert.equal(p.row.end_reason, "exploded");
  assert.deepEqual(p.unreadable, []);
});

Deno.test("metadata with a value that is not a string is imported with its string entries, and listed", () => {
  const p = imported(parseCall({ ...EXAMPLE, metadata: { attempt: 2 } }));
  assert.deepEqual(p.row.metadata, {});
  assert.deepEqual(p.unreadable, ["metadata"]);
  const q = imported(parseCall({ ...EXAMPLE, metadata: { source: "web", attempt: 2, vip: true } }));
  assert.deepEqual(q.row.metadata, { source: "web" });
  assert.deepEqual((q.row.raw as typeof EXAMPLE).metadata, {
    source: "web",
    attempt: 2,
    vip: true,
  });
  assert.deepEqual(q.unreadable, ["metadata"]);
});

Deno.test("a call that ended before it was joined is imported without a duration, listed as duration", () => {
  const p = imported(parseCall({ ...EXAMPLE, ended: "2025-03-22T15:48:33.841004Z" }));
  assert.equal(p.row.duration_seconds, null);
  assert.equal(p.row.joined_at, EXAMPLE.joined);
  assert.equal(p.row.ended_at, "2025-03-22T15:48:33.841004Z");
  assert.deepEqual(p.unreadable, ["duration"]);
});

Deno.test("a call with several problems names the first and counts the rest", () => {
  const f = failure(parseCall({ ...EXAMPLE, callId: "x", created: "y", recordingEnabled: "yes" }));
  assert.equal(f.reason, "callId: Invalid GUID (+1 more)");
});

Deno.test("something that is not an object is refused, never thrown", () => {
  for (const input of [null, undefined, 42, "call", [EXAMPLE]]) {
    const f = failure(parseCall(input));
    assert.equal(f.callId, null);
    assert.match(f.reason, /^call: Invalid input: expected object, received/);
  }
});

// ---- the fast check and zod agree -----------------------------------------------------------

const TRICKY_VALUES: unknown[] = [
  undefined,
  null,
  "",
  0,
  true,
  [],
  {},
  "1371D2CB-5873-4976-9977-918823F69504",
  "1371d2cb-5873-4976-9977-918823f6950",
  "2024-02-29T00:00:00Z",
  "2023-02-29T00:00:00Z",
  "2000-02-29T12:00:00.1+14:00",
  "1900-02-29T00:00:00Z",
  "2025-04-31T00:00:00Z",
  "2025-03-22T15:48:32.Z",
  "2025-03-22T15:48:32.997086z",
  "2025-03-22T15:48:32.997086+24:00",
  "2025-03-22T15:48:32.997086-23:59",
  "2025-03-22T15:48:32.997086Z ",
  "２025-03-22T15:48:32Z",
  "hangup",
  "agent_hangup",
  "HANGUP",
  "27s",
  "0.384s",
  "27",
  { agentId: null },
  { agentId: "87ab75a4-36dc-4219-8f3e-592dc165003e", name: "x" },
  { agentId: "nope" },
  { source: "web" },
  { n: 1 },
];

Deno.test("parseCall accepts exactly what CallSchema accepts, over every tricky field value", () => {
  // The needs (callId, created) and every field a column is read from.
  const fields = [...Object.keys(CallSchema.shape), ...READ_FIELDS.filter((f) => f !== "duration")];
  let vouched = 0;
  for (const field of fields) {
    for (const value of TRICKY_VALUES) {
      // No joined and ended pair, so no duration check muddles the comparison.
      const input = { ...EXAMPLE, joined: null, ended: null, [field]: value };
      const zodSays = CallSchema.safeParse(input).success;
      if (passesFastCheck(input)) {
        vouched++;
        assert.ok(zodSays, `fast check vouched for what zod refuses: ${field}=${String(value)}`);
      }
      assert.equal(parseCall(input).ok, zodSays, `${field}=${JSON.stringify(value)}`);
    }
  }
  assert.ok(vouched > 50, "the fast check did some of the work");
});

Deno.test("every call of a generated 5,000-call account maps, and the fast check vouches for all", () => {
  const calls = generateAccount({ seed: 5, count: 5_000 });
  for (const call of calls) {
    assert.ok(passesFastCheck(call), call.callId);
    const p = imported(parseCall(call));
    assert.equal(p.row.ultravox_call_id, call.callId);
    assert.deepEqual(p.unreadable, [], call.callId);
  }
});

Deno.test("unstorableText names the first string Postgres cannot store, and nothing else", () => {
  assert.equal(unstorableText({ a: "fine", b: ["ok", { c: "é 😀" }] }), null);
  assert.equal(
    unstorableText({ summary: "bad\u0000" }),
    "summary: contains a NUL character (U+0000)",
  );
  assert.equal(
    unstorableText({ medium: { notes: ["ok", "x\uD800"] } }),
    "medium.notes.1: contains a lone surrogate (invalid UTF-16)",
  );
  assert.equal(unstorableText({ ["k\u0000"]: "v" }), "k\uFFFD: contains a NUL character (U+0000)");
});

// ---- what a call needs, and nothing more ----------------------------------------------------

Deno.test("a clean call has an empty unreadable list", () => {
  assert.deepEqual(imported(parseCall(EXAMPLE)).unreadable, []);
  assert.deepEqual(imported(parseCall(UNJOINED)).unreadable, []);
});

Deno.test("an agentId that is not a uuid is stored as null and listed; agent.agentId still counts", () => {
  const alone = imported(parseCall({ ...UNJOINED, agentId: "agent_7f3a9c" }));
  assert.equal(alone.row.ultravox_agent_id, null);
  assert.deepEqual(alone.unreadable, ["agentId"]);
  const withAgent = imported(parseCall({ ...EXAMPLE, agentId: "support" }));
  assert.equal(withAgent.row.ultravox_agent_id, EXAMPLE.agent.agentId);
  assert.deepEqual(withAgent.unreadable, ["agentId"]);
});

Deno.test("an agent that is not an object, or whose agentId is not a uuid, is listed as agent", () => {
  const { agentId: _, ...noTop } = EXAMPLE;
  for (const agent of ["Support", ["x"], 7, { agentId: "nope", name: "x" }, { agentId: 5 }]) {
    const p = imported(parseCall({ ...noTop, agent }));
    assert.equal(p.row.ultravox_agent_id, null, JSON.stringify(agent));
    assert.deepEqual(p.unreadable, ["agent"], JSON.stringify(agent));
  }
  // An agent without an id, or with a null one, is simply no agent id.
  assert.deepEqual(imported(parseCall({ ...noTop, agent: { name: "x" } })).unreadable, []);
  assert.deepEqual(imported(parseCall({ ...noTop, agent: { agentId: null } })).unreadable, []);
});

Deno.test("an agent id in upper case is a uuid (any 8-4-4-4-12 hex form)", () => {
  const upper = "87AB75A4-36DC-4219-8F3E-592DC165003E";
  const p = imported(parseCall({ ...EXAMPLE, agentId: upper }));
  assert.equal(p.row.ultravox_agent_id, upper);
  assert.deepEqual(p.unreadable, []);
});

Deno.test("billedDuration: protobuf form read exactly, any other form stored as null and listed", () => {
  const billed = (billedDuration: unknown) => imported(parseCall({ ...EXAMPLE, billedDuration }));
  assert.equal(billed("27.300s").row.billed_duration_seconds, "27.3");
  assert.equal(billed("0.384s").row.billed_duration_seconds, "0.384");
  assert.equal(
    billed("999999999999.999999999s").row.billed_duration_seconds,
    "999999999999.999999999",
  );
  assert.equal(billed(null).row.billed_duration_seconds, null);
  assert.deepEqual(billed(null).unreadable, []);
  for (
    const bad of ["27", "00:00:27", "61 seconds", "1e3s", 27.3, 27, true, {}, "1000000000000s"]
  ) {
    const p = billed(bad);
    assert.equal(p.row.billed_duration_seconds, null, JSON.stringify(bad));
    assert.deepEqual(p.unreadable, ["billedDuration"], JSON.stringify(bad));
  }
  // Past protobuf's 12 digits of seconds, so a huge number never reaches the numeric column.
  assert.deepEqual(billed("9".repeat(100_000) + "s").unreadable, ["billedDuration"]);
  assert.equal(billed("0000000000000000027s").row.billed_duration_seconds, "27");
});

Deno.test("joined or ended unreadable: null, listed, and no duration", () => {
  const j = imported(parseCall({ ...EXAMPLE, joined: "soon" }));
  assert.equal(j.row.joined_at, null);
  assert.equal(j.row.duration_seconds, null);
  assert.equal(j.row.ended_at, EXAMPLE.ended);
  assert.deepEqual(j.unreadable, ["joined"]);
  const e = imported(parseCall({ ...EXAMPLE, ended: 1742658539 }));
  assert.equal(e.row.ended_at, null);
  assert.deepEqual(e.unreadable, ["ended"]);
});

Deno.test("summaries, endReason and recordingEnabled of another type: null (false), listed", () => {
  const p = imported(parseCall({
    ...EXAMPLE,
    shortSummary: 5,
    summary: { text: "x" },
    endReason: ["hangup"],
    recordingEnabled: "true",
  }));
  assert.equal(p.row.short_summary, null);
  assert.equal(p.row.summary, null);
  assert.equal(p.row.end_reason, null);
  assert.equal(p.row.recording_enabled, false);
  assert.deepEqual(p.unreadable, ["endReason", "recordingEnabled", "shortSummary", "summary"]);
});

Deno.test("every column field of an unexpected type: the call imports, every field listed, sorted", () => {
  const input = {
    callId: "0dc17cd0-8100-4e81-8b43-99e6ade41f9c",
    created: "2026-01-02T00:00:00.000000Z",
    joined: 1735776000,
    ended: "yesterday",
    endReason: 7,
    billedDuration: 27.3,
    shortSummary: ["a"],
    summary: { text: "b" },
    agent: "Support",
    agentId: 42,
    metadata: ["source", "web"],
    recordingEnabled: "true",
  };
  const p = imported(parseCall(input));
  assert.deepEqual(p.unreadable, [
    "agent",
    "agentId",
    "billedDuration",
    "endReason",
    "ended",
    "joined",
    "metadata",
    "recordingEnabled",
    "shortSummary",
    "summary",
  ]);
  assert.deepEqual(p.row, {
    ultravox_call_id: input.callId,
    ultravox_agent_id: null,
    created_at: input.created,
    joined_at: null,
    ended_at: null,
    end_reason: null,
    duration_seconds: null,
    billed_duration_seconds: null,
    short_summary: null,
    summary: null,
    recording_enabled: false,
    metadata: {},
    raw: input,
  });
});

Deno.test("metadata that is not an object is {} and listed; null is {} and clean", () => {
  for (const metadata of ["web", ["web"], 3, true]) {
    const p = imported(parseCall({ ...EXAMPLE, metadata }));
    assert.deepEqual(p.row.metadata, {});
    assert.deepEqual(p.unreadable, ["metadata"]);
  }
  assert.deepEqual(imported(parseCall({ ...EXAMPLE, metadata: null })).unreadable, []);
});

Deno.test('a "__proto__" key is an ordinary key: kept in metadata and raw, never a prototype', () => {
  const input = JSON.parse(
    `{"callId": "${EXAMPLE.callId}", "created": "${EXAMPLE.created}", "__proto__": {"agentId": "x"},` +
      ` "metadata": {"__proto__": "a", "n": 1}}`,
  );
  const p = imported(parseCall(input));
  assert.deepEqual(p.unreadable, ["metadata"]);
  assert.equal(Object.getPrototypeOf(p.row.metadata), Object.prototype);
  assert.deepEqual(Object.keys(p.row.metadata), ["__proto__"]);
  assert.equal(p.row.metadata["__proto__"], "a");
  assert.equal(p.row.ultravox_agent_id, null);
  assert.equal(JSON.parse(JSON.stringify(p.row.raw)).__proto__.agentId, "x");
});

Deno.test("offsets Postgres refuses (beyond ±15:59) refuse created and null joined", () => {
  assert.equal(
    failure(parseCall({ ...EXAMPLE, created: "2025-03-22T15:48:32+16:00" })).reason,
    "created: Invalid ISO datetime (an offset beyond ±15:59, which Postgres refuses)",
  );
  assert.ok(parseCall({ ...EXAMPLE, created: "2025-03-22T15:48:32-15:59" }).ok);
  const p = imported(parseCall({ ...EXAMPLE, joined: "2025-03-22T15:48:33.841005-23:00" }));
  assert.equal(p.row.joined_at, null);
  assert.deepEqual(p.unreadable, ["joined"]);
});

Deno.test("a decimal comma, which Postgres does not read, is handed over as a point", () => {
  const p = imported(parseCall({
    ...EXAMPLE,
    created: "2025-03-22T15:48:32,997086Z",
    joined: "2025-03-22T15:48:33,841005Z",
  }));
  assert.equal(p.row.created_at, "2025-03-22T15:48:32.997086Z");
  assert.equal(p.row.joined_at, "2025-03-22T15:48:33.841005Z");
  assert.equal(p.row.duration_seconds, "25.814921");
  assert.equal((p.row.raw as typeof EXAMPLE).created, "2025-03-22T15:48:32,997086Z");
});

// ---- what cannot be stored ----------------------------------------------------------------

Deno.test("text Postgres cannot store fails the call with its id and where (unstorableText folded in)", () => {
  assert.deepEqual(parseCall({ ...EXAMPLE, summary: "bad\u0000" }), {
    ok: false,
    callId: EXAMPLE.callId,
    reason: "summary: contains a NUL character (U+0000)",
  });
  assert.deepEqual(parseCall({ ...EXAMPLE, medium: { notes: ["ok", "x\uD800"] } }), {
    ok: false,
    callId: EXAMPLE.callId,
    reason: "medium.notes.1: contains a lone surrogate (invalid UTF-16)",
  });
  assert.deepEqual(parseCall({ ...EXAMPLE, metadata: { ["k\u0000"]: "v" } }), {
    ok: false,
    callId: EXAMPLE.callId,
    reason: "metadata.k\uFFFD: contains a NUL character (U+0000)",
  });
  // Also in a field no column reads, and in an unreadable one.
  assert.equal(parseCall({ ...EXAMPLE, futureField: "\uDC00" }).ok, false);
  assert.equal(parseCall({ ...EXAMPLE, billedDuration: "27s\u0000" }).ok, false);
  // A valid surrogate pair is fine, in keys and values.
  assert.ok(parseCall({ ...EXAMPLE, ["😀"]: "😀", summary: "𝄞" }).ok);
});

Deno.test("values JSON has no form for fail the call: it could not arrive in raw as received", () => {
  const cases: [unknown, string][] = [
    [1n, "x: is a bigint, which JSON cannot hold"],
    [NaN, "x: is NaN, which JSON cannot hold"],
    [-Infinity, "x: is -Infinity, which JSON cannot hold"],
    [() => 1, "x: is a function, which JSON cannot hold"],
    [Symbol("s"), "x: is a symbol, which JSON cannot hold"],
    [new Date(0), "x: is not a plain JSON object"],
    [new Map(), "x: is not a plain JSON object"],
  ];
  for (const [x, reason] of cases) {
    assert.deepEqual(parseCall({ ...EXAMPLE, x }), { ok: false, callId: EXAMPLE.callId, reason });
  }
  // undefined reads as absent, as JSON.stringify has it; a null-prototype object is plain.
  assert.ok(parseCall({ ...EXAMPLE, x: undefined, summary: undefined }).ok);
  assert.ok(parseCall(Object.assign(Object.create(null), EXAMPLE)).ok);
});

Deno.test("nesting up to MAX_NESTING levels stores; deeper, or a cycle, fails without overflowing", () => {
  const nested = (levels: number) => {
    let v: unknown = "leaf";
    for (let i = 0; i < levels; i++) v = i % 2 === 0 ? [v] : { k: v };
    return v;
  };
  // The call is level 0, so `deep` holds MAX_NESTING - 1 more levels at most.
  assert.ok(parseCall({ ...EXAMPLE, deep: nested(MAX_NESTING - 1) }).ok);
  const deeper = failure(parseCall({ ...EXAMPLE, deep: nested(MAX_NESTING) }));
  assert.match(deeper.reason, /nests deeper than 1000 levels, which Postgres refuses$/);
  assert.ok(!parseCall({ ...EXAMPLE, deep: nested(1_000_000) }).ok);
  const cyclic: Record<string, unknown> = { ...EXAMPLE };
  cyclic.self = cyclic;
  assert.match(failure(parseCall(cyclic)).reason, /^self\.self\..*…: nests deeper than/);
  assert.ok(failure(parseCall(cyclic)).reason.length <= 200);
});

Deno.test("getters that throw and proxies are refused, never thrown", () => {
  const getter = Object.defineProperty({ ...EXAMPLE }, "summary", {
    enumerable: true,
    get() {
      throw new Error("boom");
    },
  });
  assert.deepEqual(parseCall(getter), {
    ok: false,
    callId: EXAMPLE.callId,
    reason: "call: could not be read (Error)",
  });
  const hostile = new Proxy({}, {
    get() {
      throw new TypeError("no");
    },
    ownKeys() {
      throw new TypeError("no");
    },
    getPrototypeOf() {
      throw new TypeError("no");
    },
  });
  const f = failure(parseCall(hostile));
  assert.equal(f.callId, null);
  // A prototype trick: fields inherited from a prototype are not the object's own.
  const weird = Object.create({ callId: EXAMPLE.callId, created: EXAMPLE.created });
  assert.equal(failure(parseCall(weird)).reason, "call: is not a plain JSON object");
});

// ---- the corpus -------------------------------------------------------------------------------

interface Fixture {
  shape: string;
  source: string;
  unreadable: string[];
  row?: Partial<CallRow>;
  call: Record<string, unknown>;
}

const CORPUS: Fixture[] = JSON.parse(
  await Deno.readTextFile(new URL("../fixtures/ultravox/calls.json", import.meta.url)),
);

Deno.test("the corpus covers the schema's history, each shape with its source", () => {
  assert.ok(CORPUS.length >= 30, `${CORPUS.length} shapes`);
  const ids = new Set<string>();
  for (const f of CORPUS) {
    assert.ok(f.shape.length > 0 && f.source.length > 0, JSON.stringify(f).slice(0, 80));
    assert.deepEqual(
      Object.keys(f).filter((k) => !["shape", "source", "unreadable", "row", "call"].includes(k)),
      [],
    );
    ids.add(f.call.callId as string);
  }
  assert.equal(ids.size, CORPUS.length, "every callId distinct");
  const reasons = new Set(CORPUS.map((f) => f.call.endReason));
  for (const r of ["unjoined", "hangup", "agent_hangup", "timeout", "connection_error"]) {
    assert.ok(reasons.has(r), r);
  }
  assert.ok(reasons.has("system_error") && reasons.has(null) && reasons.has("transferred"));
  const statuses = new Set(CORPUS.map((f) => f.call.billingStatus));
  assert.ok(statuses.size >= 10, "all 9 billing statuses and one more");
});

for (const fixture of CORPUS) {
  Deno.test(`corpus: ${fixture.shape} maps, unreadable ${JSON.stringify(fixture.unreadable)}`, () => {
    const p = imported(parseCall(fixture.call));
    assert.deepEqual(p.unreadable, fixture.unreadable);
    assert.equal(p.row.raw, fixture.call, "raw is the object as received");
    assert.equal(p.row.ultravox_call_id, fixture.call.callId);
    for (const [column, value] of Object.entries(fixture.row ?? {})) {
      assert.deepEqual(p.row[column as keyof CallRow], value, column);
    }
  });
}

// ---- fuzzing ----------------------------------------------------------------------------------

Deno.test("12,000 fuzzed objects: never a throw, every row of the column types, refusals explained", () => {
  const rand = mulberry32(2026);
  let ok = 0;
  for (let i = 0; i < 12_000; i++) {
    const input = fuzzCall(rand);
    const p = parseCall(input);
    if (!p.ok) {
      assert.equal(typeof p.reason, "string");
      assert.ok(p.reason.length > 0 && p.reason.length <= 200);
      assert.equal(unstorableText(p.reason), null, "the reason itself is storable");
      assert.ok(p.callId === null || unstorableText(p.callId) === null);
      continue;
    }
    ok++;
    const r = p.row;
    assert.equal(r.raw, input);
    assert.equal(unstorableText(r.raw), null);
    assert.ok(typeof r.ultravox_call_id === "string" && r.ultravox_call_id.length === 36);
    assert.ok(r.ultravox_agent_id === null || r.ultravox_agent_id.length === 36);
    for (const t of [r.created_at, r.joined_at, r.ended_at]) {
      assert.ok(t === null || (typeof t === "string" && !t.includes(",")));
    }
    for (const t of [r.end_reason, r.short_summary, r.summary]) {
      assert.ok(t === null || typeof t === "string");
    }
    for (const n of [r.duration_seconds, r.billed_duration_seconds]) {
      assert.ok(n === null || /^-?\d{1,13}(\.\d{1,9})?$/.test(n), String(n));
    }
    assert.equal(typeof r.recording_enabled, "boolean");
    assert.ok(Object.values(r.metadata).every((v) => typeof v === "string"));
    assert.ok(p.unreadable.every((f) => (READ_FIELDS as readonly string[]).includes(f)));
    assert.deepEqual(p.unreadable, [...p.unreadable].sort());
    // JSON.stringify, which the engine runs on the page, never throws on a row.
    JSON.stringify(r);
  }
  assert.ok(ok > 1_000 && ok < 11_000, `${ok} imported`);
});
