// The Call corpus (tests/fixtures/ultravox/calls.json) on the real local Postgres: every shape
// the Ultravox schema's history allows maps and is stored exactly as the page step stores it
// (the rows as one JSON array, cast in SQL through jsonb_to_recordset, as record_sync_page does),
// with `raw` equal to the object as received. Beyond the corpus: whatever parseCall accepts,
// Postgres stores (edge timestamps, the deepest nesting allowed, fuzzed objects), and what it
// refuses as unstorable, Postgres refuses too. Each test makes its own agency and removes it
// (its calls cascade).

import assert from "node:assert/strict";
import {
  type CallRow,
  MAX_NESTING,
  parseCall,
} from "../../supabase/functions/_shared/ultravox/call.ts";
import { readTimestamp } from "../../supabase/functions/_shared/time.ts";
import { type Sql, TestDb } from "../support/db.ts";
import { FUZZ_BASE, fuzzCall } from "../fixtures/ultravox/fuzz.ts";
import { mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";

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

/** The call with a fresh callId, so reruns and parallel runs never meet on the unique key. */
function withFreshId<T extends Record<string, unknown>>(call: T): T {
  return { ...structuredClone(call), callId: crypto.randomUUID() };
}

function mapped(call: unknown): CallRow {
  const parsed = parseCall(call);
  assert.ok(parsed.ok, `expected a row, got ${JSON.stringify(parsed).slice(0, 300)}`);
  return parsed.row;
}

/**
 * One page of rows into `calls`, as record_sync_page writes them: the JSON the engine sends,
 * cast to jsonb in SQL and typed column by column. Returns the call ids really inserted.
 */
async function storePage(sql: Sql, agencyId: string, rows: CallRow[]): Promise<string[]> {
  const callsJson = JSON.stringify(rows.map((row, ord) => ({ ord, ...row })));
  const inserted = await sql<{ ultravox_call_id: string }[]>`
    insert into public.calls (
      agency_id, ultravox_call_id, ultravox_agent_id, created_at, joined_at, ended_at,
      end_reason, duration_seconds, billed_duration_seconds, short_summary, summary,
      recording_enabled, metadata, raw, source, historical_sync_job_id, imported_at)
    select ${agencyId}::uuid, r.ultravox_call_id, r.ultravox_agent_id, r.created_at, r.joined_at,
           r.ended_at, r.end_reason, r.duration_seconds, r.billed_duration_seconds,
           r.short_summary, r.summary, coalesce(r.recording_enabled, false),
           coalesce(r.metadata, '{}'), r.raw, 'historical_sync', null, now()
      from jsonb_to_recordset(${callsJson}::text::jsonb) as r(
        ord integer, ultravox_call_id uuid, ultravox_agent_id uuid, created_at timestamptz,
        joined_at timestamptz, ended_at timestamptz, end_reason text, duration_seconds numeric,
        billed_duration_seconds numeric, short_summary text, summary text,
        recording_enabled boolean, metadata jsonb, raw jsonb)
     order by r.ord
    on conflict (ultravox_call_id) do nothing
    returning ultravox_call_id::text`;
  return inserted.map((r) => r.ultravox_call_id);
}

interface StoredCall {
  same_raw: boolean;
  agent_id: string | null;
  created_micros: string;
  joined_micros: string | null;
  ended_micros: string | null;
  end_reason: string | null;
  duration: string | null;
  billed: string | null;
  short_summary: string | null;
  summary: string | null;
  recording_enabled: boolean;
  metadata: Record<string, string>;
  source: string;
}

/** The stored row of `call`, with `raw` compared in SQL (jsonb equality) to the input. */
async function stored(sql: Sql, call: Record<string, unknown>): Promise<StoredCall> {
  const [row] = await sql<StoredCall[]>`
    select raw = ${JSON.stringify(call)}::text::jsonb as same_raw,
           ultravox_agent_id::text as agent_id,
           (extract(epoch from created_at) * 1000000)::numeric(30, 0)::text as created_micros,
           (extract(epoch from joined_at) * 1000000)::numeric(30, 0)::text as joined_micros,
           (extract(epoch from ended_at) * 1000000)::numeric(30, 0)::text as ended_micros,
           end_reason, duration_seconds::text as duration, billed_duration_seconds::text as billed,
           short_summary, summary, recording_enabled, metadata, source
      from public.calls
     where ultravox_call_id = ${call.callId as string}::uuid`;
  assert.ok(row, `call ${call.callId} is stored`);
  return row;
}

/** Asserts the stored columns are exactly the mapped row's values. */
function assertColumns(got: StoredCall, row: CallRow, what: string) {
  const microsOf = (t: string | null) => t === null ? null : String(readTimestamp(t));
  assert.equal(got.agent_id, row.ultravox_agent_id?.toLowerCase() ?? null, `${what}: agent`);
  assert.equal(got.created_micros, microsOf(row.created_at), `${what}: created_at`);
  assert.equal(got.joined_micros, microsOf(row.joined_at), `${what}: joined_at`);
  assert.equal(got.ended_micros, microsOf(row.ended_at), `${what}: ended_at`);
  assert.equal(got.end_reason, row.end_reason, `${what}: end_reason`);
  assert.equal(got.duration, row.duration_seconds, `${what}: duration_seconds`);
  assert.equal(got.billed, row.billed_duration_seconds, `${what}: billed_duration_seconds`);
  assert.equal(got.short_summary, row.short_summary, `${what}: short_summary`);
  assert.equal(got.summary, row.summary, `${what}: summary`);
  assert.equal(got.recording_enabled, row.recording_enabled, `${what}: recording_enabled`);
  assert.deepEqual(got.metadata, row.metadata, `${what}: metadata`);
  assert.equal(got.source, "historical_sync");
}

Deno.test("every corpus call is stored in one page step, raw round-tripping exactly", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const calls = CORPUS.map((f) => withFreshId(f.call));
  const rows = calls.map(mapped);

  const inserted = await storePage(db.sql, agency.id, rows);
  assert.deepEqual(inserted.sort(), calls.map((c) => c.callId as string).sort());

  for (const [i, call] of calls.entries()) {
    const got = await stored(db.sql, call);
    assert.equal(got.same_raw, true, `${CORPUS[i].shape}: raw = input::jsonb`);
    assertColumns(got, rows[i], CORPUS[i].shape);
  }
  // Nothing was lost on the way: the stored raw objects are the corpus, key for key.
  const back = await db.sql<{ raw: Record<string, unknown> }[]>`
    select raw from public.calls where agency_id = ${agency.id}::uuid`;
  const byId = new Map(back.map((r) => [r.raw.callId as string, r.raw]));
  for (const call of calls) assert.deepEqual(byId.get(call.callId as string), call);
});

