// The daily housekeeping (docs/ARCHITECTURE.md §7): cleanup_cron_job_logs deletes cron_job_logs
// older than 30 days and cron.job_run_details older than 7 days, and logs itself.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { CLEANUP_JOB, cronJob, DISPATCH_JOB, inRollback } from "../support/cron.ts";

Deno.test("cleanup deletes exactly the logs over 30 days old and the run details over 7 days old, and logs itself", async () => {
  await using db = await TestDb.open();
  const { jobid } = await cronJob(db.sql, DISPATCH_JOB);
  // The function deletes by age across the whole shared table, so it runs inside a
  // repeatable-read transaction that is rolled back: the expected counts are taken from
  // the same snapshot the deletes see, and nothing (ours or anyone's) is really deleted.
  const seen = await inRollback(db.sql, async (tx) => {
    const logs: Record<string, string> = {};
    for (
      const [label, age] of [
        ["30d+1s", "30 days 1 second"],
        ["30d", "30 days"],
        ["29d23h", "29 days 23 hours"],
      ]
    ) {
      const [{ id }] = await tx`
        insert into public.cron_job_logs (job_name, started_at, completed_at, status, result)
        values ('test:cron-cleanup', now() - ${age}::interval, now() - ${age}::interval,
                'completed', '{"dispatched": false, "reason": "no_work"}')
        returning id`;
      logs[label] = id;
    }
    const runs: Record<string, string> = {};
    for (
      const [label, age] of [
        ["7d+1s", "7 days 1 second"],
        ["7d", "7 days"],
        ["6d23h", "6 days 23 hours"],
      ]
    ) {
      const [{ runid }] = await tx`
        insert into cron.job_run_details
          (jobid, job_pid, database, username, command, status, return_message,
           start_time, end_time)
        values (${jobid}, 0, 'postgres', 'postgres', 'select public.dispatch_historical_sync()',
                'succeeded', '1 row',
                now() - ${age}::interval - interval '10 ms', now() - ${age}::interval)
        returning runid::text`;
      runs[label] = runid;
    }
    const [expected] = await tx<{ logs: number; details: number }[]>`
      select (select count(*)::int from public.cron_job_logs
               where started_at < now() - interval '30 days') as logs,
             (select count(*)::int from cron.job_run_details
               where end_time < now() - interval '7 days') as details`;

    const [{ id }] = await tx<{ id: string }[]>`select public.cleanup_cron_job_logs(now()) as id`;

    const [own] = await tx`
      select job_name, status, result, error_message,
             started_at = now() as started_now, completed_at = now() as completed_now
        from public.cron_job_logs where id = ${id}::uuid`;
    const keptLogs = await tx<{ id: string }[]>`
      select id from public.cron_job_logs where id = any (${Object.values(logs)}::uuid[])`;
    const keptRuns = await tx<{ runid: string }[]>`
      select runid::text from cron.job_run_details
       where runid = any (${Object.values(runs)}::bigint[])`;
    const [left] = await tx<{ logs: number; details: number }[]>`
      select (select count(*)::int from public.cron_job_logs
               where started_at < now() - interval '30 days') as logs,
             (select count(*)::int from cron.job_run_details
               where end_time < now() - interval '7 days') as details`;
    return {
      logs,
      runs,
      id,
      expected,
      own,
      left,
      keptLogs: keptLogs.map((r) => r.id).sort(),
      keptRuns: keptRuns.map((r) => r.runid).sort(),
    };
  }, { isolation: "repeatable read" });

  assert.deepEqual(seen.keptLogs, [seen.logs["30d"], seen.logs["29d23h"]].sort());
  assert.deepEqual(seen.keptRuns, [seen.runs["7d"], seen.runs["6d23h"]].sort());
  assert.deepEqual({ ...seen.own }, {
    job_name: CLEANUP_JOB,
    status: "completed",
    result: {
      deleted_cron_job_logs: seen.expected.logs,
      deleted_job_run_details: seen.expected.details,
    },
    error_message: null,
    started_now: true,
    completed_now: true,
  });
  assert.deepEqual({ ...seen.left }, { logs: 0, details: 0 });

  // Rolled back: neither the inserted rows nor the cleanup's own row exist.
  const [after] = await db.sql`
    select (select count(*)::int from public.cron_job_logs
             where id = any (${[...Object.values(seen.logs), seen.id]}::uuid[])) as logs,
           (select count(*)::int from cron.job_run_details
             where runid = any (${Object.values(seen.runs)}::bigint[])) as runs`;
  assert.deepEqual({ ...after }, { logs: 0, runs: 0 });
});

Deno.test("the cleanup schedule runs cleanup_cron_job_logs once a day", async () => {
  await using db = await TestDb.open();
  const job = await cronJob(db.sql, CLEANUP_JOB);
  assert.equal(job.command, "select public.cleanup_cron_job_logs()");
  // Minute and hour fixed, every day of every month, any weekday: once a day.
  assert.match(job.schedule, /^\d{1,2} \d{1,2} \* \* \*$/);
});

Deno.test("cleanup also deletes run details pg_cron closed without an end_time once they started over 7 days ago", async () => {
  // pg_cron leaves end_time null on the runs it fails itself: 'server restarted' (the
  // launcher's MarkPendingRunsAsFailed), 'connection failed', 'job startup timeout'. Aged
  // by end_time alone, those rows are never deleted and grow without bound.
  await using db = await TestDb.open();
  const { jobid } = await cronJob(db.sql, DISPATCH_JOB);
  const kept = await inRollback(db.sql, async (tx) => {
    const runs: Record<string, string> = {};
    for (const [label, age] of [["7d+1s", "7 days 1 second"], ["6d23h", "6 days 23 hours"]]) {
      const [{ runid }] = await tx`
        insert into cron.job_run_details
          (jobid, job_pid, database, username, command, status, return_message, start_time)
        values (${jobid}, 0, 'postgres', 'postgres', 'select public.dispatch_historical_sync()',
                'failed', 'server restarted', now() - ${age}::interval)
        returning runid::text`;
      runs[label] = runid;
    }
    await tx`select public.cleanup_cron_job_logs(now())`;
    const rows = await tx<{ runid: string }[]>`
      select runid::text from cron.job_run_details
       where runid = any (${Object.values(runs)}::bigint[])`;
    return { runs, kept: rows.map((r) => r.runid) };
  });
  assert.deepEqual(kept.kept, [kept.runs["6d23h"]]);
});
