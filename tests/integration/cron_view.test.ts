// The view of active schedules and who may read the cron audit (docs/ARCHITECTURE.md §4, §7):
// virsyn_cron_jobs lists the active cron.job definitions, a paused one drops out, and
// neither it nor cron_job_logs is readable by anon or authenticated.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import {
  CLEANUP_JOB,
  cronJob,
  DISPATCH_JOB,
  inRollback,
  sqlErrorCode,
  type Tx,
} from "../support/cron.ts";

const OURS = [CLEANUP_JOB, DISPATCH_JOB];

async function listed(tx: Tx) {
  return (await tx`
    select jobid::int as jobid, jobname, schedule, command, active
      from public.virsyn_cron_jobs where jobname = any (${OURS}::text[]) order by jobname`)
    .map((r) => ({ ...r }));
}

/**
 * Other people's tests pause the dispatch schedule while they run, so each test first
 * makes both jobs active inside its own rolled-back transaction: the view is read over a
 * known cron.job, and the live schedule is never touched.
 */
async function bothActive(tx: Tx) {
  await tx`
    select cron.alter_job(jobid, active := true)
      from cron.job where jobname = any (${OURS}::text[])`;
}

Deno.test("virsyn_cron_jobs lists both schedules with their commands", async () => {
  await using db = await TestDb.open();
  const dispatch = await cronJob(db.sql, DISPATCH_JOB);
  const cleanup = await cronJob(db.sql, CLEANUP_JOB);
  const seen = await inRollback(db.sql, async (tx) => {
    await bothActive(tx);
    const [columns] = await tx<{ names: string[] }[]>`
      select array_agg(attname::text order by attnum) as names from pg_attribute
       where attrelid = 'public.virsyn_cron_jobs'::regclass and attnum > 0`;
    return { columns: columns.names, rows: await listed(tx) };
  });
  assert.deepEqual(seen.columns, ["jobid", "jobname", "schedule", "command", "active"]);
  assert.deepEqual(seen.rows, [
    {
      jobid: cleanup.jobid,
      jobname: CLEANUP_JOB,
      schedule: cleanup.schedule,
      command: "select public.cleanup_cron_job_logs()",
      active: true,
    },
    {
      jobid: dispatch.jobid,
      jobname: DISPATCH_JOB,
      schedule: "* * * * *",
      command: "select public.dispatch_historical_sync()",
      active: true,
    },
  ]);
});

Deno.test("a paused job drops out of virsyn_cron_jobs", async () => {
  await using db = await TestDb.open();
  const rows = await inRollback(db.sql, async (tx) => {
    await bothActive(tx);
    await tx`
      select cron.alter_job(jobid, active := false) from cron.job where jobname = ${DISPATCH_JOB}`;
    return await listed(tx);
  });
  assert.deepEqual(rows.map((r) => r.jobname), [CLEANUP_JOB]);
});

for (const role of ["anon", "authenticated"]) {
  for (const relation of ["public.cron_job_logs", "public.virsyn_cron_jobs"]) {
    Deno.test(`${role} cannot read ${relation}: 42501`, async () => {
      await using db = await TestDb.open();
      const code = await inRollback(db.sql, async (tx) => {
        await tx.unsafe(`set local role ${role}`);
        return await sqlErrorCode(tx.unsafe(`select count(*) from ${relation}`));
      });
      assert.equal(code, "42501");
    });
  }
}

Deno.test("service_role reads cron_job_logs and virsyn_cron_jobs", async () => {
  await using db = await TestDb.open();
  const seen = await inRollback(db.sql, async (tx) => {
    await bothActive(tx);
    const [log] = await tx`
      insert into public.cron_job_logs (job_name, status) values ('test:cron-view', 'running')
      returning id`;
    await tx`set local role service_role`;
    const [{ n }] = await tx`
      select count(*)::int as n from public.cron_job_logs where id = ${log.id}::uuid`;
    return { n, jobs: (await listed(tx)).map((r) => r.jobname) };
  });
  assert.deepEqual(seen, { n: 1, jobs: OURS });
});