Deno.test("a call whose every column field has an unexpected type is stored, with nulls", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const call = withFreshId({
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
  });
  const row = mapped(call);
  assert.equal((await storePage(db.sql, agency.id, [row])).length, 1);
  const got = await stored(db.sql, call);
  assert.equal(got.same_raw, true);
  assertColumns(got, row, "odd types");
  assert.equal(got.recording_enabled, false);
  assert.deepEqual(got.metadata, {});
});

Deno.test("every timestamp form parseCall accepts is one Postgres stores, to the microsecond", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const forms = [
    "2025-03-22T15:48Z",
    "2025-03-22t15:48:32z",
    "2025-03-22T15:48:32,5Z",
    "2025-03-22T15:48:32.123456789Z",
    "2025-03-22T15:48:32.9999995Z",
    "2025-03-22T15:48:32+15:59",
    "2025-03-22T15:48:32-15:59",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59.999999-15:00",
    "2024-02-29T23:59:59.999999+00:00",
  ];
  const calls = forms.map((t) => withFreshId({ created: t, joined: t, ended: t }));
  const rows = calls.map(mapped);
  assert.equal((await storePage(db.sql, agency.id, rows)).length, forms.length);
  for (const [i, call] of calls.entries()) {
    const got = await stored(db.sql, call);
    assert.equal(got.same_raw, true, forms[i]);
    assertColumns(got, rows[i], forms[i]);
    assert.equal(got.duration, "0", forms[i]);
  }
});

Deno.test("what parseCall refuses as unstorable, Postgres refuses too", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const refused = [
    { ...FUZZ_BASE, created: "2025-03-22T15:48:32+16:00" },
    { ...FUZZ_BASE, summary: "bad\u0000" },
    { ...FUZZ_BASE, medium: { notes: ["x\uD800"] } },
    { ...FUZZ_BASE, metadata: { ["k\u0000"]: "v" } },
  ];
  for (const call of refused) {
    assert.equal(parseCall(call).ok, false, JSON.stringify(call).slice(0, 80));
    // Stored anyway, the row the old mapper would have made fails the whole statement.
    const row = {
      ...mapped({ ...call, created: FUZZ_BASE.created, summary: null, medium: null, metadata: {} }),
      ultravox_call_id: crypto.randomUUID(),
      created_at: call.created,
      raw: call,
    };
    await assert.rejects(storePage(db.sql, agency.id, [row]), JSON.stringify(call).slice(0, 80));
  }
});

Deno.test("the deepest nesting parseCall accepts is stored", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  let deep: unknown = "leaf";
  for (let i = 0; i < MAX_NESTING - 1; i++) deep = i % 2 === 0 ? [deep] : { k: deep };
  const call = withFreshId({ created: FUZZ_BASE.created, deep });
  // The engine serializes the page with JSON.stringify: that must hold as well.
  JSON.stringify([{ ord: 0, ...mapped(call) }]);
  assert.equal((await storePage(db.sql, agency.id, [mapped(call)])).length, 1);
  assert.equal((await stored(db.sql, call)).same_raw, true);
});

Deno.test("3,000 fuzzed objects: every one parseCall accepts is stored, page by page", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const rand = mulberry32(77);
  const rows: CallRow[] = [];
  for (let i = 0; i < 3_000; i++) {
    // JSON-carried values only: what a page can hold, as JSON.parse makes it.
    const parsed = parseCall(JSON.parse(JSON.stringify(fuzzCall(rand, true)) ?? "null"));
    // A fresh key per row, so every accepted row is really inserted, not skipped.
    if (parsed.ok) rows.push({ ...parsed.row, ultravox_call_id: crypto.randomUUID() });
  }
  assert.ok(rows.length > 500, `${rows.length} accepted`);
  let inserted = 0;
  for (let i = 0; i < rows.length; i += 100) {
    inserted += (await storePage(db.sql, agency.id, rows.slice(i, i + 100))).length;
  }
  assert.equal(inserted, rows.length);
  const [{ same }] = await db.sql<{ same: number }[]>`
    select count(*)::int as same
      from public.calls c
      join jsonb_to_recordset(${
    JSON.stringify(rows.map((r) => ({ id: r.ultravox_call_id, raw: r.raw })))
  }::text::jsonb) as r(id uuid, raw jsonb) on r.id = c.ultravox_call_id
     where c.raw = r.raw`;
  assert.equal(same, rows.length, "every raw stored as mapped");
});
