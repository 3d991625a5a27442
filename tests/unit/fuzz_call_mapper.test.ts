// Property-based fuzzing of the page mapper (fast-check, pinned in deno.json): `parseCall`
// (_shared/ultravox/call.ts) and `mapPage` (_shared/sync/job_runner.ts) over generated call
// objects drawn from the Ultravox schema (the shapes of tests/fixtures/ultravox/calls.json, the
// hostile ones of fuzz.ts), with wrong types, missing fields, huge strings, NUL characters and
// lone surrogates in keys and values, odd timestamps, deep nesting and values JSON has no form
// for (docs/ARCHITECTURE.md §5 "What a call needs").
//
// Properties: nothing ever throws; a call maps to a row (ok: true) exactly when it has a uuid
// callId, a created Postgres can read, and only text and values jsonb can store (an oracle
// written here, independently of call.ts and time.ts, decides); a row echoes what it was given;
// a refusal says why in storable text; mapPage keeps every object in API order and its JSON
// round-trips.
//
//   FUZZ_RUNS=100000 deno test -A tests/unit/fuzz_call_mapper.test.ts   (default 10,000)
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> deno test -A tests/unit/fuzz_call_mapper.test.ts
//                                                                     replays a reported failure
import assert from "node:assert/strict";
import fc from "fast-check";
import { FUZZ_RUNS, fuzzParameters } from "../support/fuzz.ts";
import {
  MAX_NESTING,
  parseCall,
  READ_FIELDS,
} from "../../supabase/functions/_shared/ultravox/call.ts";
import { mapPage } from "../../supabase/functions/_shared/sync/job_runner.ts";
import corpus from "../fixtures/ultravox/calls.json" with { type: "json" };
import { FUZZ_BASE, fuzzCall } from "../fixtures/ultravox/fuzz.ts";
import { mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";

// ── runs, seeds, replay ─────────────────────────────────────────────────────────────

const RUNS = FUZZ_RUNS;

/** Runs a property; a failure names its seed and path first, so FUZZ_SEED/FUZZ_PATH replay it. */
function fuzz<Ts>(name: string, property: fc.IProperty<Ts>, numRuns: number) {
  const details = fc.check(property, { ...fuzzParameters(), numRuns });
  if (!details.failed) return;
  const error = details.errorInstance instanceof Error
    ? details.errorInstance.message
    : String(details.errorInstance);
  const report = fc.defaultReportMessage(details) ?? "";
  assert.fail(
    `${name}: failed with seed ${details.seed}, path ${details.counterexamplePath}; replay with ` +
      `FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath} ` +
      `deno test -A tests/unit/fuzz_call_mapper.test.ts\n${error.slice(0, 2000)}\n` +
      (report.length > 4000 ? report.slice(0, 4000) + "… (cut)" : report),
  );
}

// ── the oracle: what a call needs, said again independently ─────────────────────────

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** ISO 8601 with an offset, as docs/ARCHITECTURE.md §5/§6 read it; T and Z in either case. */
const TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

function daysIn(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A `created` Postgres reads as the instant meant: on the calendar, offset within ±15:59. */
function readableCreated(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const m = TIMESTAMP.exec(value);
  if (m === null) return false;
  const [y, mo, d, h, mi] = [1, 2, 3, 4, 5].map((i) => Number(m[i]));
  const s = m[6] === undefined ? 0 : Number(m[6]);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) return false;
  if (h > 23 || mi > 59 || s > 59) return false;
  if (m[7] !== undefined && (Number(m[8]) > 15 || Number(m[9]) > 59)) return false;
  return true;
}

function storableString(s: string): boolean {
  return !s.includes("\0") && s.isWellFormed();
}

/**
 * Whether jsonb holds the value exactly as received: no NUL or lone surrogate in any key or
 * string, only what JSON has a form for (undefined reads as absent), plain objects and arrays,
 * no container at depth MAX_NESTING or deeper (the call itself at 0). Throws what a getter or
 * proxy throws.
 */
function storable(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case "string":
      return storableString(value);
    case "number":
      return Number.isFinite(value);
    case "boolean":
    case "undefined":
      return true;
    case "object": {
      if (value === null) return true;
      if (depth >= MAX_NESTING) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!storable(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key of Object.keys(value)) {
        if (!storableString(key)) return false;
        if (!storable((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false; // bigint, symbol, function
  }
}

/** What docs/ARCHITECTURE.md §5 says must map to a row, and only that. */
function mustMap(input: unknown): boolean {
  try {
    if (typeof input !== "object" || input === null || Array.isArray(input)) return false;
    const c = input as Record<string, unknown>;
    return typeof c.callId === "string" && GUID.test(c.callId) && readableCreated(c.created) &&
      storable(input);
  } catch {
    return false; // a getter or proxy that throws: nothing of it can be stored
  }
}

/** Every string in a JSON value (keys included) is storable. */
function allStorable(value: unknown): boolean {
  if (typeof value === "string") return storableString(value);
  if (Array.isArray(value)) return value.every(allStorable);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).every(([k, v]) => storableString(k) && allStorable(v));
  }
  return true;
}

// ── generators ──────────────────────────────────────────────────────────────────────

const MISSING = Symbol("missing");
type Maybe<T> = T | typeof MISSING;

/** A field set with defineProperty, so "__proto__" stays an ordinary own key as JSON.parse makes it. */
function put(obj: Record<string, unknown>, key: string, value: unknown) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

const hostileChar = fc.constantFrom(
  "\0",
  "\uD800",
  "\uDBFF",
  "\uDC00",
  "\uDFFF",
  "\uD83D\uDE00", // a valid pair
  "\u2028",
  "\uFFFF",
  "\uFEFF",
  "\\u0000",
  '"',
  "\\",
  "é",
  "'; drop table public.calls; --",
);
const cleanText = fc.string({ unit: "grapheme", maxLength: 24 });
const hostileText = fc.string({
  unit: fc.oneof(hostileChar, fc.string({ unit: "binary", minLength: 1, maxLength: 1 })),
  maxLength: 12,
});
/** 64 KiB to 1.2 MB of one character (a NUL or a lone surrogate now and then). */
const hugeText = fc.tuple(
  fc.constantFrom("x", "é", "😀", "ab", "\0", "\uD800"),
  fc.integer({ min: 65_536, max: 1_200_000 }),
).map(([c, n]) => c.repeat(Math.ceil(n / c.length)));
const text = fc.oneof(
  { arbitrary: cleanText, weight: 6 },
  { arbitrary: hostileText, weight: 3 },
  { arbitrary: hugeText, weight: 1 },
);

const pad = (n: number, width: number) => String(n).padStart(width, "0");
/** Timestamps as Ultravox writes them: microseconds, Z, now and then another offset. */
const goodTimestamp = fc.record({
  ms: fc.integer({ min: Date.UTC(2023, 0, 1), max: Date.UTC(2027, 0, 1) }),
  micros: fc.integer({ min: 0, max: 999 }),
  off: fc.oneof(
    { weight: 4, arbitrary: fc.constant("Z") },
    { weight: 1, arbitrary: fc.constantFrom("+00:00", "+05:30", "-08:00", "+14:00", "-15:59") },
  ),
}).map(({ ms, micros, off }) => new Date(ms).toISOString().replace("Z", `${pad(micros, 3)}${off}`));
/**
 * Timestamps: good ones, the grammar's own pieces (days past the month end, hour 24, offsets up
 * to ±23:59 included), and odd strings.
 */
const timestamp = fc.oneof(
  { weight: 8, arbitrary: goodTimestamp },
  {
    weight: 4,
    arbitrary: fc.record({
      y: fc.oneof(fc.integer({ min: 1970, max: 2030 }), fc.integer({ min: 0, max: 9999 })),
      mo: fc.integer({ min: 0, max: 13 }),
      d: fc.integer({ min: 0, max: 32 }),
      h: fc.integer({ min: 0, max: 24 }),
      mi: fc.integer({ min: 0, max: 60 }),
      s: fc.option(fc.integer({ min: 0, max: 60 }), { freq: 4 }),
      frac: fc.option(
        fc.tuple(fc.constantFrom(".", ","), fc.stringMatching(/^\d{1,12}$/)),
        { freq: 3 },
      ),
      t: fc.constantFrom("T", "T", "t", " "),
      off: fc.oneof(
        fc.constantFrom("Z", "Z", "z", "", "+0000", "+05", "GMT"),
        fc.tuple(
          fc.constantFrom("+", "-"),
          fc.integer({ min: 0, max: 23 }),
          fc.integer({ min: 0, max: 60 }),
        ).map(([sign, h, m]) => `${sign}${pad(h, 2)}:${pad(m, 2)}`),
      ),
    }).map(({ y, mo, d, h, mi, s, frac, t, off }) =>
      `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}${t}${pad(h, 2)}:${pad(mi, 2)}` +
      (s === null ? "" : `:${pad(s, 2)}${frac === null ? "" : frac[0] + frac[1]}`) + off
    ),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "2025-03-22T15:48:32.997086Z",
      "2025-03-22T15:48:32Z",
      "2025-03-22t15:48z",
      "2025-03-22T15:48:32.9999999-15:59",
      "2025-03-22T15:48:32+16:00",
      "2024-02-29T00:00:00Z",
      "2025-02-29T00:00:00Z",
      "0001-01-01T00:00:00+14:00",
      "9999-12-31T23:59:59.999999-15:00",
      "10000-01-01T00:00:00Z",
      "2025-03-22",
      "2025-03-22T15:48:32",
      "Sat, 22 Mar 2025 15:48:32 GMT",
      "1742658512",
      "２０２５-03-22T15:48:32Z",
      " 2025-03-22T15:48:32Z",
      "2025-03-22T15:48:32Z\0",
      "",
    ),
  },
  { weight: 1, arbitrary: hostileText },
);

const uuid = fc.uuid();
const callId: fc.Arbitrary<Maybe<unknown>> = fc.oneof(
  { weight: 60, arbitrary: uuid },
  { weight: 1, arbitrary: uuid.map((u) => u.toUpperCase()) },
  { weight: 1, arbitrary: fc.constant("00000000-0000-0000-0000-000000000000") },
  { weight: 1, arbitrary: uuid.map((u) => `{${u}}`) },
  { weight: 1, arbitrary: uuid.map((u) => u.replaceAll("-", "")) },
  { weight: 1, arbitrary: uuid.map((u) => `${u}\0`) },
  { weight: 1, arbitrary: uuid.map((u) => ` ${u}`) },
  { weight: 1, arbitrary: uuid.map((u) => `${u.slice(0, 35)}g`) },
  { weight: 1, arbitrary: text },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constant(MISSING),
      fc.constant(null),
      fc.integer(),
      fc.boolean(),
      uuid.map((u) => [u]),
      uuid.map((u) => ({ callId: u })),
    ),
  },
);
const created: fc.Arbitrary<Maybe<unknown>> = fc.oneof(
  { weight: 10, arbitrary: goodTimestamp },
  { weight: 5, arbitrary: timestamp },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constant(MISSING),
      fc.constant(null),
      fc.integer(),
      fc.date({ noInvalidDate: false }),
      timestamp.map((t) => [t]),
    ),
  },
);

