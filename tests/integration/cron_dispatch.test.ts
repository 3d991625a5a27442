// The every-minute dispatcher (docs/ARCHITECTURE.md §7): the command stored in cron.job, run as it is,
// reaches process-historical-sync through pg_net (here the local worker) and the function
// completes the log row with its summary; idle ticks, missing Vault secrets and rows left
// running are logged, never raised.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import {
  cronJob,
  DISPATCH_JOB,
  inRollback,
  pauseCronJob,
  putSecret,
  serveProcessor,
  type Tx,
  waitFor,
} from "../support/cron.ts";

interface LogRow {
  id: string;
  job_name: string;
  status: string;
  result: Record<string, unknown> | null;
  error_message: string | null;
  /** started_at and completed_at equal the transaction's now(), compared in SQL. */
  started_now: boolean;
  completed_now: boolean | null;
}

async function loadLog(sql: Tx | TestDb["sql"], id: string): Promise<LogRow | undefined> {
  const [row] = await sql<LogRow[]>`
    select id, job_name, status, result, error_message,
           started_at = now() as started_now, completed_at = now() as completed_now
      from public.cron_job_logs where id = ${id}::uuid`;
  return row;
}

/** What this transaction sees of the request queue and the log table. */
async function counts(tx: Tx) {
  const [row] = await tx<{ queued: number; max_id: string | null; logs: number }[]>`
    select (select count(*)::int from net.http_request_queue) as queued,
           (select max(id)::text from net.http_request_queue) as max_id,
           (select count(*)::int from public.cron_job_logs) as logs`;
  return row;
}

Deno.test("the stored cron command dispatches to process-historical-sync, which imports the job and completes the log with its summary", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 701, count: 150, end: "2026-11-20T00:00:00Z", days: 30 }),
  });
  await using db = await TestDb.open();
  // A real tick racing this test would dispatch too (its own row, perhaps our job).
  const resume = await pauseCronJob(db.sql, DISPATCH_JOB);
  let logId: string | null = null;
  let requestId: number | null = null;
  try {
    const agency = await db.createAgency({ ultravoxKey: DEFAULT_API_KEY });
    const job = await db.insertJob(agency.id, { max_calls: null });
    await using rig = await serveProcessor(db.sql, {
      ultravoxBase: fake.baseUrl,
      jobId: job.id,
      worker: false, // started once the queued request has been looked at
    });

    const { command } = await cronJob(db.sql, DISPATCH_JOB);
    assert.equal(command, "select public.dispatch_historical_sync()");
    const [returned] = await db.sql.unsafe(command);
    logId = Object.values(returned)[0] as string;

    const dispatched = await loadLog(db.sql, logId);
    assert.equal(dispatched?.job_name, DISPATCH_JOB);
    assert.equal(dispatched?.status, "running");
    requestId = (dispatched?.result?.request_ids as number[])[0];
    assert.equal(typeof requestId, "number");
    assert.deepEqual(dispatched?.result, { dispatched: true, request_ids: [requestId] });
    const [queued] = await db.sql`
      select method, url, headers, convert_from(body, 'UTF8')::jsonb as body, timeout_milliseconds
        from net.http_request_queue where id = ${requestId}`;
    assert.deepEqual({ ...queued }, {
      method: "POST",
      url: `${rig.server.url}/functions/v1/process-historical-sync`,
      headers: { "Content-Type": "application/json", apikey: rig.config.secretKeys.default },
      body: { cron_log_id: logId, wait: false },
      timeout_milliseconds: 10000,
    });

    rig.startWorker();
    const log = await waitFor(
      "the function completes the log row",
      async () => {
        const row = await loadLog(db.sql, logId!);
        return row?.status === "running" ? undefined : row;
      },
      { timeoutMs: 30_000 },
    );
    assert.equal(log.status, "completed");
    assert.equal(log.error_message, null);
    const result = log.result as { jobs: unknown[]; duration_ms: number };
    assert.equal(typeof result.duration_ms, "number");
    const jobs = [{
      id: job.id,
      status: "completed",
      pages: 2,
      imported: 150,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    }];
    const run = { jobs, duration_ms: result.duration_ms };
    // One request (one job is less than one invocation takes); its run reported, so the row
    // completed with that run, its jobs and its duration.
    assert.deepEqual(result, {
      dispatched: true,
      request_ids: [requestId],
      runs: [run],
      jobs,
      duration_ms: result.duration_ms,
    });
    // The request answered at once; the run it started reported its summary.
    assert.deepEqual(rig.replies, [{ status: 202, body: { accepted: true } }]);
    assert.deepEqual(rig.runs, [run]);

    const [response] = await db.sql`
      select status_code, content::jsonb as content, timed_out, error_msg
        from net._http_response where id = ${requestId}`;
    assert.deepEqual({ ...response }, {
      status_code: 202,
      content: { accepted: true },
      timed_out: false,
      error_msg: null,
    });
    const [{ still_queued }] = await db.sql`
      select count(*)::int as still_queued from net.http_request_queue where id = ${requestId}`;
    assert.equal(still_queued, 0);
    assert.deepEqual(rig.workerErrors, []);

    const done = await db.loadJob(job.id);
    assert.deepEqual(
      [done?.status, done?.total_calls, done?.processed_calls, done?.imported_calls],
      ["completed", 150, 150, 150],
    );
    assert.deepEqual([done?.skipped_calls, done?.failed_calls, done?.error_message], [0, 0, null]);
    const [{ n }] = await db.sql`
      select count(*)::int as n from public.calls where historical_sync_job_id = ${job.id}::uuid`;
    assert.equal(n, 150);
  } finally {
    if (requestId !== null) {
      await db.sql`delete from net.http_request_queue where id = ${requestId}`;
      await db.sql`delete from net._http_response where id = ${requestId}`;
    }
    if (logId !== null) await db.sql`delete from public.cron_job_logs where id = ${logId}::uuid`;
    await resume();
  }
});

