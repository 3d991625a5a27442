// Case 6 — stale work, with time pinned through p_now instead of slept. A worker that died
// leaves a lease that nobody can take one second before it runs out (or at its exact end),
// and that another worker takes one second after; the dead worker's holder id then moves
// nothing. The dispatcher closes cron_job_logs rows left `running` for over 10 minutes and
// leaves younger ones alone.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { freshAccount, inRolledBackTransaction, pauseCron, type Sql } from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const LEASE = 60;

async function claimAt(sql: Sql, holder: string, jobId: string | null, at: string) {
  return await sql<{ id: string }[]>`
    select id::text from public.claim_sync_jobs(
      ${holder}::uuid, 1000, ${LEASE}, ${jobId}::uuid, ${at}::timestamptz)`;
}

async function plus(sql: Sql, at: string, interval: string): Promise<string> {
  const [{ t }] = await sql<{ t: string }[]>`
    select (${at}::timestamptz + ${interval}::interval) as t`;
  return t;
}

/** One page of one call, as the processor would send it. */
function pageOf(call: ReturnType<typeof freshAccount>[number]) {
  return [{
    ord: 0,
    ultravox_call_id: call.callId,
    ultravox_agent_id: null,
    created_at: call.created,
    joined_at: null,
    ended_at: null,
    end_reason: null,
    duration_seconds: null,
    billed_duration_seconds: null,
    short_summary: null,
    summary: null,
    recording_enabled: false,
    metadata: {},
    raw: call,
  }];
}

Deno.test("a dead worker's job is claimed by another after its lease, not a second before nor at its end", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const sql = db.sql;
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
  try {
    const agency = await db.createAgency();
    const [{ id: jobId }] = await sql<{ id: string }[]>`
      select id from public.create_sync_job(${agency.id}::uuid, null, now(), null)`;
    const [{ t0 }] = await sql<{ t0: string }[]>`select now() as t0`;
    const dead = crypto.randomUUID();
    const next = crypto.randomUUID();

    expect((await claimAt(sql, dead, jobId, t0)).length === 1, "the first worker claims");
    const [lease] = await sql<{ expires_at: string }[]>`
      select expires_at from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
    const expiry = await plus(sql, t0, `${LEASE} seconds`);
    expect(lease.expires_at === expiry, `lease runs to t0 + ${LEASE}s`);

    // The worker dies here. A second short of the lease, and at its very end: nobody.
    const oneShort = await plus(sql, t0, `${LEASE - 1} seconds`);
    expect((await claimAt(sql, next, jobId, oneShort)).length === 0, "claimable 1 s early");
    expect((await claimAt(sql, next, jobId, expiry)).length === 0, "claimable at expiry");
    // An unscoped claim (what cron's invocation does) skips it too; rolled back, so other
    // people's jobs it may lease meanwhile are left as they were.
    const unscoped = await inRolledBackTransaction(sql, (tx) => claimAt(tx, next, null, oneShort));
    expect(!unscoped.some((j) => j.id === jobId), "an unscoped claim took it 1 s early");

    // A second past the lease: the next worker takes it.
    const onePast = await plus(sql, t0, `${LEASE + 1} seconds`);
    expect((await claimAt(sql, next, jobId, onePast)).length === 1, "not claimable 1 s late");

    // The dead worker's holder id, should it wake, moves nothing.
    const [call] = freshAccount(1);
    const page = (holder: string, at: string) =>
      sql`select * from public.record_sync_page(
            ${jobId}::uuid, ${holder}::uuid, null, 'c1',
            ${sql.json(pageOf(call) as never)}, '[]'::jsonb, 1, ${LEASE}, ${at}::timestamptz)`;
    expect((await page(dead, onePast)).length === 0, "the dead holder recorded a page");
    expect(
      (await sql`select 1 from public.renew_sync_lease(${jobId}::uuid, ${dead}::uuid, ${LEASE})`)
        .length === 0,
      "the dead holder renewed",
    );
    expect(
      (await sql`select 1 from public.release_sync_job(${jobId}::uuid, ${dead}::uuid)`).length ===
        0,
      "the dead holder released",
    );
    expect(
      (await sql`select 1 from public.record_sync_error(${jobId}::uuid, ${dead}::uuid, null, 'x', 1)`)
        .length === 0,
      "the dead holder recorded an error",
    );
    expect(
      (await sql`select 1 from public.fail_sync_job(${jobId}::uuid, ${dead}::uuid, null, 'x')`)
        .length === 0,
      "the dead holder failed the job",
    );
    const [{ n: before }] = await sql<{ n: number }[]>`
      select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}::uuid`;
    expect(before === 0, "a call landed from the dead holder");
    // The new holder's page lands.
    const [landed] = await page(next, onePast);
    expect(landed?.page_imported === 1, "the new holder's page did not land");
    const [job] = await sql<{ status: string; imported_calls: number; cursor: string }[]>`
      select status, imported_calls, cursor from public.historical_sync_jobs
       where id = ${jobId}::uuid`;
    expect(
      job.status === "in_progress" && job.imported_calls === 1 && job.cursor === "c1",
      `job after the new holder's page: ${JSON.stringify(job)}`,
    );
    await recordFigures({
      suite: "stale",
      test: "lease boundary: 1 s early, at expiry, 1 s late; dead holder fenced",
      cases: 11,
      faults: 1,
      calls_expected: 1,
      calls_lost: landed?.page_imported === 1 ? 0 : 1,
      calls_duplicated: 0,
      counter_mismatches: problems.length,
    }, started);
    assert.deepEqual(problems, []);
  } finally {
    await restoreCron();
  }
});