/** Values JSON has no form for, or objects that are not plain. */
const notJson = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity),
  fc.bigInt(),
  fc.constantFrom<unknown>(
    () => 0,
    Symbol("s"),
    new Date(0),
    new Map([["a", 1]]),
    /re/,
    new Uint8Array(3),
    new (class Call {})(),
  ),
);
const number = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -0, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_VALUE, Number.MIN_VALUE, 1e-300),
);
const key = fc.oneof(
  { weight: 4, arbitrary: cleanText },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "__proto__",
      "constructor",
      "toString",
      "",
      "callId",
      "created",
      "\0",
      "\uD800",
      "a\uDFFFb",
      "😀",
    ),
  },
  { weight: 1, arbitrary: hostileText },
);
const leaf = fc.oneof(
  { weight: 4, arbitrary: text },
  { weight: 3, arbitrary: number },
  { weight: 2, arbitrary: fc.constantFrom(null, true, false, undefined) },
  { weight: 2, arbitrary: timestamp },
  { weight: 1, arbitrary: notJson },
);
const { value: anyValue } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", maxDepth: 3 },
    { weight: 5, arbitrary: leaf },
    { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc.array(fc.tuple(key, tie("value")), { maxLength: 4 }).map((entries) => {
        const obj: Record<string, unknown> = {};
        for (const [k, v] of entries) put(obj, k, v);
        return obj;
      }),
    },
  ),
}));

