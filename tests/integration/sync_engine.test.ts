// The sync engine end to end: processHistoricalSync on the real local Postgres against the
// stand-in Ultravox (docs/ARCHITECTURE.md §5). Every test makes its own agencies, jobs and calls (fresh
// random callIds), names its job by id so it never claims another test's, and removes what it
// made. Waits are recorded, never slept.
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import {
  processHistoricalSync,
  type ProcessorDeps,
  type RunSummary,
} from "../../supabase/functions/_shared/sync/processor.ts";
import { type Sql, TestDb, testSql } from "../support/db.ts";
import {
  DEFAULT_API_KEY,
  type FakeCall,
  type FakeUltravox,
  type FakeUltravoxOptions,
  microsOf,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import {
  type AccountOptions,
  callAt,
  generateAccount,
} from "../../tools/stand_in_ultravox/accounts.ts";

const BASE_CONFIG = loadConfig();
const NO_CAP = null;

// ---- harness ---------------------------------------------------------------------------------

interface JobOptions {
  from?: string | null;
  to?: string;
  max?: number | null;
  /** create_sync_job's p_now, i.e. created_at (claims take the oldest first). */
  createdAt?: string;
}

interface Harness {
  /** The test's own connection (fixtures and assertions). */
  sql: Sql;
  fake: FakeUltravox;
  /** Every wait the engine asked for, in ms. */
  sleeps: number[];
  agency(opts?: { key?: string | null }): Promise<string>;
  job(agencyId: string, opts?: JobOptions): Promise<string>;
  run(
    jobId: string | undefined,
    config?: Partial<Config>,
    deps?: Partial<ProcessorDeps>,
  ): Promise<RunSummary>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The stand-in, a test database handle and a separate pool for the engine (as in production). */
async function harness(fakeOpts: FakeUltravoxOptions = {}): Promise<Harness> {
  const db = await TestDb.open();
  const engineSql = testSql();
  const fake = await startFakeUltravox(fakeOpts);
  const sleeps: number[] = [];
  return {
    sql: db.sql,
    fake,
    sleeps,
    async agency(opts = {}) {
      const key = opts.key === undefined ? DEFAULT_API_KEY : opts.key;
      return (await db.createAgency(key === null ? {} : { ultravoxKey: key })).id;
    },
    async job(agencyId, opts = {}) {
      const [job] = await db.sql<{ id: string }[]>`
        select id from public.create_sync_job(
          ${agencyId}, ${opts.from ?? null}, ${opts.to ?? "2026-11-01T00:00:00.000000Z"},
          ${opts.max === undefined ? NO_CAP : opts.max},
          ${opts.createdAt ?? new Date().toISOString()})`;
      assert.ok(job, "create_sync_job refused: the agency already has an active job");
      return job.id;
    },
    run(jobId, config = {}, deps = {}) {
      return processHistoricalSync(
        {
          sql: engineSql,
          config: {
            ...BASE_CONFIG,
            ULTRAVOX_API_BASE: fake.baseUrl,
            SYNC_PAGE_SIZE: 10,
            SYNC_MAX_PAGES_PER_RUN: 100,
            SYNC_TIME_BUDGET_MS: 60_000,
            SYNC_LEASE_SECONDS: 120,
            SYNC_MAX_ATTEMPTS: 10,
            ...config,
          },
          sleep: (ms) => {
            sleeps.push(ms);
            return Promise.resolve();
          },
          log: () => {},
          ...deps,
        },
        jobId === undefined ? {} : { jobId },
      );
    },
    async [Symbol.asyncDispose]() {
      try {
        // A discarded prefetch may still be on its way: let every request be answered first.
        await until(
          "the stand-in answered every request",
          () => fake.requests.every((r) => r.status !== 0),
        );
        await new Promise((r) => setTimeout(r, 20));
        await fake.close();
      } finally {
        await engineSql.end({ timeout: 5 });
        await db.close();
      }
    },
  };
}

/** `count` realistic calls (ultravox_accounts.ts) with fresh callIds, so tests never share one. */
function account(count: number, opts: Partial<AccountOptions> = {}): FakeCall[] {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  return generateAccount({ seed, count, ...opts }).map((c) => ({
    ...c,
    callId: crypto.randomUUID(),
  }));
}

async function until(
  what: string,
  test: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface JobState {
  status: string;
  processed_calls: number;
  imported_calls: number;
  skipped_calls: number;
  failed_calls: number;
  total_calls: number | null;
  cursor: string | null;
  error_message: string | null;
  has_last_error_at: boolean;
  has_started_at: boolean;
  has_completed_at: boolean;
  lease_holder: string | null;
  lease_expires_at: string | null;
  failed_attempts: number | null;
}

async function jobState(sql: Sql, jobId: string): Promise<JobState> {
  const [row] = await sql<JobState[]>`
    select j.status, j.processed_calls, j.imported_calls, j.skipped_calls, j.failed_calls,
           j.total_calls, j.cursor, j.error_message,
           j.last_error_at is not null as has_last_error_at,
           j.started_at is not null as has_started_at,
           j.completed_at is not null as has_completed_at,
           l.holder::text as lease_holder, l.expires_at::text as lease_expires_at,
           l.failed_attempts
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.id = ${jobId}`;
  assert.ok(row, `job ${jobId} is gone`);
  return row;
}

type Counters = Pick<
  JobState,
  | "status"
  | "processed_calls"
  | "imported_calls"
  | "skipped_calls"
  | "failed_calls"
  | "total_calls"
>;

function counters(s: JobState): Counters {
  const { status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls } = s;
  return { status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls };
}

/** The callIds a job imported, in API order (newest first, ties by callId descending). */
async function importedIds(sql: Sql, jobId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${jobId}
     order by created_at desc, ultravox_call_id desc`;
  return rows.map((r) => r.id);
}

async function presentIds(sql: Sql, ids: string[]): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where ultravox_call_id = any (${ids}::uuid[])`;
  return rows.map((r) => r.id).sort();
}

/** Puts calls into `calls` as if someone (another agency, a webhook) had them already. */
async function holdCalls(sql: Sql, agencyId: string, calls: FakeCall[]): Promise<void> {
  for (const c of calls) {
    await sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
      values (${agencyId}, ${c.callId}, ${c.created}, ${sql.json({ held: true })}, 'webhook')`;
  }
}

const ids = (calls: readonly FakeCall[]) => calls.map((c) => c.callId);
const cursors = (fake: FakeUltravox) => fake.requests.map((r) => r.query.cursor ?? null);

/** A protobuf duration ("27s", "0.384s") as exact microseconds. */
function durationMicros(d: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,6}))?s$/.exec(d);
  if (!m) throw new Error(`fixture duration ${d} is not µs-exact`);
  return BigInt(m[1]) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}

const AS_UTC_ISO = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** Every column of the job's rows equals what the stand-in served, to the microsecond. */
async function assertRowsMatch(
  sql: Sql,
  jobId: string,
  agencyId: string,
  served: readonly FakeCall[],
): Promise<void> {
  const rows = await sql<Record<string, unknown>[]>`
    select ultravox_call_id::text as id, agency_id::text, source,
           historical_sync_job_id::text as job_id, ultravox_agent_id::text as agent_id,
           to_char(created_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as created,
           to_char(joined_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as joined,
           to_char(ended_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as ended,
           (duration_seconds * 1000000)::bigint::text as duration_us,
           duration_seconds * 1000000 = trunc(duration_seconds * 1000000) as duration_whole_us,
           (billed_duration_seconds * 1000000)::bigint::text as billed_us,
           end_reason, short_summary, summary, recording_enabled, metadata, raw
      from public.calls
     where historical_sync_job_id = ${jobId}`;
  const byId = new Map(rows.map((r) => [r.id as string, r]));
  assert.equal(rows.length, served.length);
  for (const c of served) {
    const row = byId.get(c.callId);
    assert.ok(row, `call ${c.callId} was not imported`);
    const joined = c.joined ?? null;
    const ended = c.ended ?? null;
    assert.deepEqual(row, {
      id: c.callId,
      agency_id: agencyId,
      source: "historical_sync",
      job_id: jobId,
      agent_id: c.agentId ?? c.agent?.agentId ?? null,
      created: c.created,
      joined,
      ended,
      duration_us: joined !== null && ended !== null
        ? String(microsOf(ended)! - microsOf(joined)!)
        : null,
      duration_whole_us: joined !== null && ended !== null ? true : null,
      billed_us: c.billedDuration ? String(durationMicros(c.billedDuration)) : null,
      end_reason: c.endReason ?? null,
      short_summary: c.shortSummary ?? null,
      summary: c.summary ?? null,
      recording_enabled: c.recordingEnabled ?? false,
      metadata: c.metadata ?? {},
      raw: JSON.parse(JSON.stringify(c)),
    }, `row of call ${c.callId}`);
  }
}

// ---- one invocation --------------------------------------------------------------------------

Deno.test("one invocation imports a whole range: completed, exact counters, every column as served", async () => {
  await using h = await harness({ calls: account(23) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { to: "2026-11-01T00:00:00.000000Z" });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 23, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "completed",
    processed_calls: 23,
    imported_calls: 23,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 23,
  });
  assert.equal(job.cursor, null);
  assert.equal(job.error_message, null);
  assert.equal(job.has_last_error_at, false);
  assert.equal(job.has_started_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.lease_holder, null);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
  await assertRowsMatch(h.sql, jobId, agencyId, h.fake.calls);

  // Three requests, each with the job's stored bounds and the cursor of the page before.
  assert.equal(h.fake.requests.length, 3);
  for (const r of h.fake.requests) {
    assert.equal(r.path, "/api/calls");
    assert.equal(r.keyOk, true);
    assert.deepEqual(
      { ...r.query, cursor: undefined },
      {
        toDate: "2026-11-01T00:00:00.000000Z",
        sort: "-created",
        pageSize: "10",
        cursor: undefined,
      },
    );
  }
  assert.equal(h.fake.requests[0].query.cursor, undefined);
  assert.equal(new Set(cursors(h.fake)).size, 3);
  assert.deepEqual(h.sleeps, []);
});

Deno.test("an empty range completes on its first page with total_calls 0", async () => {
  await using h = await harness({ calls: account(5, { end: "2026-11-01T00:00:00Z", days: 1 }) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, {
    from: "2026-10-01T00:00:00.000000Z",
    to: "2026-10-02T00:00:00.000000Z",
  });

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 0, skipped: 0, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 0,
    imported_calls: 0,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 0,
  });
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].query.fromDate, "2026-10-01T00:00:00.000000Z");
});

// ---- a walk over many invocations ------------------------------------------------------------

for (const perRun of [1, 2, 3]) {
  Deno.test(`a walk split ${perRun} page(s) per invocation ends as one invocation would, each continuing where the last released`, async () => {
    await using h = await harness({ calls: account(23) });
    const heldBy = await h.agency({ key: null });
    await holdCalls(h.sql, heldBy, [h.fake.calls[3], h.fake.calls[17]]);
    const PAGE_SIZE = 5; // 23 calls: pages of 5, 5, 5, 5, 3

    // The reference: one invocation, in an agency removed afterwards (its calls with it).
    const refAgency = await h.agency();
    const refJob = await h.job(refAgency);
    const ref = await h.run(refJob, { SYNC_PAGE_SIZE: PAGE_SIZE });
    assert.deepEqual(ref.jobs, [
      { id: refJob, status: "completed", pages: 5, imported: 21, skipped: 2, failed: 0 },
    ]);
    const refState = counters(await jobState(h.sql, refJob));
    const refIds = await importedIds(h.sql, refJob);
    const refQueries = h.fake.requests.map((r) => r.query);
    assert.equal(refQueries.length, 5);
    await h.sql`delete from public.agencies where id = ${refAgency}`;
    h.fake.requests.length = 0;

    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const invocations = Math.ceil(5 / perRun);
    for (let i = 1; i <= invocations; i++) {
      const before = await jobState(h.sql, jobId);
      const firstRequest = h.fake.requests.length;
      const run = await h.run(jobId, { SYNC_PAGE_SIZE: PAGE_SIZE, SYNC_MAX_PAGES_PER_RUN: perRun });
      const last = i === invocations;
      const pages = last ? 5 - perRun * (invocations - 1) : perRun;
      assert.equal(run.jobs.length, 1, `invocation ${i} claimed the job at once`);
      assert.equal(run.jobs[0].status, last ? "completed" : "in_progress");
      assert.equal(run.jobs[0].pages, pages);
      // It starts from the cursor the last invocation saved, and requests each page once.
      assert.equal(h.fake.requests[firstRequest].query.cursor ?? null, before.cursor);
      assert.equal(h.fake.requests.length, firstRequest + pages);
      const after = await jobState(h.sql, jobId);
      if (!last) {
        assert.equal(after.lease_holder, null, "the lease is released");
        assert.equal(after.lease_expires_at, null);
        assert.notEqual(after.cursor, null);
      }
    }

    assert.deepEqual(counters(await jobState(h.sql, jobId)), refState);
    assert.deepEqual(await importedIds(h.sql, jobId), refIds);
    assert.deepEqual(h.fake.requests.map((r) => r.query), refQueries);
    assert.equal(new Set(cursors(h.fake)).size, 5, "no page requested twice");
    assert.deepEqual((await h.run(jobId)).jobs, [], "a completed job cannot be claimed");
  });
}

Deno.test("the time budget stops a walk after the page taken before the deadline", async () => {
  // Each page takes 600 ms; the budget of 1000 ms allows page 2 (taken at ~600 ms as the
  // prefetch) but not page 3 (due at ~1200 ms).
  await using h = await harness({ calls: account(12), latencyMs: 600 });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 4, SYNC_TIME_BUDGET_MS: 1000 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "in_progress", pages: 2, imported: 8, skipped: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests.length, 2);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.lease_holder, null);
  assert.equal(job.processed_calls, 8);
});

// ---- skipped calls ---------------------------------------------------------------------------

Deno.test("calls already in calls count as skipped, also when another agency holds them", async () => {
  await using h = await harness({ calls: account(12) });
  const agencyId = await h.agency();
  const other = await h.agency({ key: null });
  const calls = h.fake.calls;
  const ownHeld = [calls[0], calls[6]];
  const otherHeld = [calls[4], calls[5], calls[11]];
  await holdCalls(h.sql, agencyId, ownHeld);
  await holdCalls(h.sql, other, otherHeld);
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 7, skipped: 5, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 12,
    imported_calls: 7,
    skipped_calls: 5,
    failed_calls: 0,
    total_calls: 12,
  });
  const held = new Set(ids([...ownHeld, ...otherHeld]));
  assert.deepEqual(await importedIds(h.sql, jobId), ids(calls).filter((id) => !held.has(id)));
  // The held rows are untouched: same agency, source and raw.
  const rows = await h.sql<{ id: string; agency_id: string; source: string; raw: unknown }[]>`
    select ultravox_call_id::text as id, agency_id::text, source, raw from public.calls
     where ultravox_call_id = any (${[...held]}::uuid[]) order by 1`;
  assert.deepEqual(
    [...rows],
    [
      ...ownHeld.map((c) => ({ id: c.callId, agency_id: agencyId })),
      ...otherHeld.map((c) => ({ id: c.callId, agency_id: other })),
    ]
      .map((r) => ({ ...r, source: "webhook", raw: { held: true } }))
      .sort((a, b) => a.id < b.id ? -1 : 1),
  );
});

// ---- max_calls -------------------------------------------------------------------------------

Deno.test("max_calls in the middle of a page imports exactly the cap and counts nothing after it", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 13 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 13, skipped: 0, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 13,
    imported_calls: 13,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 25,
  });
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 13)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(13))), []);
  // Page 3 was prefetched while page 2 was written, then dropped: nothing of it counts.
  assert.equal(h.fake.requests.length, 3);
});

Deno.test("max_calls at a page boundary completes without counting the next page", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 10 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 10, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.processed_calls, 10);
  assert.equal(job.imported_calls, 10);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 10)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(10))), []);
  assert.equal(h.fake.requests.length, 2, "page 2 was prefetched and dropped");
});

Deno.test("max_calls = 1 imports the newest call only", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 1 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 1, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual([job.processed_calls, job.imported_calls, job.skipped_calls], [1, 1, 0]);
  assert.deepEqual(await importedIds(h.sql, jobId), [h.fake.calls[0].callId]);
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(1))), []);
});

Deno.test("a call already present right before the cut is skipped and does not use up the cap; one right after is not counted", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const other = await h.agency({ key: null });
  const c = h.fake.calls;
  // API order: new, new, held, new, held, new… with max_calls 3 the cut falls after c[3].
  await holdCalls(h.sql, other, [c[2], c[4]]);
  const jobId = await h.job(agencyId, { max: 3 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 3, skipped: 1, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [4, 3, 1, 0],
  );
  assert.deepEqual(await importedIds(h.sql, jobId), ids([c[0], c[1], c[3]]));
  assert.deepEqual(await presentIds(h.sql, ids(c.slice(5))), []);
});

Deno.test("max_calls holds across invocations", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 13 });

  const first = await h.run(jobId, { SYNC_PAGE_SIZE: 10, SYNC_MAX_PAGES_PER_RUN: 1 });
  const second = await h.run(jobId, { SYNC_PAGE_SIZE: 10, SYNC_MAX_PAGES_PER_RUN: 1 });

  assert.deepEqual(first.jobs, [
    { id: jobId, status: "in_progress", pages: 1, imported: 10, skipped: 0, failed: 0 },
  ]);
  assert.deepEqual(second.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 3, skipped: 0, failed: 0 },
  ]);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 13)));
  assert.equal((await jobState(h.sql, jobId)).processed_calls, 13);
});

// ---- the range -------------------------------------------------------------------------------

const FROM = "2026-10-01T00:00:00.000000Z";
const TO = "2026-10-31T23:59:59.999999Z";

function rangeCalls() {
  return {
    afterTo: callAt("2026-11-01T00:00:00.000000Z"),
    atTo: callAt(TO),
    inside: [
      callAt("2026-10-20T08:00:00.000001Z"),
      callAt("2026-10-10T12:34:56.789012Z"),
      callAt("2026-10-01T00:00:00.000001Z"),
    ],
    atFrom: callAt(FROM),
    beforeFrom: callAt("2026-09-30T23:59:59.999999Z"),
  };
}

Deno.test("both bounds are inclusive to the microsecond; a microsecond outside is not imported", async () => {
  const r = rangeCalls();
  const all = [r.afterTo, r.atTo, ...r.inside, r.atFrom, r.beforeFrom];
  await using h = await harness({ calls: all });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { from: FROM, to: TO });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 2 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 5, skipped: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests[0].query.fromDate, FROM);
  assert.equal(h.fake.requests[0].query.toDate, TO);
  assert.equal((await jobState(h.sql, jobId)).total_calls, 5);
  const inRange = [r.atTo, ...r.inside, r.atFrom];
  assert.deepEqual(await importedIds(h.sql, jobId), ids(inRange));
  await assertRowsMatch(h.sql, jobId, agencyId, inRange);
  assert.deepEqual(await presentIds(h.sql, ids([r.afterTo, r.beforeFrom])), []);
});

Deno.test("calls outside the range are neither imported nor counted when the source returns them anyway", async () => {
  const r = rangeCalls();
  const all = [r.afterTo, r.atTo, ...r.inside, r.atFrom, r.beforeFrom];
  await using h = await harness({ calls: all });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { from: FROM, to: TO });
  // A source that ignores the date filters.
  const unfiltered: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    url.searchParams.delete("fromDate");
    url.searchParams.delete("toDate");
    return fetch(url, init);
  };

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 3 }, { fetch: unfiltered });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 5, skipped: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests[0].query.toDate, undefined, "the source saw no bounds");
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [5, 5, 0, 0],
  );
  assert.equal(job.total_calls, 7, "total_calls is what the source reported");
  assert.deepEqual(await importedIds(h.sql, jobId), ids([r.atTo, ...r.inside, r.atFrom]));
  assert.deepEqual(await presentIds(h.sql, ids([r.afterTo, r.beforeFrom])), []);
});

// ---- prefetch --------------------------------------------------------------------------------

Deno.test("the next page is requested while the previous page's write is still waiting", async () => {
  await using h = await harness({ calls: account(12) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  // Page 1 is slow, so the test can lock the job row after the claim and before the write.
  h.fake.faults.push({ kind: "latency", ms: 300 });

  const running = h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  await until("page 1 is requested", () => h.fake.requests.length === 1);
  let unlock!: () => void;
  const locked = Promise.withResolvers<void>();
  const holding = h.sql.begin(async (tx) => {
    await tx`select 1 from public.historical_sync_jobs where id = ${jobId} for update`;
    locked.resolve();
    await new Promise<void>((r) => unlock = r);
  });
  await locked.promise;

  // Page 1's write now waits on the row lock; page 2 is requested all the same.
  await until("page 2 is requested", () => h.fake.requests.length === 2);
  assert.equal((await jobState(h.sql, jobId)).processed_calls, 0);
  assert.deepEqual(await importedIds(h.sql, jobId), []);
  // But never two pages ahead: page 3's cursor is only known once page 2 is read.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(h.fake.requests.length, 2);

  unlock();
  await holding;
  const run = await running;
  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 12, skipped: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests.length, 3);
});

// ---- cancel ----------------------------------------------------------------------------------

Deno.test("cancel while a page is in flight keeps that page and every later one out of calls", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "pass" }, { kind: "latency", ms: 800 });

  const running = h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  await until(
    "page 1 is written",
    async () => (await jobState(h.sql, jobId)).processed_calls === 5,
  );
  await until("page 2 is in flight", () => h.fake.requests.length === 2);
  const cursorAfterPage1 = (await jobState(h.sql, jobId)).cursor;
  const cancelled = await h.sql`select status from public.cancel_sync_job(${jobId})`;
  assert.deepEqual(cancelled.map((r) => r.status), ["cancelled"]);

  const run = await running;
  assert.deepEqual(run.jobs, [
    { id: jobId, status: "cancelled", pages: 1, imported: 5, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "cancelled",
    processed_calls: 5,
    imported_calls: 5,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 15,
  });
  assert.equal(job.cursor, cursorAfterPage1);
  assert.equal(job.lease_holder, null);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 5)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(5))), []);
  // Page 3 was prefetched when page 2 arrived, before its write found the job cancelled.
  assert.equal(h.fake.requests.length, 3);

  assert.deepEqual((await h.run(jobId)).jobs, [], "a cancelled job cannot be claimed");
  assert.equal(h.fake.requests.length, 3);
});

// ---- errors ----------------------------------------------------------------------------------

const REJECTED_KEY_MESSAGE = "Ultravox rejected the API key (HTTP 403). " +
  "Set a valid key for this agency with set_agency_ultravox_api_key.";

Deno.test("a rejected key fails the job at once with a message a user can act on", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.setKey("other");

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(job.error_message, REJECTED_KEY_MESSAGE);
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.processed_calls, 0);
  assert.equal(job.lease_holder, null);
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].status, 403);
  assert.deepEqual(h.sleeps, []);
});

Deno.test("a key rejected mid-walk keeps the pages already imported and fails the job", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "pass" }, { kind: "status", status: 403 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 1, imported: 5, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(job.error_message, REJECTED_KEY_MESSAGE);
  assert.equal(job.processed_calls, 5);
  assert.equal(job.cursor, h.fake.requests[1].query.cursor);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 5)));
  assert.equal(h.fake.requests.length, 2);
});

Deno.test("a key rotated mid-walk is a transient error: the next run uses the new key", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  let requests = 0;
  // The agency rotates its key while the run is walking: Ultravox then refuses the old one.
  const rotatingFetch: typeof fetch = async (input, init) => {
    if (++requests === 2) {
      h.fake.setKey("Rt9xQ2wE.newkey0123456789abcdefghijklmnopq");
      await h.sql`select public.set_agency_ultravox_api_key(${agencyId}, ${h.fake.apiKey})`;
    }
    return await fetch(input, init);
  };

  const first = await h.run(jobId, { SYNC_PAGE_SIZE: 5 }, { fetch: rotatingFetch });

  assert.deepEqual(first.jobs, [
    { id: jobId, status: "in_progress", pages: 1, imported: 5, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(
    job.error_message,
    "Ultravox rejected the API key this run started with; a new key has been set since and " +
      "the next run uses it.",
  );
  assert.equal(job.lease_holder, null);

  const second = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  assert.deepEqual(second.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 10, skipped: 0, failed: 0 },
  ]);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

Deno.test("an agency without a key fails its job without asking Ultravox", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency({ key: null });
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(
    job.error_message,
    "No Ultravox API key is set for this agency. Set one with set_agency_ultravox_api_key, " +
      "then start a new sync.",
  );
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.lease_holder, null);
  assert.equal(h.fake.requests.length, 0);
});

Deno.test("a wrong ULTRAVOX_API_BASE (404) fails the job naming the setting", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { ULTRAVOX_API_BASE: h.fake.baseUrl.replace(/\/api$/, "") });

  assert.equal(run.jobs[0].status, "failed");
  const job = await jobState(h.sql, jobId);
  assert.equal(
    job.error_message,
    "Ultravox has no /calls (HTTP 404). Check ULTRAVOX_API_BASE: it must be the API root, " +
      "ending with /api.",
  );
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].path, "/calls");
});

Deno.test("a page that keeps failing transiently leaves the job in progress, released, one attempt counted", async () => {
  await using h = await harness({ calls: account(8) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "status", status: 503, retryAfter: "2", times: 5 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "in_progress", pages: 0, imported: 0, skipped: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests.length, 5);
  assert.deepEqual(h.sleeps, [2000, 2000, 2000, 2000], "Retry-After honoured between attempts");
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "in_progress");
  assert.equal(job.error_message, "Ultravox kept failing (HTTP 503) after 5 attempts");
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, false);
  assert.equal(job.lease_holder, null);
  assert.equal(job.failed_attempts, 1);
  assert.equal(job.processed_calls, 0);

  // The next invocation claims it at once and finishes the walk.
  const next = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  assert.deepEqual(next.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 8, skipped: 0, failed: 0 },
  ]);
  assert.equal((await jobState(h.sql, jobId)).failed_attempts, 0);
});

Deno.test("after SYNC_MAX_ATTEMPTS failed invocations in a row the job fails for good", async () => {
  await using h = await harness({ calls: account(8) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "status", status: 503, times: 15 });
  const cfg = { SYNC_PAGE_SIZE: 5, SYNC_MAX_ATTEMPTS: 3 };

  for (const attempt of [1, 2]) {
    assert.equal((await h.run(jobId, cfg)).jobs[0].status, "in_progress");
    const job = await jobState(h.sql, jobId);
    assert.equal(job.failed_attempts, attempt);
    assert.equal(job.lease_holder, null);
  }
  const third = await h.run(jobId, cfg);

  assert.deepEqual(third.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(
    job.error_message,
    "Ultravox kept failing (HTTP 503) after 5 attempts (gave up after 3 attempts)",
  );
  assert.equal(job.has_completed_at, true);
  assert.equal(h.fake.requests.length, 15);
  assert.equal(h.sleeps.length, 12, "4 backoffs per invocation");
  assert.deepEqual((await h.run(jobId, cfg)).jobs, []);
  assert.equal(h.fake.requests.length, 15);
});

Deno.test("a successful page resets the count of failed invocations", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push(
    { kind: "status", status: 503, times: 10 }, // invocations 1 and 2
    { kind: "pass" }, // invocation 3: page 1
    { kind: "status", status: 502, times: 10 }, // invocations 4 and 5
  );
  const cfg = { SYNC_PAGE_SIZE: 5, SYNC_MAX_PAGES_PER_RUN: 1, SYNC_MAX_ATTEMPTS: 3 };
  const attempts: (number | null)[] = [];
  const statuses: string[] = [];
  for (let i = 0; i < 7; i++) {
    statuses.push((await h.run(jobId, cfg)).jobs[0].status);
    attempts.push((await jobState(h.sql, jobId)).failed_attempts);
  }

  assert.deepEqual(attempts, [1, 2, 0, 1, 2, 0, 0]);
  assert.deepEqual(statuses, [
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "completed",
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [15, 15, 0, 0],
  );
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

// ---- invalid call objects --------------------------------------------------------------------

Deno.test("invalid objects in a page count as failed, the rest imports, error_message says how many and why", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  // Page 2 (the last) gets 3 bad objects among its 5 calls: missing callId, created
  // "yesterday", endReason "exploded" (INVALID_CALL_DEFECTS), the last of them the latest.
  h.fake.faults.push({ kind: "pass" }, { kind: "invalidCalls", count: 3 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 15, skipped: 0, failed: 3 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "completed",
    processed_calls: 18,
    imported_calls: 15,
    skipped_calls: 0,
    failed_calls: 3,
    total_calls: 15,
  });
  assert.match(
    job.error_message ?? "",
    /^3 call\(s\) failed validation and were not imported \(latest: badca11d-0000-4000-8000-000000000003: endReason: .+\)$/,
  );
  assert.equal(job.has_last_error_at, true);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

Deno.test({
  name: "failures on an earlier page are still explained when the job completes",
  fn: async () => {
    await using h = await harness({ calls: account(15) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    h.fake.faults.push({ kind: "invalidCalls", count: 3 });

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

    assert.deepEqual(run.jobs, [
      { id: jobId, status: "completed", pages: 2, imported: 15, skipped: 0, failed: 3 },
    ]);
    assert.match(
      (await jobState(h.sql, jobId)).error_message ?? "",
      /^3 call\(s\) failed validation and were not imported \(latest: badca11d-0000-4000-8000-000000000003: endReason: .+\)$/,
    );
  },
});

// Postgres text and jsonb cannot hold U+0000 (22P05) nor a lone surrogate (22P02): one such
// string would fail the whole page's insert on every retry, so such a call fails validation
// like any other bad object and the walk goes on.
Deno.test({
  name:
    "a call with a NUL character fails validation; the rest of its page imports and the walk goes on",
  fn: async () => {
    await using h = await harness({ calls: account(8) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const c = h.fake.calls;
    c[1].summary = "The caller said \u0000 and hung up.";
    c[6].systemPrompt = "prompt\u0000"; // on page 2, kept only in raw

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

    assert.deepEqual(run.jobs, [
      { id: jobId, status: "completed", pages: 2, imported: 6, skipped: 0, failed: 2 },
    ]);
    const job = await jobState(h.sql, jobId);
    assert.deepEqual(
      [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
      [8, 6, 0, 2],
    );
    assert.match(
      job.error_message ?? "",
      new RegExp(
        `^2 call\\(s\\) failed validation and were not imported \\(latest: ${
          c[6].callId
        }: systemPrompt: .*NUL.*\\)$`,
      ),
    );
    assert.deepEqual(await importedIds(h.sql, jobId), ids(c.filter((_, i) => i !== 1 && i !== 6)));
  },
});

Deno.test({
  name: "a call with a lone surrogate fails validation; the rest of its page imports",
  fn: async () => {
    await using h = await harness({ calls: account(8) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const c = h.fake.calls;
    c[6].shortSummary = "Half an emoji: \uD83D";

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

    assert.deepEqual(run.jobs, [
      { id: jobId, status: "completed", pages: 2, imported: 7, skipped: 0, failed: 1 },
    ]);
    assert.match(
      (await jobState(h.sql, jobId)).error_message ?? "",
      new RegExp(`\\(latest: ${c[6].callId}: shortSummary: .+\\)$`),
    );
    assert.deepEqual(await importedIds(h.sql, jobId), ids(c.filter((_, i) => i !== 6)));
  },
});

// ---- several jobs in one invocation ----------------------------------------------------------

/** 12 calls on each of 29, 30 and 31 October 2026. */
function threeDays(): FakeCall[] {
  return ["2026-10-30", "2026-10-31", "2026-11-01"].flatMap((next) =>
    account(12, { end: `${next}T00:00:00Z`, days: 1 })
  );
}

/** Three agencies with a job each over one of the three days, claimed before anyone else's. */
async function threeJobs(h: Harness) {
  const days = [
    ["2026-10-29T00:00:00.000000Z", "2026-10-29T23:59:59.999999Z"],
    ["2026-10-30T00:00:00.000000Z", "2026-10-30T23:59:59.999999Z"],
    ["2026-10-31T00:00:00.000000Z", "2026-10-31T23:59:59.999999Z"],
  ];
  const jobs = [];
  for (const [i, [from, to]] of days.entries()) {
    const agencyId = await h.agency();
    // Created "in 1970", so an unrestricted claim takes these three before anyone else's.
    const createdAt = `1970-01-01T00:00:00.00000${i + 1}Z`;
    const jobId = await h.job(agencyId, { from, to, createdAt });
    const served = h.fake.calls.filter((c) =>
      microsOf(c.created)! >= microsOf(from)! && microsOf(c.created)! <= microsOf(to)!
    );
    jobs.push({ agencyId, jobId, served });
  }
  return jobs;
}

Deno.test("three jobs in one invocation each walk their own range to the end, side by side", async () => {
  await using h = await harness({
    calls: threeDays(),
    latencyMs: 150,
  });
  const jobs = await threeJobs(h);
  for (const j of jobs) assert.equal(j.served.length, 12);

  const run = await h.run(undefined, { SYNC_PAGE_SIZE: 4, SYNC_MAX_JOBS_PER_RUN: 3 });

  assert.deepEqual(
    run.jobs.toSorted((a, b) => a.id < b.id ? -1 : 1),
    jobs.map((j) => ({
      id: j.jobId,
      status: "completed",
      pages: 3,
      imported: j.served.length,
      skipped: 0,
      failed: 0,
    })).toSorted((a, b) => a.id < b.id ? -1 : 1),
  );
  for (const j of jobs) {
    assert.deepEqual(await importedIds(h.sql, j.jobId), ids(j.served));
    await assertRowsMatch(h.sql, j.jobId, j.agencyId, j.served);
  }
  // All three walks started before any first page came back.
  assert.deepEqual(h.fake.requests.slice(0, 3).map((r) => r.query.cursor ?? null), [
    null,
    null,
    null,
  ]);
  assert.deepEqual(
    new Set(h.fake.requests.slice(0, 3).map((r) => r.query.fromDate)),
    new Set(jobs.map((_, i) => `2026-10-${29 + i}T00:00:00.000000Z`)),
  );
});

Deno.test("jobs in one invocation share its page budget", async () => {
  await using h = await harness({
    calls: threeDays(),
    latencyMs: 100,
  });
  const jobs = await threeJobs(h);
  for (const j of jobs) assert.equal(j.served.length, 12);

  const run = await h.run(undefined, {
    SYNC_PAGE_SIZE: 3,
    SYNC_MAX_JOBS_PER_RUN: 3,
    SYNC_MAX_PAGES_PER_RUN: 4,
  });

  assert.deepEqual(run.jobs.map((j) => j.id).sort(), jobs.map((j) => j.jobId).sort());
  assert.equal(run.jobs.reduce((sum, j) => sum + j.pages, 0), 4);
  for (const j of run.jobs) {
    assert.equal(j.status, "in_progress");
    assert.ok(j.pages === 1 || j.pages === 2, `each job walked 1 or 2 pages, got ${j.pages}`);
    assert.equal(j.imported, j.pages * 3);
    const state = await jobState(h.sql, j.id);
    assert.equal(state.processed_calls, j.pages * 3);
    assert.equal(state.lease_holder, null);
  }
  assert.equal(h.fake.requests.length, 4);
});
