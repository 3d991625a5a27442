// Catch-up end to end (docs/ARCHITECTURE.md §5 "Catch-up", "Deleted calls"): a full sync,
// then the account changes (new calls, one call billed, calls deleted) and a catch-up started
// over HTTP with catch_up: true imports exactly the new calls, refreshes exactly the changed
// one and marks exactly the deleted one of this agency; get-sync-status reports it. Also: a
// catch-up without a completed job is a full sync, catch_up with date_from is refused, a
// capped catch-up stops at its cap, and a catch-up spread over one page per invocation
// resumes its deleted-calls walk from deleted_cursor with exact counters.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { makeHandler as makeStatus } from "../../supabase/functions/get-sync-status/index.ts";
import { TestDb } from "../support/db.ts";
import { call, expectError, functionRequest, type Reply } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";
import { type Harness, harness, holdCalls } from "../support/engine.ts";
import { DEFAULT_API_KEY, type FakeCall, microsOf } from "../../tools/stand_in_ultravox/server.ts";
import { isoOfMicros } from "../../tools/stand_in_ultravox/time.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";

const config = loadConfig();
const OVERLAP_HOURS = config.SYNC_CATCH_UP_OVERLAP_HOURS;
const HOUR = 3_600_000_000n; // µs

/** T: when the full sync is started (its date_to). */
const T = "2026-11-20T12:00:00.000000Z";
const at = (offsetMicros: bigint) => isoOfMicros(microsOf(T)! + offsetMicros);

/** A realistic call (from the generator's template) created at `created`, ended a minute later. */
function callAt(created: string, overrides: Partial<FakeCall> = {}): FakeCall {
  const [template] = generateAccount({ seed: 80, count: 1 });
  const c = microsOf(created)!;
  return {
    ...template,
    callId: crypto.randomUUID(),
    created,
    joined: isoOfMicros(c + 2_000_000n),
    ended: isoOfMicros(c + 62_000_000n),
    endReason: "hangup",
    billedDuration: "60s",
    billingStatus: "BILLING_STATUS_BILLED",
    ...overrides,
  };
}

/** Newest first, as the stand-in lists them (ties do not occur: the offsets differ). */
const newestFirst = (calls: FakeCall[]) =>
  [...calls].sort((a, b) => Number(microsOf(b.created)! - microsOf(a.created)!));

function endpoints(db: TestDb, now: () => Date) {
  const kicks: string[] = [];
  const start = makeStart({ sql: db.sql, config, now, kick: (id) => void kicks.push(id) });
  const status = makeStatus({ sql: db.sql, config, now: () => new Date() });
  return {
    kicks,
    start: async (userId: string, body: unknown): Promise<Reply> =>
      await call(
        start,
        functionRequest("start-historical-sync", body, {
          headers: userHeaders(await userToken(userId)),
        }),
      ),
    status: async (userId: string, query: string): Promise<Reply> =>
      await call(
        status,
        functionRequest("get-sync-status", undefined, {
          method: "GET",
          query,
          headers: userHeaders(await userToken(userId)),
        }),
      ),
  };
}