/** Nesting around MAX_NESTING (the call at level 0, this value at level 1). */
const deep = fc.tuple(
  fc.oneof(
    fc.integer({ min: MAX_NESTING - 3, max: MAX_NESTING + 3 }),
    fc.integer({ min: 1, max: 2 * MAX_NESTING }),
  ),
  fc.boolean(),
).map(([levels, arrays]) => {
  let v: unknown = "bottom";
  for (let i = 0; i < levels; i++) v = arrays ? [v] : { k: v };
  return v;
});

/** What each documented field looks like when Ultravox sends it as documented. */
const fieldShape: Record<string, fc.Arbitrary<unknown>> = {
  joined: timestamp,
  ended: timestamp,
  endReason: fc.constantFrom(
    "unjoined",
    "hangup",
    "agent_hangup",
    "timeout",
    "connection_error",
    "system_error",
    "agent_transfer",
  ),
  billedDuration: fc.oneof(
    fc.constantFrom("27s", "0.384s", "0s", "-1s", "1.000000000s", "999999999999.999999999s"),
    fc.constantFrom("1000000000000s", "27", "27 s", "1e3s", ".5s", "0.1234567890s"),
    fc.tuple(fc.nat(), fc.stringMatching(/^(\.\d{1,9})?$/)).map(([s, f]) => `${s}${f}s`),
  ),
  billingStatus: fc.constantFrom(
    "BILLING_STATUS_PENDING",
    "BILLING_STATUS_BILLED",
    "BILLING_STATUS_FREE_CONSOLE",
    "BILLING_STATUS_FREE_ZERO_EFFECTIVE_DURATION",
    "BILLING_STATUS_REFUNDED",
    "BILLING_STATUS_UNSPECIFIED",
  ),
  shortSummary: text,
  summary: text,
  agent: fc.oneof(
    fc.record({ agentId: uuid, name: cleanText }),
    fc.record({ agentId: fc.oneof(text, fc.constant(null)) }),
  ),
  agentId: fc.oneof(uuid, uuid.map((u) => u.toUpperCase()), cleanText),
  metadata: fc.dictionary(
    key,
    fc.oneof({ weight: 5, arbitrary: text }, { weight: 1, arbitrary: leaf }),
    {
      maxKeys: 5,
    },
  ).map((entries) => {
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(entries)) put(obj, k, v);
    return obj;
  }),
  recordingEnabled: fc.oneof(fc.boolean(), fc.constantFrom("true", 1, 0)),
  maxDuration: fc.constantFrom("480s", "3600s", "1s"),
  medium: fc.constantFrom({ plivo: {} }, { webRtc: {} }, { twilio: { outgoing: { to: "+1" } } }),
  firstSpeaker: fc.constantFrom("FIRST_SPEAKER_AGENT", "FIRST_SPEAKER_USER"),
  errorCount: fc.nat(),
};
const FIELDS = Object.keys(fieldShape);
const editKey = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...FIELDS) },
  { weight: 1, arbitrary: key },
);
const edit = editKey.chain((k) =>
  fc.tuple(
    fc.constant(k),
    !Object.hasOwn(fieldShape, k) // "toString" is no field of ours
      ? anyValue
      : fc.oneof({ weight: 3, arbitrary: fieldShape[k] }, { weight: 1, arbitrary: anyValue }),
  )
);