Deno.test("the dispatcher closes cron_job_logs rows running for over 10 minutes, and only those", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const name = `reliability:stale-${crypto.randomUUID()}`;
  // In a transaction that rolls back: the dispatcher may also dispatch real work or close
  // other people's stale rows, and none of that must outlive the test.
  const rows = await inRolledBackTransaction(db.sql, async (tx) => {
    const [{ t }] = await tx<{ t: string }[]>`select now() as t`;
    const ages = ["9 minutes 59 seconds", "10 minutes", "10 minutes 1 second", "2 hours"];
    for (const age of ages) {
      await tx`
        insert into public.cron_job_logs (job_name, started_at, status)
        values (${name}, ${t}::timestamptz - ${age}::interval, 'running')`;
    }
    await tx`
      insert into public.cron_job_logs (job_name, started_at, status, completed_at, result)
      values (${name}, ${t}::timestamptz - interval '1 hour', 'completed',
              ${t}::timestamptz - interval '59 minutes', '{"ok": true}')`;
    await tx`select public.dispatch_historical_sync(${t}::timestamptz)`;
    return await tx<
      {
        age: string;
        status: string;
        error_message: string | null;
        closed_at_now: boolean;
        result: unknown;
      }[]
    >`
      select (${t}::timestamptz - started_at)::text as age, status, error_message,
             completed_at = ${t}::timestamptz as closed_at_now, result
        from public.cron_job_logs where job_name = ${name}
       order by started_at desc`;
  });
  const timedOut = "timed out: no completion reported within 10 minutes";
  const expected = [
    { age: "00:09:59", status: "running", error_message: null, closed_at_now: null },
    { age: "00:10:00", status: "running", error_message: null, closed_at_now: null },
    { age: "00:10:01", status: "failed", error_message: timedOut, closed_at_now: true },
    { age: "01:00:00", status: "completed", error_message: null, closed_at_now: false },
    { age: "02:00:00", status: "failed", error_message: timedOut, closed_at_now: true },
  ];
  const actual = rows.map(({ age, status, error_message, closed_at_now }) => ({
    age,
    status,
    error_message,
    closed_at_now,
  }));
  const mismatches = expected.filter((e, i) => JSON.stringify(e) !== JSON.stringify(actual[i]));
  await recordFigures({
    suite: "stale",
    test: "cron_job_logs: 9m59s and 10m00s stay running, 10m01s and 2h are timed out",
    cases: expected.length,
    faults: 4,
    calls_expected: 0,
    calls_lost: 0,
    calls_duplicated: 0,
    counter_mismatches: mismatches.length,
  }, started);
  assert.deepEqual(actual, expected);
  assert.deepEqual(rows[3].result, { ok: true }, "a closed row keeps its result");
});
