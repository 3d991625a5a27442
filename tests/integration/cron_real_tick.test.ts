// The live schedule end to end (docs/ARCHITECTURE.md §7-§8): pg_cron itself fires the dispatcher at
// the next minute boundary, pg_net (the local worker) posts to process-historical-sync,
// and the job is imported with no other help. Slow by nature (up to a minute of waiting),
// so it is one test, in a file named to run after the other cron tests.
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import { cronJob, DISPATCH_JOB, serveProcessor, waitFor } from "../support/cron.ts";

const CALLS = 250;

Deno.test("a real pg_cron tick imports a pending job end to end", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 709, count: CALLS, end: "2026-11-20T00:00:00Z", days: 30 }),
  });
  await using db = await TestDb.open();
  // Tests that need a quiet database pause the schedule while they run (docs/ARCHITECTURE.md §8): if
  // one running beside this one has, wait for it to be put back.
  const schedule = await waitFor("the process-historical-sync schedule is active", async () => {
    const job = await cronJob(db.sql, DISPATCH_JOB);
    return job.active ? job : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500 });
  const agency = await db.createAgency({ ultravoxKey: DEFAULT_API_KEY });
  // The id is fixed before the job exists, so the served processor (scoped to it) is up and
  // the Vault secrets point at it before any tick can see the job.
  const jobId = crypto.randomUUID();
  let responses: { id: string; status_code: number; content: string }[] = [];
  try {
    await using rig = await serveProcessor(db.sql, { ultravoxBase: fake.baseUrl, jobId });
    // Inserted directly (no start kick: only a cron tick can get it processed), 3 s before
    // the minute boundary: an unscoped processor in another session (a benchmark's) would
    // claim any pending job it sees, so the job waits for its tick as briefly as possible.
    const toBoundary = 60_000 - (Date.now() % 60_000);
    if (toBoundary > 3_000) await new Promise((r) => setTimeout(r, toBoundary - 3_000));
    await db.sql`
      insert into public.historical_sync_jobs (id, agency_id, date_to, max_calls)
      values (${jobId}::uuid, ${agency.id}::uuid, now(), null)`;

    // The tick is due in 3 s; 80 s also covers a tick that is skipped or misses the job.
    const job = await waitFor("a cron tick processes the job", async () => {
      const row = await db.loadJob(jobId);
      return row?.status === "pending" || row?.status === "in_progress" ? undefined : row;
    }, { timeoutMs: 80_000, intervalMs: 250 }).catch(async (e) => {
      const { active } = await cronJob(db.sql, DISPATCH_JOB);
      throw new Error(`${e.message} (schedule ${active ? "active" : "paused by someone"} now)`);
    });
    assert.deepEqual(
      {
        status: job?.status,
        total: job?.total_calls,
        processed: job?.processed_calls,
        imported: job?.imported_calls,
        skipped: job?.skipped_calls,
        failed: job?.failed_calls,
        error: job?.error_message,
      },
      {
        status: "completed",
        total: CALLS,
        processed: CALLS,
        imported: CALLS,
        skipped: 0,
        failed: 0,
        error: null,
      },
    );
    const [{ n }] = await db.sql`
      select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}::uuid`;
    assert.equal(n, CALLS);

    // The function closes the log row right after the processor returns.
    const logs = await waitFor("the tick's log row is completed", async () => {
      const rows = await db.sql`
        select id, status, result, error_message, started_at from public.cron_job_logs
         where job_name = ${DISPATCH_JOB}
           and result -> 'jobs' @> jsonb_build_array(jsonb_build_object('id', ${jobId}::text))`;
      return rows.length > 0 ? rows : undefined;
    }, { timeoutMs: 10_000 });
    assert.equal(logs.length, 1);
    const [log] = logs;
    assert.equal(log.status, "completed");
    assert.equal(log.error_message, null);
    const jobs = [{
      id: jobId,
      status: "completed",
      pages: 3,
      imported: CALLS,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    }];
    const run = { jobs, duration_ms: log.result.duration_ms };
    // One job is less than one invocation takes: one request, one run reported.
    assert.deepEqual(log.result, {
      dispatched: true,
      request_ids: log.result.request_ids,
      runs: [run],
      jobs,
      duration_ms: run.duration_ms,
    });
    assert.equal(log.result.request_ids.length, 1);
    // The dispatcher asked with wait: false (its body: cron_dispatch.test.ts), the function
    // answered 202 at once and closed the log row with the run's summary when the run ended.
    assert.ok(
      rig.replies.some((r) => r.status === 202 && isDeepStrictEqual(r.body, { accepted: true })),
    );
    assert.ok(rig.runs.some((r) => isDeepStrictEqual(r, run)));

    // pg_cron ran it: a succeeded run of the dispatch job started with the log row (pg_cron
    // records start_time around the connection it opens, a few ms either side of the
    // dispatcher's now()).
    const [{ runs }] = await db.sql`
      select count(*)::int as runs from cron.job_run_details
       where jobid = ${schedule.jobid} and status = 'succeeded'
         and command = 'select public.dispatch_historical_sync()'
         and start_time between ${log.started_at}::timestamptz - interval '5 seconds'
                            and ${log.started_at}::timestamptz + interval '5 seconds'`;
    const recent = runs === 1 ? [] : await db.sql`
      select runid, status, start_time from cron.job_run_details
       where jobid = ${schedule.jobid} order by runid desc limit 3`;
    assert.equal(runs, 1, `log started ${log.started_at}; latest runs: ${JSON.stringify(recent)}`);

    // pg_net's answer for that request, recorded between the tick and the log's completion:
    // the short 202, never the run's summary (the request is not held open for the run).
    responses = await db.sql<{ id: string; status_code: number; content: string }[]>`
      select id::text, status_code, content from net._http_response
       where created between ${log.started_at}::timestamptz
                         and (select completed_at from public.cron_job_logs where id = ${log.id})`;
    assert.ok(responses.length >= 1, "pg_net recorded the dispatcher's request");
    assert.deepEqual(
      responses.map((r) => [r.status_code, JSON.parse(r.content)]),
      responses.map(() => [202, { accepted: true }]),
    );
    assert.equal(responses.some((r) => r.content.includes(jobId)), false);
  } finally {
    const ids = responses.map((r) => r.id);
    await db.sql`delete from net._http_response where id = any (${ids}::bigint[])`;
    await db.sql`
      delete from public.cron_job_logs
       where job_name = ${DISPATCH_JOB}
         and result -> 'jobs' @> jsonb_build_array(jsonb_build_object('id', ${jobId}::text))`;
  }
});