const BASES: Record<string, unknown>[] = [
  FUZZ_BASE,
  ...corpus.map((entry) => entry.call as Record<string, unknown>),
];

/** A call of the schema with fields dropped, replaced, or added. */
const schemaCall = fc.record({
  base: fc.constantFrom(...BASES),
  callId,
  created,
  drops: fc.subarray(FIELDS, { maxLength: 4 }),
  edits: fc.array(edit, { maxLength: 6 }),
  deep: fc.oneof({ weight: 15, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: deep }),
}).map(({ base, callId, created, drops, edits, deep }) => {
  const call = structuredClone(base);
  for (const f of drops) delete call[f];
  for (const [k, v] of edits) put(call, k, v);
  if (callId === MISSING) delete call.callId;
  else put(call, "callId", callId);
  if (created === MISSING) delete call.created;
  else put(call, "created", created);
  if (deep !== null) put(call, "transcriptTree", deep);
  return call as unknown;
});

/** Objects no JSON body can produce: a getter or proxy that throws (parseCall must still not). */
const trap = fc.tuple(schemaCall, fc.constantFrom("getter", "ownKeys", "get")).map(
  ([call, how]) => {
    if (how === "getter") {
      Object.defineProperty(call as object, "summary", {
        enumerable: true,
        get() {
          throw new RangeError("a getter that throws");
        },
      });
      return call;
    }
    return new Proxy(call as object, {
      [how]() {
        throw new TypeError(`a proxy whose ${how} throws`);
      },
    });
  },
);