Deno.test("an idle tick writes one completed no_work row and enqueues no request", async () => {
  await using db = await TestDb.open();
  // Other people's tests may have active jobs at this moment. Inside a repeatable-read
  // transaction that is rolled back, cancel every active job this snapshot sees: the
  // dispatcher (same snapshot) then finds no work, the counts below see only what this
  // transaction did, and nothing leaks (the jobs' rows are locked only for these few ms).
  const seen = await inRollback(db.sql, async (tx) => {
    await tx`
      update public.historical_sync_jobs set status = 'cancelled', completed_at = now()
       where status in ('pending', 'in_progress')`;
    const before = await counts(tx);
    const [{ id }] = await tx<{ id: string }[]>`select public.dispatch_historical_sync() as id`;
    return { before, after: await counts(tx), log: await loadLog(tx, id) };
  }, { isolation: "repeatable read" });

  assert.deepEqual(seen.after, { ...seen.before, logs: seen.before.logs + 1 });
  assert.equal(seen.log?.job_name, DISPATCH_JOB);
  assert.equal(seen.log?.status, "completed");
  assert.deepEqual(seen.log?.result, { dispatched: false, reason: "no_work" });
  assert.equal(seen.log?.error_message, null);
  assert.equal(seen.log?.started_now, true);
  assert.equal(seen.log?.completed_now, true);
  const [{ leaked }] = await db.sql`
    select count(*)::int as leaked from public.cron_job_logs where id = ${seen.log!.id}::uuid`;
  assert.equal(leaked, 0);
});

Deno.test("an idle tick reads no Vault secret: with both missing it is still completed no_work", async () => {
  await using db = await TestDb.open();
  const log = await inRollback(db.sql, async (tx) => {
    await tx`
      update public.historical_sync_jobs set status = 'cancelled', completed_at = now()
       where status in ('pending', 'in_progress')`;
    await tx`delete from vault.secrets where name in ('project_url', 'functions_secret_key')`;
    const [{ id }] = await tx<{ id: string }[]>`select public.dispatch_historical_sync() as id`;
    return await loadLog(tx, id);
  }, { isolation: "repeatable read" });
  assert.equal(log?.status, "completed");
  assert.deepEqual(log?.result, { dispatched: false, reason: "no_work" });
  assert.equal(log?.error_message, null);
});