async function engineState(h: Harness, jobId: string) {
  const [row] = await h.sql<
    {
      phase: string;
      deleted_cursor: string | null;
      deleted_marked: number;
      refreshed_calls: number;
      catch_up: boolean;
      trigger: string;
      holder: string | null;
    }[]
  >`
    select phase, deleted_cursor, deleted_marked, refreshed_calls, catch_up, trigger,
           holder::text
      from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
  return row;
}

async function deletedAt(h: Harness, ids: string[]): Promise<Record<string, string | null>> {
  const rows = await h.sql<{ id: string; deleted_at: string | null }[]>`
    select ultravox_call_id::text as id, ultravox_deleted_at as deleted_at from public.calls
     where ultravox_call_id = any (${ids}::uuid[])`;
  return Object.fromEntries(rows.map((r) => [r.id, r.deleted_at]));
}

const deletedRequests = (h: Harness) =>
  h.fake.requests.filter((r) => r.path === "/api/deleted_calls");

Deno.test("a catch-up imports exactly the new calls, refreshes the billed one, marks the deleted one, and completes", async () => {
  // The account at T: 20 older calls (T − 10 d … T − 2 d), 4 inside the overlap (W1…W4, T − 20 h
  // … T − 2 h; W2 still running), and X (T − 5 h), which agency B already holds.
  const older = Array.from({ length: 20 }, (_, i) => callAt(at(-(48n + BigInt(i) * 9n) * HOUR)));
  const [w1, w2, w3, w4] = [-20n, -14n, -8n, -2n].map((h) => callAt(at(h * HOUR)));
  Object.assign(w2, {
    ended: null,
    endReason: null,
    billedDuration: null,
    billingStatus: "BILLING_STATUS_PENDING",
    shortSummary: null,
    summary: null,
  });
  const x = callAt(at(-5n * HOUR));
  await using h = await harness({ calls: newestFirst([...older, w1, w2, w3, w4, x]) });
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner", member: "member" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  const other = await db.createAgency();
  await holdCalls(db.sql, other.id, [x]);

  // 1. The full sync, started at T (date_to = T).
  let now = new Date(T);
  const api = endpoints(db, () => now);
  const full = await api.start(agency.users.owner, { agency_id: agency.id, max_calls: null });
  assert.equal(full.status, 201);
  assert.equal(full.body.job.catch_up, false);
  assert.equal(full.body.job.date_to, T);
  const fullRun = await h.run(full.body.job.id);
  assert.equal(fullRun.jobs[0].status, "completed");
  const fullRow = await db.loadJob(full.body.job.id);
  assert.deepEqual(
    [fullRow?.processed_calls, fullRow?.imported_calls, fullRow?.skipped_calls],
    [25, 24, 1],
    "the full sync imports 24 calls and skips X (agency B's)",
  );
  assert.equal(deletedRequests(h).length, 0, "a full sync does not read /api/deleted_calls");

  // 2. The account changes: 3 new calls after T, W2 billed, W3, X and one older call deleted.
  const fresh = [10n * 60_000_000n, HOUR, 2n * HOUR - 60_000_000n].map((d) => callAt(at(d)));
  h.fake.addCalls(newestFirst(fresh));
  const billed = h.fake.updateCall(w2.callId, {
    ended: isoOfMicros(microsOf(w2.created)! + 92_000_000n),
    endReason: "hangup",
    billedDuration: "90s",
    billingStatus: "BILLING_STATUS_BILLED",
    shortSummary: "Caller booked a visit.",
    summary: "The caller booked a visit for Tuesday; the agent confirmed by email.",
  });
  const w3Deleted = "2026-11-20T13:00:00.123456Z";
  h.fake.deleteCall(w3.callId, w3Deleted);
  h.fake.deleteCall(x.callId, "2026-11-20T13:00:01.000001Z");
  h.fake.deleteCall(older[3].callId, "2026-11-20T13:00:02.000002Z");

  // 3. The catch-up, started over HTTP at T + 2 h.
  now = new Date(at(2n * HOUR));
  const reply = await api.start(agency.users.owner, { agency_id: agency.id, catch_up: true });
  assert.equal(reply.status, 201);
  const job = reply.body.job;
  const dateFrom = at(-BigInt(OVERLAP_HOURS) * HOUR);
  assert.equal(dateFrom, "2026-11-19T12:00:00.000000Z");
  assert.equal(
    job.date_from,
    dateFrom,
    "date_from = the last date_to − SYNC_CATCH_UP_OVERLAP_HOURS",
  );
  assert.equal(job.date_to, at(2n * HOUR));
  assert.equal(job.catch_up, true);
  assert.equal(job.max_calls, null, "max_calls defaults to null for a catch-up");
  assert.equal(job.trigger, "user");
  assert.equal(job.deleted_calls_marked, 0);
  assert.deepEqual(api.kicks, [full.body.job.id, job.id]);

  const run = await h.run(job.id);
  assert.deepEqual(
    {
      status: run.jobs[0].status,
      imported: run.jobs[0].imported,
      refreshed: run.jobs[0].refreshed,
    },
    { status: "completed", imported: 3, refreshed: 1 },
  );

  // Exactly the new calls imported; W1, W2, W4 counted skipped, W2 of them refreshed.
  const row = await db.loadJob(job.id);
  assert.deepEqual(
    {
      status: row?.status,
      processed: row?.processed_calls,
      imported: row?.imported_calls,
      skipped: row?.skipped_calls,
      failed: row?.failed_calls,
    },
    { status: "completed", processed: 6, imported: 3, skipped: 3, failed: 0 },
  );
  const imported = await h.sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${job.id}::uuid order by created_at desc`;
  assert.deepEqual(imported.map((r) => r.id), newestFirst(fresh).map((c) => c.callId));
  const state = await engineState(h, job.id);
  assert.deepEqual(
    {
      phase: state.phase,
      deleted_cursor: state.deleted_cursor,
      deleted_marked: state.deleted_marked,
      refreshed: state.refreshed_calls,
      holder: state.holder,
    },
    { phase: "deleted_calls", deleted_cursor: null, deleted_marked: 1, refreshed: 1, holder: null },
  );

  // The billed call is refreshed in place; the others of the overlap are as they were.
  const [w2Row] = await h.sql<Record<string, unknown>[]>`
    select ended_at, end_reason, billed_duration_seconds::text as billed, short_summary, summary,
           raw ->> 'billingStatus' as billing, historical_sync_job_id::text as job_id
      from public.calls where ultravox_call_id = ${w2.callId}::uuid`;
  assert.deepEqual(w2Row, {
    ended_at: billed.ended,
    end_reason: "hangup",
    billed: "90",
    short_summary: "Caller booked a visit.",
    summary: "The caller booked a visit for Tuesday; the agent confirmed by email.",
    billing: "BILLING_STATUS_BILLED",
    job_id: full.body.job.id,
  });

  // Marked: W3 only, with its deletionTime to the microsecond. X is agency B's row; the older
  // call lies before the catch-up's range. No row was deleted.
  assert.deepEqual(await deletedAt(h, [w3.callId, x.callId, older[3].callId, w1.callId]), {
    [w3.callId]: w3Deleted,
    [x.callId]: null,
    [older[3].callId]: null,
    [w1.callId]: null,
  });
  const [{ n: agencyRows }] = await h.sql<{ n: number }[]>`
    select count(*)::int as n from public.calls where agency_id = ${agency.id}::uuid`;
  assert.equal(agencyRows, 27, "24 + 3 rows: none deleted");
  const [{ owner }] = await h.sql<{ owner: string }[]>`
    select agency_id::text as owner from public.calls where ultravox_call_id = ${x.callId}::uuid`;
  assert.equal(owner, other.id);

  // The tombstones were asked for the job's range, without sort, once (one page).
  assert.deepEqual(
    deletedRequests(h).map((r) => r.query),
    [{ fromDate: dateFrom, toDate: at(2n * HOUR), pageSize: "10" }],
  );

  // get-sync-status: the job view and the list's last_completed_at.
  const view = await api.status(agency.users.member, `job_id=${job.id}`);
  assert.equal(view.status, 200);
  assert.deepEqual(
    {
      status: view.body.job.status,
      catch_up: view.body.job.catch_up,
      deleted_calls_marked: view.body.job.deleted_calls_marked,
      refreshed_calls: view.body.job.refreshed_calls,
      skipped_calls: view.body.job.skipped_calls,
      imported_calls: view.body.job.imported_calls,
    },
    {
      status: "completed",
      catch_up: true,
      deleted_calls_marked: 1,
      refreshed_calls: 1,
      skipped_calls: 3,
      imported_calls: 3,
    },
  );
  const list = await api.status(agency.users.member, `agency_id=${agency.id}`);
  assert.equal(list.status, 200);
  assert.equal(list.body.last_completed_at, row?.completed_at);
  assert.ok(row!.completed_at! > fullRow!.completed_at!, "the catch-up ended after the full sync");
  assert.deepEqual(list.body.jobs.map((j: { id: string }) => j.id), [job.id, full.body.job.id]);
  assert.deepEqual(list.body.jobs.map((j: { catch_up: boolean }) => j.catch_up), [true, false]);
  assert.equal(list.body.active_job, null);
});