const anyCall: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 20, arbitrary: schemaCall },
  { weight: 3, arbitrary: fc.integer().map((seed) => fuzzCall(mulberry32(seed))) },
  { weight: 1, arbitrary: fc.integer().map((seed) => fuzzCall(mulberry32(seed), true)) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }) },
  { weight: 1, arbitrary: anyValue },
  { weight: 1, arbitrary: trap },
);

// ── the properties ──────────────────────────────────────────────────────────────────

const READABLE = new Set<string>(READ_FIELDS);

/** What a single call must come out as; returns whether it mapped. */
function checkCall(input: unknown): boolean {
  const parsed = parseCall(input); // a throw fails the property
  const expected = mustMap(input);
  assert.equal(
    parsed.ok,
    expected,
    expected
      ? `a call with a uuid callId, a readable created and only storable text was refused: ${
        parsed.ok ? "" : parsed.reason
      }`
      : "a call that cannot be stored as received was mapped to a row",
  );
  if (!parsed.ok) {
    assert.equal(typeof parsed.reason, "string");
    assert.ok(parsed.reason.length > 0 && parsed.reason.length <= 200, "reason: 1-200 chars");
    assert.ok(storableString(parsed.reason), "the reason is text Postgres can store");
    if (parsed.callId !== null) {
      assert.ok(parsed.callId.length <= 64 && storableString(parsed.callId), "the echoed callId");
    }
    return false;
  }
  const c = input as Record<string, unknown>;
  const { row, unreadable } = parsed;
  assert.equal(row.ultravox_call_id, c.callId);
  assert.equal(row.created_at, (c.created as string).replace(",", "."));
  assert.equal(row.raw, input, "raw is the object as received");
  assert.deepEqual(unreadable, [...new Set(unreadable)].sort(), "unreadable: sorted, once each");
  for (const f of unreadable) assert.ok(READABLE.has(f), `unreadable names a read field: ${f}`);
  for (
    const [column, field] of [
      ["end_reason", "endReason"],
      ["short_summary", "shortSummary"],
      ["summary", "summary"],
    ] as const
  ) {
    const sent = c[field];
    if (typeof sent === "string") assert.equal(row[column], sent, `${column} keeps the text sent`);
    else {
      assert.equal(row[column], null, `${column} is null for ${typeof sent}`);
      assert.equal(unreadable.includes(field), sent != null, `${field} listed iff present`);
    }
  }
  assert.equal(typeof row.recording_enabled, "boolean");
  for (const v of Object.values(row.metadata)) assert.equal(typeof v, "string");
  for (const column of ["joined_at", "ended_at"] as const) {
    const v = row[column];
    if (v !== null) assert.ok(readableCreated(v), `${column} is a timestamp Postgres reads: ${v}`);
  }
  if (row.duration_seconds !== null) {
    assert.match(row.duration_seconds, /^\d+(\.\d{1,6})?$/, "a non-negative exact duration");
  }
  if (row.billed_duration_seconds !== null) {
    assert.match(row.billed_duration_seconds, /^-?\d{1,12}(\.\d{1,9})?$/, "fits numeric");
  }
  assert.ok(allStorable(JSON.parse(JSON.stringify(row))), "every text of the row is storable");
  return true;
}

