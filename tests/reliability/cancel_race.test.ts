// Case 3 — cancel races. cancel_sync_job arrives while a walk is running, at a different
// point each time (before the claim, while page k is being fetched or written, after the
// end). Once the cancel has returned, no call of that job lands: the rows counted right
// after it are the rows counted once the processor has stopped, and the counters agree with
// them. Two more tests order the cancel and an in-flight page step through a row lock, both
// ways round.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";
import type { RunSummary } from "../../supabase/functions/_shared/sync/processor.ts";
import {
  createJob,
  dbSql,
  delay,
  freshAccount,
  holdLock,
  loadJob,
  noSleep,
  pauseCron,
  quiet,
  type Sql,
  syncConfig,
  waitFor,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const CALLS = 40;
const PAGE = 5;
const ITERATIONS = 30;

async function callRows(sql: Sql, jobId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${jobId}::uuid`;
  return rows.map((r) => r.id);
}

interface CancelOutcome {
  /** cancel_sync_job returned the job (it was still active). */
  cancelled: boolean;
  startedBeforeCancel: boolean;
  rowsAtCancel: number;
  rowsLater: number;
  problems: string[];
}

/** Counts after the cancel, again once the processor has stopped, and checks the counters. */
async function afterCancel(
  sql: Sql,
  jobId: string,
  accountIds: Set<string>,
  cancelled: { started_at: string | null } | undefined,
  run: Promise<RunSummary>,
): Promise<CancelOutcome> {
  const atCancel = await callRows(sql, jobId);
  const jobAtCancel = await loadJob(sql, jobId);
  await run;
  await delay(30);
  const later = await callRows(sql, jobId);
  const job = await loadJob(sql, jobId);
  const problems: string[] = [];
  if (later.length !== atCancel.length) {
    problems.push(`${later.length - atCancel.length} call(s) landed after the cancel returned`);
  }
  if (job.imported_calls !== later.length) {
    problems.push(`imported_calls ${job.imported_calls} ≠ ${later.length} rows`);
  }
  if (job.imported_calls !== jobAtCancel.imported_calls) {
    problems.push("counters moved after the cancel returned");
  }
  if (job.processed_calls !== job.imported_calls + job.skipped_calls + job.failed_calls) {
    problems.push("processed ≠ imported + skipped + failed");
  }
  if (job.processed_calls % PAGE !== 0 && job.processed_calls !== CALLS) {
    problems.push(`a partial page was counted (${job.processed_calls})`);
  }
  if (later.some((id) => !accountIds.has(id))) problems.push("a row outside the account");
  const expected = cancelled ? "cancelled" : "completed";
  if (job.status !== expected) problems.push(`status ${job.status} (expected ${expected})`);
  if (!cancelled && later.length !== CALLS) problems.push("a completed walk missed calls");
  return {
    cancelled: cancelled !== undefined,
    startedBeforeCancel: cancelled ? cancelled.started_at !== null : true,
    rowsAtCancel: atCancel.length,
    rowsLater: later.length,
    problems,
  };
}

Deno.test("thirty cancels at varying points of a walk: once a cancel returns, no call of its job lands", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const procSql = dbSql(4);
  const outcomes: CancelOutcome[] = [];
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const calls = freshAccount(CALLS);
      await using fake = await startFakeUltravox({ calls, latencyMs: 6 + (i % 4) * 3 });
      const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
      const jobId = await createJob(db.sql, agency.id);
      const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE });
      const run = processHistoricalSync({ sql: procSql, config, sleep: noSleep, log: quiet }, {
        jobId,
      });
      // Aim at request k of the walk (k = 0: before anything), then a few ms either way.
      const k = i % 9;
      let finished = false;
      run.then(() => finished = true, () => finished = true);
      if (k > 0) await waitFor(`request ${k}`, () => fake.requests.length >= k || finished);
      await delay((i * 7) % 13);
      const [cancelled] = await db.sql<{ started_at: string | null }[]>`
        select started_at from public.cancel_sync_job(${jobId}::uuid)`;
      outcomes.push(
        await afterCancel(db.sql, jobId, new Set(calls.map((c) => c.callId)), cancelled, run),
      );
    }
    const problems = outcomes.flatMap((o, i) => o.problems.map((p) => `iteration ${i}: ${p}`));
    const midWalk = outcomes.filter((o) => o.cancelled && o.rowsAtCancel > 0).length;
    await recordFigures({
      suite: "cancel",
      test: "30 cancels at varying points of a walk",
      cases: ITERATIONS,
      faults: ITERATIONS,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: problems.length,
      notes: {
        cancelled_before_first_page: outcomes.filter((o) => o.cancelled && o.rowsAtCancel === 0)
          .length,
        cancelled_mid_walk: midWalk,
        cancel_after_completion: outcomes.filter((o) => !o.cancelled).length,
        calls_landed_after_cancel: outcomes.reduce((n, o) => n + o.rowsLater - o.rowsAtCancel, 0),
      },
    }, started);
    assert.deepEqual(problems, []);
    assert.ok(midWalk >= 10, `most cancels land mid-walk (${midWalk})`);
  } finally {
    await procSql.end();
    await restoreCron();
  }
});

/**
 * A page step and a cancel both queued behind a lock the test holds on the job row, in the
 * order `first` says; then the lock goes.
 */
async function lockOrderedCancel(test: string, first: "cancel" | "page") {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(CALLS);
  await using fake = await startFakeUltravox({ calls });
  const procSql = dbSql(3);
  const cancelSql = dbSql(1);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE });
    fake.faults.push({ kind: "pass", times: 2 }, { kind: "latency", ms: 300 });
    const run = processHistoricalSync({ sql: procSql, config, sleep: noSleep, log: quiet }, {
      jobId,
    });
    await waitFor(
      "page 2 committed",
      async () => (await loadJob(db.sql, jobId)).processed_calls === 2 * PAGE,
    );
    const lock = await holdLock(
      db.sql,
      (c) => c`select 1 from public.historical_sync_jobs where id = ${jobId}::uuid for update`,
    );
    let cancel: PromiseLike<{ started_at: string | null }[]> | null = null;
    const waiting = async (fn: string) =>
      await waitFor(`${fn} to wait on the job row`, async () => {
        const rows = await db.sql`
          select 1 from pg_stat_activity
           where wait_event_type = 'Lock' and query like ${`%${fn}%`}
             and pid <> pg_backend_pid() and cardinality(pg_blocking_pids(pid)) > 0`;
        return rows.length > 0;
      });
    try {
      if (first === "cancel") {
        cancel = cancelSql<{ started_at: string | null }[]>`
          select started_at from public.cancel_sync_job(${jobId}::uuid)`.execute();
        await waiting("cancel_sync_job");
        await waiting("record_sync_page");
      } else {
        await waiting("record_sync_page");
        cancel = cancelSql<{ started_at: string | null }[]>`
          select started_at from public.cancel_sync_job(${jobId}::uuid)`.execute();
        await waiting("cancel_sync_job");
      }
    } finally {
      await lock.release();
    }
    const [cancelled] = await cancel;
    const outcome = await afterCancel(
      db.sql,
      jobId,
      new Set(calls.map((c) => c.callId)),
      cancelled,
      run,
    );
    const summary = await run;
    const expectedRows = first === "cancel" ? 2 * PAGE : 3 * PAGE;
    if (outcome.rowsLater !== expectedRows) {
      outcome.problems.push(`${outcome.rowsLater} rows (expected ${expectedRows})`);
    }
    await recordFigures({
      suite: "cancel",
      test,
      cases: 1,
      faults: 1,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: outcome.problems.length,
      notes: { rows_at_cancel: outcome.rowsAtCancel, worker_status: summary.jobs[0]?.status },
    }, started);
    assert.deepEqual(outcome.problems, []);
    assert.equal(summary.jobs[0]?.status, "cancelled");
    assert.equal(summary.jobs[0]?.pages, first === "cancel" ? 2 : 3);
  } finally {
    await procSql.end();
    await cancelSql.end();
    await restoreCron();
  }
}

Deno.test("a cancel that takes the job row before an in-flight page step keeps that page out", async () => {
  await lockOrderedCancel("cancel queued before an in-flight page step", "cancel");
});

Deno.test("a page step that takes the job row before a cancel lands whole, and nothing after the cancel", async () => {
  await lockOrderedCancel("page step queued before a cancel", "page");
});