for (const missing of ["project_url", "functions_secret_key"]) {
  Deno.test(`a missing Vault secret ${missing} fails the dispatch row, naming it, and raises nothing`, async () => {
    await using db = await TestDb.open();
    const seen = await inRollback(db.sql, async (tx) => {
      // Work to dispatch, the other secret present, this one gone: all rolled back.
      const [{ id: agencyId }] = await tx`
        insert into public.agencies (name) values ('cron: missing secret') returning id`;
      await tx`
        insert into public.historical_sync_jobs (agency_id, date_to) values (${agencyId}, now())`;
      for (const name of ["project_url", "functions_secret_key"]) {
        await putSecret(tx, name, name === "project_url" ? "http://127.0.0.1:9" : "sb_secret_x");
      }
      await tx`delete from vault.secrets where name = ${missing}`;
      const before = await counts(tx);
      const [{ id }] = await tx<{ id: string }[]>`select public.dispatch_historical_sync() as id`;
      return { before, after: await counts(tx), log: await loadLog(tx, id) };
    }, { isolation: "repeatable read" });

    assert.deepEqual(seen.after, { ...seen.before, logs: seen.before.logs + 1 });
    assert.equal(seen.log?.status, "failed");
    assert.match(seen.log?.error_message ?? "", new RegExp(`^Vault secret ${missing} is missing`));
    assert.equal(seen.log?.result, null);
    assert.equal(seen.log?.completed_now, true);
  });
}

Deno.test("rows running for over 10 minutes are closed as timed out, and one at 9m59s is not", async () => {
  await using db = await TestDb.open();
  const rows = await inRollback(db.sql, async (tx) => {
    const ids: Record<string, string> = {};
    for (
      const [label, age] of [
        ["10m01s", "10 minutes 1 second"],
        ["10m00s", "10 minutes"],
        ["9m59s", "9 minutes 59 seconds"],
      ]
    ) {
      const [{ id }] = await tx`
        insert into public.cron_job_logs (job_name, started_at, status, result)
        values (${DISPATCH_JOB}, now() - ${age}::interval, 'running',
                '{"dispatched": true, "request_id": 0}')
        returning id`;
      ids[label] = id;
    }
    await tx`select public.dispatch_historical_sync(now())`;
    const out: Record<string, LogRow | undefined> = {};
    for (const [label, id] of Object.entries(ids)) out[label] = await loadLog(tx, id);
    return out;
  });

  assert.equal(rows["10m01s"]?.status, "failed");
  assert.equal(
    rows["10m01s"]?.error_message,
    "timed out: no completion reported within 10 minutes",
  );
  assert.equal(rows["10m01s"]?.completed_now, true);
  assert.deepEqual(rows["10m01s"]?.result, { dispatched: true, request_id: 0 });
  for (const label of ["10m00s", "9m59s"]) {
    assert.equal(rows[label]?.status, "running", label);
    assert.equal(rows[label]?.completed_now, null, label);
    assert.equal(rows[label]?.error_message, null, label);
  }
});

Deno.test("a timed-out row says what pg_net got back: the function's status, or the request's error", async () => {
  await using db = await TestDb.open();
  const rows = await inRollback(db.sql, async (tx) => {
    // Request ids far above any real one, answered as pg_net would have recorded them.
    await tx`
      insert into net._http_response (id, status_code, content_type, content, timed_out, error_msg)
      values (9000000001, 401, 'application/json', '{"error":{"code":"unauthorized"}}', false, null),
             (9000000002, null, null, null, false, 'Couldn''t connect to server')`;
    const ids: string[] = [];
    for (const requestId of [9000000001, 9000000002]) {
      const [{ id }] = await tx`
        insert into public.cron_job_logs (job_name, started_at, status, result)
        values (${DISPATCH_JOB}, now() - interval '11 minutes', 'running',
                jsonb_build_object('dispatched', true, 'request_id', ${requestId}::bigint))
        returning id`;
      ids.push(id);
    }
    await tx`select public.dispatch_historical_sync(now())`;
    return await Promise.all(ids.map((id) => loadLog(tx, id)));
  });
  assert.deepEqual(rows.map((r) => [r?.status, r?.error_message]), [
    [
      "failed",
      "timed out: no completion reported within 10 minutes " +
      '(the function answered HTTP 401: {"error":{"code":"unauthorized"}})',
    ],
    [
      "failed",
      "timed out: no completion reported within 10 minutes " +
      "(the request failed: Couldn't connect to server)",
    ],
  ]);
});
