// Sliced walks under faults (docs/ARCHITECTURE.md §5 "Sliced walks"). An uncapped job created
// with create_sync_job(…, p_slices => 8) is walked as 8 time slices, each with its own cursor,
// lease and attempts, claimed by several invocations at once; a slice that finishes takes an
// unclaimed one or splits the largest remaining one. Each scenario ends with every in-range
// call of the stand-in account in `calls` exactly once (none out of range), exact counters on
// the job row, slices that still tile the job's range, and every slice's processed_calls equal
// to the calls of its final range.
//
//   1. a processor child walking all 8 slices is SIGKILLed mid-slice; after the leases run out,
//      fresh invocations finish the job;
//   2. cancel_sync_job while 8 slice walkers each wait on a request: nothing lands after it;
//   3. a 429 storm (Retry-After: 30) on one slice's time range only: the others finish, the
//      stormed slice is released with not_before and no attempt counted, the job completes once
//      the storm is over;
//   4. slices finishing early split the largest remaining one while its walker (a child) is
//      SIGKILLed holding it; the dead walker's slice is taken over after its lease;
//   5. a slice a dead walker left mid-walk (cursor set, lease run out) is handed on by the page
//      step that finishes another slice: the finisher must resume it at its cursor. (Fails
//      today: the hand-on gives the runner no cursor, the runner starts the slice from its first
//      page, its page step is fenced out on the cursor, and the attempt the hand-on counted
//      stays counted, so with SYNC_MAX_ATTEMPTS 3 the job fails with no fault at all.)
//
// The stand-in aims faults at one slice with fault rules (createdOverlaps), since concurrent
// walkers make the fault queue's order a race. Accounts come from fixed seeds with fresh
// callIds, so the figures asserted are exact numbers; no test sleeps except for a 2 s lease to
// run out after a SIGKILL (the dead walker of test 5 is the test itself, at p_now an hour ago).
import assert from "node:assert/strict";
import type { Config } from "../../supabase/functions/_shared/platform/config.ts";
import {
  processHistoricalSync,
  type RunSummary,
} from "../../supabase/functions/_shared/sync/processor.ts";
import { createUltravoxClient } from "../../supabase/functions/_shared/ultravox/client.ts";
import { mapPage } from "../../supabase/functions/_shared/sync/job_runner.ts";
import { TestDb } from "../support/db.ts";
import {
  createdOverlaps,
  type FakeCall,
  microsOf,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import { spawnProcessor } from "./support/child.ts";
import {
  ACTIVE,
  checkJob,
  dbSql,
  delay,
  inRolledBackTransaction,
  loadJob,
  pauseCron,
  type Sql,
  syncConfig,
  waitFor,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const PAGE = 5; // record_sync_slice_page splits remainders of 2 × PAGE = 10 calls or more
const SLICES = 8;
const LEASE_SECONDS = 2;
/** The job's range: the accounts run 30 days up to 2026-11-01, so calls lie on both sides of it. */
const JOB_FROM = "2026-10-05T00:00:00.000000Z";
const JOB_TO = "2026-10-28T23:59:59.999999Z";

// ---- accounts --------------------------------------------------------------------------------

const micros = (iso: string) => microsOf(iso)!;

/** Newest first, ties by callId descending, as Ultravox lists them. */
function apiOrder(a: FakeCall, b: FakeCall): number {
  const d = micros(b.created) - micros(a.created);
  return d > 0n ? 1 : d < 0n ? -1 : a.callId < b.callId ? 1 : a.callId > b.callId ? -1 : 0;
}

/**
 * generateAccount's calls for each part (seed + i), with fresh callIds: the same instants every
 * run, so the figures are exact, and no callId shared with another test or run.
 */
function account(seed: number, parts: { count: number; days: number; end?: string }[]) {
  return parts
    .flatMap((p, i) => generateAccount({ seed: seed + i, ...p }))
    .map((c) => ({ ...c, callId: crypto.randomUUID() }))
    .sort(apiOrder);
}

/** The calls inside an inclusive range (null from: open-ended), in API order. */
function within(calls: readonly FakeCall[], from: string | null, to: string): FakeCall[] {
  const [lo, hi] = [from === null ? null : micros(from), micros(to)];
  return calls.filter((c) => {
    const m = micros(c.created);
    return (lo === null || m >= lo) && m <= hi;
  });
}

// ---- the job and its slices ------------------------------------------------------------------

async function createSlicedJob(sql: Sql, agencyId: string): Promise<string> {
  const [job] = await sql<{ id: string }[]>`
    select id from public.create_sync_job(
      ${agencyId}::uuid, ${JOB_FROM}::timestamptz, ${JOB_TO}::timestamptz, null::integer,
      p_slices => ${SLICES}::integer)`;
  assert.ok(job, `create_sync_job refused a job for agency ${agencyId}`);
  return job.id;
}

interface SliceRow {
  slice_no: number;
  date_from: string | null;
  date_to: string;
  cursor: string | null;
  done: boolean;
  holder: string | null;
  expires_at: string | null;
  not_before: string | null;
  failed_attempts: number;
  processed_calls: number;
  reported_total: number | null;
  expected_calls: number | null;
  in_job_total: boolean;
}

async function slicesOf(sql: Sql, jobId: string): Promise<SliceRow[]> {
  return await sql<SliceRow[]>`
    select slice_no, date_from, date_to, cursor, done, holder::text as holder, expires_at,
           not_before, failed_attempts, processed_calls, reported_total, expected_calls,
           in_job_total
      from public.historical_sync_job_slices where job_id = ${jobId}::uuid
     order by slice_no`;
}

async function callRows(sql: Sql, jobId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${jobId}::uuid`;
  return rows.map((r) => r.id);
}

/** Calls of the account in `calls` at all (any job, any agency). */
async function storedOf(sql: Sql, calls: readonly FakeCall[]): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.calls
     where ultravox_call_id = any (${calls.map((c) => c.callId)}::uuid[])`;
  return n;
}

/**
 * What must hold of the slices at every point: they tile [JOB_FROM, JOB_TO] (sorted by range,
 * each starts 1 µs after the one before ends), the job's processed_calls is their sum, and
 * each slice's imported rows are the newest `processed_calls` calls of its range as it is now
 * (whole pages only, nothing a split moved away; a done slice: all of them).
 */
async function sliceProblems(
  sql: Sql,
  jobId: string,
  calls: readonly FakeCall[],
): Promise<string[]> {
  const problems: string[] = [];
  const slices = await slicesOf(sql, jobId);
  const job = await loadJob(sql, jobId);
  const byRange = [...slices].sort((a, b) =>
    a.date_from === null
      ? -1
      : b.date_from === null
      ? 1
      : Number(micros(a.date_from) - micros(b.date_from))
  );
  if (byRange[0]?.date_from !== JOB_FROM) {
    problems.push(`the oldest slice starts at ${byRange[0]?.date_from}`);
  }
  if (byRange.at(-1)?.date_to !== JOB_TO) {
    problems.push(`the newest slice ends at ${byRange.at(-1)?.date_to}`);
  }
  for (let i = 1; i < byRange.length; i++) {
    const [prev, next] = [byRange[i - 1], byRange[i]];
    if (micros(next.date_from!) !== micros(prev.date_to) + 1n) {
      problems.push(
        `slices ${prev.slice_no} and ${next.slice_no} do not meet: ${prev.date_to} / ${next.date_from}`,
      );
    }
  }
  const sum = slices.reduce((n, s) => n + s.processed_calls, 0);
  if (sum !== job.processed_calls) {
    problems.push(`slices processed ${sum}, the job ${job.processed_calls}`);
  }
  const rows = new Set(await callRows(sql, jobId));
  for (const s of slices) {
    const listed = within(calls, s.date_from, s.date_to);
    const want = s.done ? listed.length : s.processed_calls;
    if (s.processed_calls !== want) {
      problems.push(
        `slice ${s.slice_no} done with ${s.processed_calls} of its ${listed.length} calls`,
      );
    }
    const landed = listed.filter((c) => rows.has(c.callId)).length;
    const prefix = listed.slice(0, s.processed_calls).filter((c) => rows.has(c.callId)).length;
    if (landed !== s.processed_calls || prefix !== s.processed_calls) {
      problems.push(
        `slice ${s.slice_no}: ${landed} rows in its range, ${prefix} of its newest ${s.processed_calls}`,
      );
    }
  }
  return problems;
}

// ---- running the processor --------------------------------------------------------------------

interface WorkLog {
  invocations: number;
  /** Invocations that claimed nothing (every open slice leased). */
  unclaimed: number;
  pages: number;
  /** Log events by kind (job_fenced_out, slice_next, job_rate_limited, …). */
  events: Map<string, number>;
  /** Every wait the engine asked for (sleep is injected). */
  waits: number[];
  runs: RunSummary[];
}

function workLog(): WorkLog {
  return { invocations: 0, unclaimed: 0, pages: 0, events: new Map(), waits: [], runs: [] };
}

const eventCount = (log: WorkLog, kind: string) => log.events.get(kind) ?? 0;

/** One invocation for the job, as a tick or a continuation would post it. */
async function invoke(sql: Sql, config: Config, jobId: string, log: WorkLog): Promise<RunSummary> {
  const run = await processHistoricalSync({
    sql,
    config,
    sleep: (ms) => {
      log.waits.push(ms);
      return Promise.resolve();
    },
    log: (e) => void log.events.set(String(e.event), (log.events.get(String(e.event)) ?? 0) + 1),
  }, { jobId });
  log.runs.push(run);
  const job = run.jobs[0];
  if (job) {
    log.invocations++;
    log.pages += job.pages;
  } else {
    log.unclaimed++;
  }
  return run;
}

/**
 * `pools.length` workers invoking the processor for the job again and again (one pool each),
 * until it is no longer active; an invocation that claims nothing (leases still live) is
 * followed by another 20 ms later.
 */
async function runWorkers(
  pools: Sql[],
  config: Config,
  jobId: string,
  log: WorkLog,
  timeoutMs = 20_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let status = "in_progress";
  await Promise.all(pools.map(async (sql) => {
    while (ACTIVE.has(status)) {
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${status}`);
      const run = await invoke(sql, config, jobId, log);
      const job = run.jobs[0];
      if (job && !ACTIVE.has(job.status)) status = job.status;
      else if (!job) {
        status = (await loadJob(sql, jobId)).status;
        if (ACTIVE.has(status)) await delay(20);
      }
    }
  }));
  return status;
}

/** A claim of everything at `at`, rolled back: how many slices it would have taken. */
async function claimableAt(sql: Sql, jobId: string, at: string): Promise<number> {
  return await inRolledBackTransaction(sql, async (tx) => {
    const rows = await tx`
      select slice_no from public.claim_sync_work(gen_random_uuid(), 100, 60, ${jobId}::uuid,
                                                  ${at}::timestamptz)`;
    return rows.length;
  });
}

/** Sleeps until every leased slice of the job has run out by the database clock. */
async function waitForSliceLeases(sql: Sql, jobId: string): Promise<void> {
  const [{ left }] = await sql<{ left: number | null }[]>`
    select extract(epoch from max(expires_at) - clock_timestamp())::float8 as left
      from public.historical_sync_job_slices where job_id = ${jobId}::uuid`;
  if (left !== null && left > 0) await delay(Math.ceil(left * 1000) + 30);
}

/** The stand-in is closed only once every request is answered (no op left to leak). */
async function allAnswered(fake: { requests: { status: number }[] }) {
  await waitFor(
    "the stand-in answered every request",
    () => fake.requests.every((r) => r.status !== 0),
  );
}

function poolsOf(n: number, size: number): Sql[] {
  return Array.from({ length: n }, () => dbSql(size));
}

async function endPools(pools: Sql[]) {
  await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
}

// ---- 1. SIGKILL mid-slice ---------------------------------------------------------------------

/** 0 lost, 0 duplicated, no mismatch or problem, and every counter exactly `calls`. */
function assertExactlyOnce(
  check: Awaited<ReturnType<typeof checkJob>>,
  problems: unknown[],
  calls: number,
) {
  assert.equal(check.lost, 0, "calls lost");
  assert.equal(check.duplicated, 0, "calls duplicated");
  assert.deepEqual(check.mismatches, []);
  assert.deepEqual(problems, []);
  const { processed_calls, imported_calls, skipped_calls, failed_calls, total_calls } = check.job;
  assert.deepEqual(
    [processed_calls, imported_calls, skipped_calls, failed_calls, total_calls, check.rows],
    [calls, calls, 0, 0, calls, calls],
  );
}

Deno.test("sliced walk: a processor SIGKILLed mid-slice leaves whole pages; once the leases run out, fresh invocations finish the job exactly", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = account(710_001, [{ count: 200, days: 30 }]);
  const seen = within(calls, JOB_FROM, JOB_TO);
  await using fake = await startFakeUltravox({ calls, latencyMs: 40 });
  const pools = poolsOf(3, 5);
  try {
    assert.equal(seen.length, 156, "the account's calls in the job's range");
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createSlicedJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_JOBS_PER_RUN: SLICES,
    });

    // One child walks all 8 slices; it is killed once 50 calls have landed.
    const child = spawnProcessor([jobId], config);
    try {
      await waitFor(
        "50 calls committed",
        async () => (await loadJob(db.sql, jobId)).processed_calls >= 50,
        { timeoutMs: 20_000 },
      );
    } finally {
      child.kill();
    }
    const exit = await child.done;
    await allAnswered(fake);
    const atKill = await loadJob(db.sql, jobId);
    const slicesAtKill = await slicesOf(db.sql, jobId);
    const rowsAtKill = (await callRows(db.sql, jobId)).length;
    const problemsAtKill = await sliceProblems(db.sql, jobId, calls);
    const open = slicesAtKill.filter((s) => !s.done);
    const midSlice = open.filter((s) => s.cursor !== null).length;
    // A claim a millisecond before the first lease runs out takes nothing.
    const firstExpiry = open.flatMap((s) => s.expires_at ?? []).sort()[0];
    const early = await claimableAt(
      db.sql,
      jobId,
      new Date(Date.parse(firstExpiry) - 1).toISOString(),
    );

    await waitForSliceLeases(db.sql, jobId);
    const recovery = workLog();
    const status = await runWorkers(
      pools,
      { ...config, SYNC_MAX_JOBS_PER_RUN: 4 },
      jobId,
      recovery,
    );
    await allAnswered(fake);

    const check = await checkJob(db.sql, jobId, { seen, total: seen.length });
    const problems = await sliceProblems(db.sql, jobId, calls);
    const slices = await slicesOf(db.sql, jobId);
    const outside = await storedOf(db.sql, calls.filter((c) => !seen.includes(c)));
    await recordFigures({
      suite: "crash",
      test: "sliced walk: SIGKILL mid-slice, fresh invocations finish",
      cases: 1,
      faults: 1,
      calls_expected: seen.length,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length + problems.length + problemsAtKill.length,
      notes: {
        processed_at_kill: atKill.processed_calls,
        slices_at_kill: slicesAtKill.length,
        open_mid_slice_at_kill: midSlice,
        slices_at_end: slices.length,
        recovery_invocations: recovery.invocations,
        recovery_unclaimed: recovery.unclaimed,
        recovery_fenced_out: eventCount(recovery, "job_fenced_out"),
      },
    }, started);

    assert.equal(exit.signal, "SIGKILL", "the child was killed, not finished");
    assert.ok(ACTIVE.has(atKill.status), `the job was still ${atKill.status} at the kill`);
    assert.ok(midSlice >= 1, "at least one slice was killed mid-walk (cursor set, not done)");
    assert.ok(open.every((s) => s.holder !== null), "the dead child held every open slice");
    assert.equal(rowsAtKill, atKill.imported_calls, "rows = imported_calls after the kill");
    assert.deepEqual(problemsAtKill, [], "after the kill: whole pages only, slices tile the range");
    assert.equal(early, 0, "no slice claimable before its lease runs out");
    assert.equal(status, "completed");
    assertExactlyOnce(check, problems, 156);
    assert.deepEqual(
      {
        processed: check.job.processed_calls,
        imported: check.job.imported_calls,
        skipped: check.job.skipped_calls,
        failed: check.job.failed_calls,
        total: check.job.total_calls,
        rows: check.rows,
        outside,
      },
      { processed: 156, imported: 156, skipped: 0, failed: 0, total: 156, rows: 156, outside: 0 },
    );
    assert.ok(slices.every((s) => s.done && s.holder === null), "every slice done and unleased");
  } finally {
    await endPools(pools);
    await restoreCron();
  }
});

// ---- 2. cancel with 8 slices in flight --------------------------------------------------------

Deno.test("sliced walk: a cancel while 8 slice walkers each wait on Ultravox keeps every later page out", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = account(720_001, [{ count: 200, days: 30 }]);
  const seen = within(calls, JOB_FROM, JOB_TO);
  await using fake = await startFakeUltravox({ calls });
  // Every page after a slice's first (a request with a cursor) takes 400 ms: once the first
  // pages have landed, all 8 walkers are mid-request.
  fake.faultRules.add({
    match: (r) => r.query.cursor !== undefined,
    fault: { kind: "latency", ms: 400 },
  });
  const pools = poolsOf(2, 5);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createSlicedJob(db.sql, agency.id);
    const planned = await slicesOf(db.sql, jobId);
    // Every slice has a second page, so none finishes (or splits) before the cancel.
    assert.deepEqual(
      planned.map((s) => within(calls, s.date_from, s.date_to).length),
      [22, 20, 18, 18, 15, 17, 20, 20],
    );
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_JOBS_PER_RUN: 4,
    });
    // Two invocations, 4 slices each.
    const log = workLog();
    const runs = pools.map((sql) => invoke(sql, config, jobId, log));
    await waitFor("every slice's first page landed and 8 requests in flight", async () => {
      const slices = await slicesOf(db.sql, jobId);
      const waiting = fake.requests.filter((r) => r.status === 0 && r.query.cursor !== undefined);
      return slices.every((s) => s.cursor !== null) && waiting.length === SLICES;
    }, { timeoutMs: 15_000 });

    const cancelled = await db.sql<{ status: string }[]>`
      select status from public.cancel_sync_job(${jobId}::uuid)`;
    const rowsAtCancel = await callRows(db.sql, jobId);
    const jobAtCancel = await loadJob(db.sql, jobId);
    const requestsAtCancel = fake.requests.length;
    await Promise.all(runs);
    await allAnswered(fake);
    const rowsLater = await callRows(db.sql, jobId);
    const job = await loadJob(db.sql, jobId);
    const slices = await slicesOf(db.sql, jobId);
    const claimAfter = await claimableAt(db.sql, jobId, new Date().toISOString());
    const problems = await sliceProblems(db.sql, jobId, calls);
    const seenIds = new Set(seen.map((c) => c.callId));
    const landedAfter = rowsLater.length - rowsAtCancel.length;
    await recordFigures({
      suite: "cancel",
      test: "sliced walk: cancel with 8 slices mid-request",
      cases: 1,
      faults: 1,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: problems.length + (landedAfter === 0 ? 0 : 1),
      notes: {
        rows_at_cancel: rowsAtCancel.length,
        calls_landed_after_cancel: landedAfter,
        walkers_fenced_out: eventCount(log, "job_fenced_out"),
        requests_after_cancel: fake.requests.length - requestsAtCancel,
      },
    }, started);

    assert.deepEqual([...cancelled], [{ status: "cancelled" }], "cancel_sync_job returned the job");
    assert.equal(rowsAtCancel.length, SLICES * PAGE, "the first page of each slice, and no more");
    assert.equal(landedAfter, 0, "no call landed after the cancel returned");
    assert.deepEqual(rowsLater.sort(), rowsAtCancel.sort());
    assert.ok(rowsLater.every((id) => seenIds.has(id)), "only in-range calls");
    assert.deepEqual(
      [job.status, job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
      ["cancelled", 40, 40, 0, 0],
    );
    assert.equal(job.completed_at, jobAtCancel.completed_at, "completed_at is the cancel's");
    assert.equal(job.total_calls, seen.length, "the 8 first pages reported their totals");
    assert.deepEqual(problems, []);
    // Each walker's page step after the cancel was fenced out and dropped its lease.
    assert.equal(eventCount(log, "job_fenced_out"), SLICES);
    assert.deepEqual(log.runs.map((r) => r.jobs.map((j) => [j.status, j.pages])), [
      [["cancelled", 4]],
      [["cancelled", 4]],
    ]);
    assert.deepEqual(
      slices.map((s) => [s.holder, s.done, s.processed_calls]),
      planned.map(() => [null, false, PAGE]),
    );
    assert.equal(claimAfter, 0, "nothing of the cancelled job is claimable");
  } finally {
    await endPools(pools);
    await restoreCron();
  }
});

// ---- 3. a 429 storm on one slice ---------------------------------------------------------------

const STORMED = 5;
const STORM_ROUNDS = 5;
const RETRY_AFTER_S = 30;

Deno.test("sliced walk: a 429 storm on one slice's range: the other slices finish, the stormed one waits (no attempt counted) and the job completes exactly after the storm", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = account(730_001, [{ count: 200, days: 30 }]);
  const seen = within(calls, JOB_FROM, JOB_TO);
  await using fake = await startFakeUltravox({ calls });
  const [sql] = poolsOf(1, 9);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createSlicedJob(db.sql, agency.id);
    const planned = await slicesOf(db.sql, jobId);
    const stormed = planned[STORMED - 1];
    const inStorm = within(calls, stormed.date_from, stormed.date_to);
    assert.deepEqual([seen.length, inStorm.length], [161, 19]);
    const inStormRange = createdOverlaps(stormed.date_from, stormed.date_to);
    // Every request for slice 5's range gets 429 Retry-After: 30, STORM_ROUNDS times.
    const storm = fake.faultRules.add({
      match: inStormRange,
      fault: { kind: "status", status: 429, retryAfter: String(RETRY_AFTER_S) },
      times: STORM_ROUNDS,
    });
    // Fewer attempts than the storm has rounds: a Retry-After waited for must not count.
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_JOBS_PER_RUN: SLICES,
      SYNC_MAX_ATTEMPTS: 3,
    });
    const log = workLog();
    const releases: {
      round: number;
      holder: string | null;
      failed_attempts: number;
      cursor: string | null;
      processed_calls: number;
      not_before_ok: boolean;
      claimable_before: boolean;
      claimable_at: boolean;
      claimed_early: number | null;
      others_done: boolean;
      job: [string, number, number, number | null];
    }[] = [];
    for (let round = 1; round <= STORM_ROUNDS; round++) {
      const t0 = Date.now();
      await invoke(sql, config, jobId, log);
      const t1 = Date.now();
      const slices = await slicesOf(db.sql, jobId);
      const s = slices.find((x) => x.slice_no === STORMED)!;
      const job = await loadJob(db.sql, jobId);
      const [claimable] = await db.sql<{ before: boolean; at: boolean }[]>`
        select public.sync_slice_is_claimable(j, s, s.not_before - interval '1 microsecond') as before,
               public.sync_slice_is_claimable(j, s, s.not_before) as at
          from public.historical_sync_jobs j
          join public.historical_sync_job_slices s on s.job_id = j.id
         where j.id = ${jobId}::uuid and s.slice_no = ${STORMED}`;
      const nb = s.not_before === null ? NaN : Date.parse(s.not_before);
      releases.push({
        round,
        holder: s.holder,
        failed_attempts: s.failed_attempts,
        cursor: s.cursor,
        processed_calls: s.processed_calls,
        // The engine asks for not_before = its clock + Retry-After (ms precision).
        not_before_ok: nb >= t0 + RETRY_AFTER_S * 1000 && nb <= t1 + RETRY_AFTER_S * 1000,
        claimable_before: claimable.before,
        claimable_at: claimable.at,
        claimed_early: Number.isNaN(nb)
          ? null
          : await claimableAt(db.sql, jobId, new Date(nb - 1).toISOString()),
        others_done: slices.every((x) => x.slice_no === STORMED || x.done),
        job: [job.status, job.processed_calls, job.imported_calls, job.total_calls],
      });
      // The clock passes not_before.
      await db.sql`
        update public.historical_sync_job_slices set not_before = now()
         where job_id = ${jobId}::uuid and slice_no = ${STORMED}`;
    }
    // The storm is over: the next invocation walks slice 5 and completes the job.
    const status = await runWorkers([sql], config, jobId, log);
    await allAnswered(fake);

    const check = await checkJob(db.sql, jobId, { seen, total: seen.length });
    const problems = await sliceProblems(db.sql, jobId, calls);
    const slices = await slicesOf(db.sql, jobId);
    const tooMany = fake.requests.filter((r) => r.status === 429);
    const outsideStorm = fake.requests.filter((r) => !inStormRange(r));
    await recordFigures({
      suite: "source",
      test: "sliced walk: 429 storm on one slice's range",
      cases: 1,
      faults: tooMany.length,
      calls_expected: seen.length,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length + problems.length,
      notes: {
        invocations: log.invocations,
        rate_limited_releases: eventCount(log, "job_rate_limited"),
        requests: fake.requests.length,
        waits: log.waits.length,
        slices_at_end: slices.length,
      },
    }, started);

    const other = seen.length - inStorm.length;
    assert.deepEqual(
      releases,
      Array.from({ length: STORM_ROUNDS }, (_, i) => ({
        round: i + 1,
        holder: null,
        failed_attempts: 0,
        cursor: null,
        processed_calls: 0,
        not_before_ok: true,
        claimable_before: false,
        claimable_at: true,
        claimed_early: 0,
        others_done: true,
        // total_calls waits for slice 5's first total
        job: ["in_progress", other, other, null],
      })),
    );
    assert.equal(storm.hits, STORM_ROUNDS);
    assert.equal(
      tooMany.length,
      STORM_ROUNDS,
      "one 429 per round: a long Retry-After is not retried in place",
    );
    assert.ok(tooMany.every(inStormRange), "only slice 5's range was stormed");
    assert.ok(outsideStorm.every((r) => r.status === 200), "the other slices never saw a fault");
    assert.equal(eventCount(log, "job_rate_limited"), STORM_ROUNDS);
    assert.deepEqual(log.waits, [], "Retry-After: 30 is never slept in the invocation");
    assert.equal(status, "completed");
    assertExactlyOnce(check, problems, 161);
    assert.equal(check.job.error_message, null, "waiting out a Retry-After is no error");
    assert.equal(await storedOf(db.sql, calls.filter((c) => !seen.includes(c))), 0);
    assert.ok(slices.every((s) => s.done && s.holder === null));
  } finally {
    await sql.end({ timeout: 5 });
    await restoreCron();
  }
});

// ---- 4. a split racing a crash -----------------------------------------------------------------

Deno.test("sliced walk: slices that finish early split the largest remaining one while its walker is SIGKILLed holding it; the job still completes exactly once per call", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  // A sparse month, and 80 more calls in slice 1's range (5–7 October): slice 1 is the big one.
  const calls = account(740_001, [
    { count: 60, days: 30 },
    { count: 80, days: 2, end: "2026-10-07T12:00:00Z" },
  ]);
  const seen = within(calls, JOB_FROM, JOB_TO);
  await using fake = await startFakeUltravox({ calls });
  const pools = poolsOf(2, 5);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createSlicedJob(db.sql, agency.id);
    const planned = await slicesOf(db.sql, jobId);
    const first = planned[0];
    assert.deepEqual(
      planned.map((s) => within(calls, s.date_from, s.date_to).length),
      [84, 4, 6, 4, 4, 6, 10, 8],
    );
    // Slice 1's range answers in 150 ms a page (also for the slices split off it), the rest at once.
    fake.faultRules.add({
      match: createdOverlaps(first.date_from, first.date_to),
      fault: { kind: "latency", ms: 150 },
    });
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_JOBS_PER_RUN: 1,
    });

    // The child claims slice 1 (claims take never-claimed slices in order) and walks it.
    const child = spawnProcessor([jobId], config);
    const log = workLog();
    let split: SliceRow[] = [];
    let workers: Promise<string> | null = null;
    let childHolder: string | null = null;
    try {
      childHolder = await waitFor("the child's 2 pages of slice 1", async () => {
        const [s1] = await slicesOf(db.sql, jobId);
        return s1.processed_calls >= 2 * PAGE ? s1.holder : null;
      }, { timeoutMs: 20_000 });
      // Two in-process workers take slices 2–8, finish them quickly and split slice 1 (and
      // what was split off it) while the child still walks it.
      workers = runWorkers(pools, { ...config, SYNC_MAX_JOBS_PER_RUN: 4 }, jobId, log);
      workers.catch(() => {});
      split = await waitFor("a split of slice 1 committed", async () => {
        const slices = await slicesOf(db.sql, jobId);
        return slices.length > SLICES && slices[0].date_from !== first.date_from ? slices : null;
      }, { timeoutMs: 15_000 });
    } finally {
      child.kill();
    }
    const exit = await child.done;
    const atKill = await slicesOf(db.sql, jobId);
    const status = await workers!;
    await allAnswered(fake);

    const check = await checkJob(db.sql, jobId, { seen, total: seen.length });
    const problems = await sliceProblems(db.sql, jobId, calls);
    const slices = await slicesOf(db.sql, jobId);
    const s1 = slices[0];
    await recordFigures({
      suite: "crash",
      test: "sliced walk: split racing the SIGKILL of the split slice's walker",
      cases: 1,
      faults: 1,
      calls_expected: seen.length,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length + problems.length,
      notes: {
        slices_at_split: split.length,
        slices_at_kill: atKill.length,
        slices_at_end: slices.length,
        slice_1_at_kill: `${atKill[0].date_from} .. ${atKill[0].date_to}, ${
          atKill[0].processed_calls
        } walked`,
        slice_1_at_end: `${s1.date_from} .. ${s1.date_to}, ${s1.processed_calls} walked`,
        invocations: log.invocations,
        unclaimed: log.unclaimed,
        fenced_out: eventCount(log, "job_fenced_out"),
      },
    }, started);

    assert.equal(exit.signal, "SIGKILL", "the child was killed, not finished");
    assert.equal(atKill[0].holder, childHolder, "slice 1 was still the dead child's at the kill");
    assert.equal(atKill[0].done, false);
    assert.equal(status, "completed");
    assertExactlyOnce(check, problems, 126);
    assert.ok(slices.length > SLICES, "slice 1 was split");
    assert.ok(
      micros(s1.date_from!) > micros(first.date_from!),
      "slice 1 ends narrowed to the part its walkers kept",
    );
    assert.ok(
      slices.slice(SLICES).every((s) => !s.in_job_total),
      "split slices are not in the job's total",
    );
    assert.ok(slices.every((s) => s.done && s.holder === null));
    assert.equal(await storedOf(db.sql, calls.filter((c) => !seen.includes(c))), 0);
  } finally {
    await endPools(pools);
    await restoreCron();
  }
});

// ---- 5. a dead walker's slice handed on to a finisher -----------------------------------------

/**
 * The test as a worker whose invocation died an hour ago: it claimed every slice at `at` and
 * landed the first page of each (fetched from the stand-in and mapped as the runner does), so
 * every slice has a cursor and a lease that ran out long since. Returns the slices' cursors.
 */
async function deadWalkerAt(
  sql: Sql,
  jobId: string,
  fake: { baseUrl: string; apiKey: string | null },
  at: string,
): Promise<(string | null)[]> {
  const holder = crypto.randomUUID();
  const claimed = await sql<{ slice_no: number; date_from: string | null; date_to: string }[]>`
    select slice_no, date_from, date_to
      from public.claim_sync_work(${holder}::uuid, ${SLICES}, 60, ${jobId}::uuid, ${at}::timestamptz)
     order by slice_no`;
  assert.equal(claimed.length, SLICES);
  const client = createUltravoxClient({ baseUrl: fake.baseUrl, apiKey: fake.apiKey! });
  const cursors: (string | null)[] = [];
  for (const s of claimed) {
    const page = await client.listCalls({
      fromDate: s.date_from,
      toDate: s.date_to,
      pageSize: PAGE,
      cursor: null,
    });
    const { callsJson, invalid } = mapPage(page.results);
    const [row] = await sql`
      select status from public.record_sync_slice_page(
        ${jobId}::uuid, ${s.slice_no}::integer, ${holder}::uuid, null, ${page.nextCursor},
        ${callsJson}::text::jsonb, ${JSON.stringify(invalid)}::text::jsonb, ${page.total}::integer,
        60, ${2 * PAGE}::integer, 10, p_now => ${at}::timestamptz)`;
    assert.ok(row, `the dead walker's page 1 of slice ${s.slice_no} landed`);
    cursors.push(page.nextCursor);
  }
  return cursors;
}

Deno.test("sliced walk: a finisher handed a dead walker's slice resumes it at its cursor, and the job completes", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = account(750_001, [{ count: 200, days: 30 }]);
  const seen = within(calls, JOB_FROM, JOB_TO);
  await using fake = await startFakeUltravox({ calls });
  const [sql] = poolsOf(1, 3);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createSlicedJob(db.sql, agency.id);
    const hourAgo = new Date(Date.now() - 3_600_000).toISOString();
    const cursors = await deadWalkerAt(db.sql, jobId, fake, hourAgo);
    assert.ok(cursors.every((c) => c !== null), "every slice has more than one page");
    // One worker, one piece of work per invocation: whatever else it walks is handed on to it
    // by the page step that finishes its slice. Nobody else works on the job, so nothing may
    // fence it out, and no attempt may be spent without a fault; SYNC_MAX_ATTEMPTS 3 makes an
    // attempt spent that way show as the failure it leads to.
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_JOBS_PER_RUN: 1,
      SYNC_MAX_ATTEMPTS: 3,
    });
    const log = workLog();
    const status = await runWorkers([sql], config, jobId, log);
    await allAnswered(fake);

    const check = await checkJob(db.sql, jobId, { seen, total: seen.length });
    const problems = await sliceProblems(db.sql, jobId, calls);
    // After the dead walker's 8 first pages, every slice has a cursor: a request without one
    // is a walker starting a slice over from its first page.
    const restarts = fake.requests.slice(SLICES).filter((r) => r.query.cursor === undefined);
    await recordFigures({
      suite: "crash",
      test: "sliced walk: a dead walker's slice handed on to a finisher",
      cases: 1,
      faults: 1,
      calls_expected: seen.length,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length + problems.length,
      notes: {
        status,
        error_message: check.job.error_message,
        invocations: log.invocations,
        fenced_out: eventCount(log, "job_fenced_out"),
        handed_on: eventCount(log, "slice_next"),
        first_page_requests_after_the_dead_walker: restarts.length,
      },
    }, started);

    assert.deepEqual(
      {
        status,
        error_message: check.job.error_message,
        fenced_out: eventCount(log, "job_fenced_out"),
      },
      { status: "completed", error_message: null, fenced_out: 0 },
    );
    assert.equal(restarts.length, 0, "no slice with a cursor was walked again from its first page");
    assertExactlyOnce(check, problems, 160);
  } finally {
    await sql.end({ timeout: 5 });
    await restoreCron();
  }
});