Deno.test("without a completed job a catch-up is a full sync (date_from null), deleted calls included", async () => {
  const calls = [-3n, -2n, -1n].map((d) => callAt(at(d * 24n * HOUR)));
  const gone = callAt(at(-400n * 24n * HOUR)); // over a year old
  await using h = await harness({ calls: newestFirst([...calls, gone]) });
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { admin: "admin" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  // A failed and a cancelled job do not count as a last sync; a webhook brought `gone` in.
  for (const status of ["failed", "cancelled"] as const) {
    await db.insertJob(agency.id, { status, date_to: T, completed_at: T });
  }
  await holdCalls(db.sql, agency.id, [gone]);
  h.fake.deleteCall(gone.callId, "2026-11-20T11:00:00.654321Z");

  const api = endpoints(db, () => new Date(T));
  const reply = await api.start(agency.users.admin, { agency_id: agency.id, catch_up: true });
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.date_from, null, "no completed job: a full sync");
  assert.equal(reply.body.job.date_to, T);
  assert.equal(reply.body.job.catch_up, true);
  assert.equal(reply.body.job.max_calls, null);

  const run = await h.run(reply.body.job.id);
  assert.equal(run.jobs[0].status, "completed");
  const row = await db.loadJob(reply.body.job.id);
  assert.deepEqual([row?.processed_calls, row?.imported_calls, row?.skipped_calls], [3, 3, 0]);
  assert.equal((await engineState(h, reply.body.job.id)).deleted_marked, 1);
  assert.deepEqual(await deletedAt(h, [gone.callId]), {
    [gone.callId]: "2026-11-20T11:00:00.654321Z",
  });
  assert.deepEqual(
    deletedRequests(h).map((r) => r.query),
    [{ toDate: T, pageSize: "10" }],
    "without date_from no fromDate is sent",
  );

  // The list: last_completed_at is that of the newest completed job, not of the failed ones.
  const list = await api.status(agency.users.admin, `agency_id=${agency.id}`);
  assert.equal(list.body.last_completed_at, row?.completed_at);
});

