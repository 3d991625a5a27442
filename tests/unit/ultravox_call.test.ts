// The Call mapper: exact durations, documented nulls, loose about unknown fields, strict about the
// fields the importer stores, and never throwing on a bad call.

import assert from "node:assert/strict";
import {
  durationSeconds,
  formatMicros,
  isoToMicros,
  microsBetween,
} from "../../supabase/functions/_shared/time.ts";
import {
  CallSchema,
  parseCall,
  type ParsedCall,
  parseDurationSeconds,
  passesFastCheck,
  unstorableText,
} from "../../supabase/functions/_shared/ultravox/call.ts";
import { microsOf } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount, mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";

/** The first call of the example page in ULTRAVOX.md. */
const EXAMPLE = {
  callId: "1371d2cb-5873-4976-9977-918823f69504",
  created: "2025-03-22T15:48:32.997086Z",
  joined: "2025-03-22T15:48:33.841005Z",
  ended: "2025-03-22T15:48:59.655926Z",
  endReason: "agent_hangup",
  billedDuration: "27s",
  billingStatus: "BILLING_STATUS_BILLED",
  shortSummary: "Caller asked about pricing.",
  summary: "The caller asked about …",
  agent: { agentId: "87ab75a4-36dc-4219-8f3e-592dc165003e", name: "Support" },
  agentId: "87ab75a4-36dc-4219-8f3e-592dc165003e",
  metadata: { source: "web" },
  recordingEnabled: true,
  maxDuration: "480s",
  medium: { plivo: {} },
  model: "ultravox-v0.7",
};

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

Deno.test("an end reason Ultravox does not document is refused", () => {
  const f = failure(parseCall({ ...EXAMPLE, endReason: "exploded" }));
  assert.match(f.reason, /^endReason: Invalid option: expected one of "unjoined"\|"hangup"/);
});

Deno.test("metadata with a value that is not a string is refused, naming the key", () => {
  const f = failure(parseCall({ ...EXAMPLE, metadata: { attempt: 2 } }));
  assert.equal(f.reason, "metadata.attempt: Invalid input: expected string, received number");
});

Deno.test("a call that ended before it was joined is refused", () => {
  const f = failure(parseCall({ ...EXAMPLE, ended: "2025-03-22T15:48:33.841004Z" }));
  assert.deepEqual(f, { ok: false, callId: EXAMPLE.callId, reason: "ended: before joined" });
});

Deno.test("a call with several problems names the first and counts the rest", () => {
  const f = failure(parseCall({ ...EXAMPLE, created: "x", joined: "y", recordingEnabled: "yes" }));
  assert.equal(f.reason, "created: Invalid ISO datetime (+2 more)");
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
  const fields = Object.keys(CallSchema.shape);
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
    const r = row(parseCall(call));
    assert.equal(r.ultravox_call_id, call.callId);
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