Deno.test(`parseCall never throws and maps exactly the storable calls, over ${RUNS} generated call objects`, () => {
  let mapped = 0;
  let tried = 0;
  fuzz(
    "parseCall",
    fc.property(anyCall, (input) => {
      tried++;
      if (checkCall(input)) mapped++;
    }),
    RUNS,
  );
  // Not vacuous: both sides of the line are well represented.
  if (fuzzParameters().path === undefined && tried >= 1_000) {
    assert.ok(mapped > tried * 0.2, `only ${mapped} of ${tried} calls mapped`);
    assert.ok(mapped < tried * 0.8, `${mapped} of ${tried} calls mapped: too few refusals`);
  }
});

Deno.test(`mapPage never throws, keeps every object in API order, and its JSON round-trips, over ${RUNS} calls in pages`, () => {
  const pages = Math.max(1, Math.ceil(RUNS / 10));
  fuzz(
    "mapPage",
    fc.property(fc.array(anyCall, { maxLength: 20 }), (page) => {
      const expected = page.map(mustMap);
      const out = mapPage(page); // a throw fails the property
      const rows: { ord: number; created_at: string; raw: unknown }[] = JSON.parse(out.callsJson);
      const okOrds = rows.map((r) => r.ord);
      const badOrds = out.invalid.map((i) => i.ord);
      assert.deepEqual(
        okOrds,
        expected.flatMap((ok, ord) => ok ? [ord] : []),
        "rows: the storable calls, in order",
      );
      assert.deepEqual(
        badOrds,
        expected.flatMap((ok, ord) => ok ? [] : [ord]),
        "invalid: the others, in order",
      );
      assert.deepEqual(out.createds, rows.map((r) => r.created_at), "createds follow the rows");
      for (const r of rows) {
        assert.deepEqual(
          r.raw,
          JSON.parse(JSON.stringify(page[r.ord])),
          `raw of ${r.ord} round-trips`,
        );
      }
      assert.ok(allStorable(rows), "every text in callsJson is storable");
      const invalidJson = JSON.stringify(out.invalid); // what the page step sends as p_invalid
      assert.ok(allStorable(JSON.parse(invalidJson)), "every refusal is storable text");
      // An unstorable object keeps its created when it is readable, for the slice's range.
      for (const i of out.invalid) {
        if (i.created == null) continue;
        assert.match(i.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, `created of ${i.ord}`);
      }
    }),
    pages,
  );
});

Deno.test("the oracle agrees with the corpus: every entry of calls.json must map, and maps", () => {
  for (const entry of corpus) {
    assert.ok(mustMap(entry.call), entry.shape);
    assert.ok(checkCall(entry.call), entry.shape);
  }
});