Deno.test("last_completed_at is null without a completed job, and the newest completed job's completed_at otherwise", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const api = endpoints(db, () => new Date());
  await db.insertJob(agency.id, { status: "failed", completed_at: "2026-11-05T00:00:00.000005Z" });
  let list = await api.status(agency.users.member, `agency_id=${agency.id}`);
  assert.equal(list.status, 200);
  assert.equal(list.body.last_completed_at, null);

  await db.insertJob(agency.id, {
    status: "completed",
    completed_at: "2026-11-01T00:00:00.000001Z",
  });
  await db.insertJob(agency.id, {
    status: "completed",
    completed_at: "2026-11-03T00:00:00.000003Z",
  });
  await db.insertJob(agency.id, {
    status: "cancelled",
    completed_at: "2026-11-04T00:00:00.000004Z",
  });
  list = await api.status(agency.users.member, `agency_id=${agency.id}`);
  assert.equal(list.body.last_completed_at, "2026-11-03T00:00:00.000003Z");
});

Deno.test("catch_up with date_from (even null) is 400 validation_failed on catch_up; nothing written", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  const api = endpoints(db, () => new Date(T));
  for (const date_from of ["2026-11-01", "2026-11-01T00:00:00Z", null]) {
    const reply = await api.start(agency.users.owner, {
      agency_id: agency.id,
      catch_up: true,
      date_from,
    });
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["catch_up"]);
  }
  expectError(
    await api.start(agency.users.owner, { agency_id: agency.id, catch_up: "yes" }),
    400,
    "validation_failed",
  );
  assert.equal(await db.countJobs(agency.id), 0);
  assert.deepEqual(api.kicks, []);
});

Deno.test("a capped catch-up stops its calls walk at max_calls, then walks the deleted calls and completes", async () => {
  // 7 calls in the last days before T; a completed job ended at T − 4 d, so the catch-up covers
  // T − 5 d … T. Pages of 2: the cap of 3 falls on page 2, whose next page is already fetched.
  const calls = newestFirst(
    [-100n, -90n, -80n, -70n, -60n, -50n, -40n].map((d) => callAt(at(d * HOUR))),
  );
  await using h = await harness({ calls });
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  await db.insertJob(agency.id, {
    status: "completed",
    date_to: at(-96n * HOUR),
    completed_at: at(-96n * HOUR),
  });
  const doomed = callAt(at(-110n * HOUR));
  await holdCalls(db.sql, agency.id, [doomed]);
  h.fake.addCalls([doomed]);
  h.fake.deleteCall(doomed.callId, "2026-11-20T10:00:00.000001Z");

  const api = endpoints(db, () => new Date(T));
  const reply = await api.start(agency.users.owner, {
    agency_id: agency.id,
    catch_up: true,
    max_calls: 3,
  });
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.date_from, at(-120n * HOUR));
  assert.equal(reply.body.job.max_calls, 3);

  const run = await h.run(reply.body.job.id, { SYNC_PAGE_SIZE: 2 });
  assert.equal(run.jobs[0].status, "completed");
  const row = await db.loadJob(reply.body.job.id);
  assert.deepEqual(
    [row?.processed_calls, row?.imported_calls, row?.skipped_calls, row?.failed_calls],
    [3, 3, 0, 0],
    "exactly max_calls imported, nothing counted past the cap",
  );
  const imported = await h.sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${reply.body.job.id}::uuid order by created_at desc`;
  assert.deepEqual(imported.map((r) => r.id), calls.slice(0, 3).map((c) => c.callId));
  assert.equal((await engineState(h, reply.body.job.id)).deleted_marked, 1);
  assert.deepEqual(await deletedAt(h, [doomed.callId]), {
    [doomed.callId]: "2026-11-20T10:00:00.000001Z",
  });
});

Deno.test("one page per invocation: the deleted-calls walk resumes from deleted_cursor and completes with exact counters", async () => {
  // 8 calls, all imported by a full sync; then 5 are deleted. Pages of 2 and a page budget of 1:
  // the catch-up takes 2 invocations for its 3 listed calls (phase calls), then 3 for the 5
  // tombstones (phase deleted_calls).
  const calls = newestFirst(Array.from({ length: 8 }, (_, i) => callAt(at(-BigInt(i + 1) * HOUR))));
  await using h = await harness({ calls });
  const agencyId = await h.agency();
  const fullId = await h.job(agencyId, { to: T });
  assert.equal((await h.run(fullId)).jobs[0].status, "completed");

  const deleted = [calls[0], calls[2], calls[3], calls[5], calls[7]];
  const deletionTimes = deleted.map((_c, i) => `2026-11-20T12:30:0${i}.00000${i + 1}Z`);
  deleted.forEach((c, i) => h.fake.deleteCall(c.callId, deletionTimes[i]));
  const [{ id: jobId }] = await h.sql<{ id: string }[]>`
    select id from public.create_sync_job(
      ${agencyId}::uuid, public.catch_up_from(${agencyId}::uuid, ${OVERLAP_HOURS}), ${at(HOUR)},
      null, p_catch_up => true)`;

  const budget = { SYNC_PAGE_SIZE: 2, SYNC_MAX_PAGES_PER_RUN: 1 };
  const seen: {
    status: string;
    pages: number;
    phase: string;
    marked: number;
    cursor: string | null;
  }[] = [];
  for (let i = 0; i < 5; i++) {
    const run = await h.run(jobId, budget);
    const s = await engineState(h, jobId);
    seen.push({
      status: run.jobs[0].status,
      pages: run.jobs[0].pages,
      phase: s.phase,
      marked: s.deleted_marked,
      cursor: s.deleted_cursor,
    });
    assert.equal(s.holder, null, `invocation ${i + 1} released its lease`);
  }
  const cursors = deletedRequests(h).map((r) => r.query.cursor ?? null);
  assert.equal(cursors.length, 3, "one tombstone page per invocation, none repeated");
  assert.deepEqual(seen, [
    { status: "in_progress", pages: 1, phase: "calls", marked: 0, cursor: null },
    { status: "in_progress", pages: 1, phase: "deleted_calls", marked: 0, cursor: null },
    { status: "in_progress", pages: 1, phase: "deleted_calls", marked: 2, cursor: cursors[1] },
    { status: "in_progress", pages: 1, phase: "deleted_calls", marked: 4, cursor: cursors[2] },
    { status: "completed", pages: 1, phase: "deleted_calls", marked: 5, cursor: null },
  ]);
  assert.equal(cursors[0], null);
  assert.notEqual(cursors[1], null);
  assert.notEqual(cursors[2], cursors[1]);

  const row = await h.sql<
    { processed_calls: number; imported_calls: number; skipped_calls: number }[]
  >`
    select processed_calls, imported_calls, skipped_calls from public.historical_sync_jobs
     where id = ${jobId}::uuid`;
  assert.deepEqual({ ...row[0] }, { processed_calls: 3, imported_calls: 0, skipped_calls: 3 });
  assert.deepEqual(
    await deletedAt(h, calls.map((c) => c.callId)),
    Object.fromEntries(calls.map((c) => {
      const i = deleted.indexOf(c);
      return [c.callId, i >= 0 ? deletionTimes[i] : null];
    })),
    "each deleted call marked once, with its own deletionTime; the others unmarked",
  );
  // Further invocations find nothing to do.
  assert.deepEqual((await h.run(jobId, budget)).jobs, []);
});

Deno.test("a deleted-calls walk sent back to a cursor it already followed fails the job instead of paging forever", async () => {
  const calls = newestFirst([-2n, -1n].map((d) => callAt(at(d * HOUR))));
  await using h = await harness({ calls });
  const agencyId = await h.agency();
  const [{ id: jobId }] = await h.sql<{ id: string }[]>`
    select id from public.create_sync_job(${agencyId}::uuid, null, ${T}, null, p_catch_up => true)`;
  // The calls page is served as it is; the tombstone pages then go round in a circle,
  // no cursor → A → B → A → … (each page's next differs from the cursor it was asked with,
  // so the client's own check, next = the cursor sent, does not see it).
  const page = (cursor: string) => ({
    kind: "malformed" as const,
    contentType: "application/json",
    body: JSON.stringify({
      next: `${h.fake.baseUrl}/deleted_calls?cursor=${cursor}&pageSize=10`,
      previous: null,
      results: [],
    }),
  });
  h.fake.faults.push({ kind: "pass" });
  for (let i = 0; i < 20; i++) h.fake.faults.push(page(i % 2 === 0 ? "QQ" : "Qg"));

  const run = await h.run(jobId);

  assert.equal(run.jobs[0].status, "failed");
  const row = await h.sql<{ status: string; error_message: string; processed_calls: number }[]>`
    select status, error_message, processed_calls from public.historical_sync_jobs
     where id = ${jobId}::uuid`;
  assert.equal(row[0].status, "failed");
  assert.match(row[0].error_message, /next cursor this sync had already followed/);
  assert.equal(row[0].processed_calls, 2);
  assert.deepEqual(
    deletedRequests(h).map((r) => r.query.cursor ?? null),
    [null, "QQ", "Qg"],
    "the third tombstone page points back at QQ: the walk stops there",
  );
  const s = await engineState(h, jobId);
  assert.deepEqual([s.phase, s.deleted_cursor, s.holder], ["deleted_calls", "Qg", null]);
});
