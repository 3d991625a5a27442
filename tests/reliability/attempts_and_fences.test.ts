// Attempts and fences (docs/ARCHITECTURE.md §5 "Attempts", "Lease", "Page step").
//
// 1. A claim counts as an attempt and only a page that lands resets the count, so invocations
//    that die without a word (SIGKILL mid-page, as the platform kills an isolate out of memory
//    or CPU) still count: after SYNC_MAX_ATTEMPTS of them in a row the next claim fails the job,
//    quoting "an invocation ended without reporting one". The processor runs in a child process
//    (support/processor_child.ts) and the stand-in Ultravox holds its page with a `latency`
//    fault while it is killed; between kills the lease's expires_at is set into the past in SQL,
//    as a clock would move it, instead of sleeping.
// 2. A worker that lost its lease cannot land a page, and drops what it still holds: with two
//    sessions (two postgres.js connections), after a takeover, after its own cursor moved in
//    another session, and while its page step waits on a lease-row lock whose holder changes.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { mapPage } from "../../supabase/functions/_shared/sync/job_runner.ts";
import { spawnProcessor } from "./support/child.ts";
import {
  blockedBy,
  createJob,
  dbSql,
  freshAccount,
  loadJob,
  pauseCron,
  type Sql,
  syncConfig,
  waitFor,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const MAX_ATTEMPTS = 3;
const PAGE = 10;
/** Long enough that no lease runs out by itself during the test: only the SQL clock moves it. */
const LEASE_SECONDS = 30;
/** Longer than the test: the held page is only ever ended by the kill. */
const HOLD_MS = 120_000;

interface LeaseRow {
  holder: string | null;
  expires_at: string | null;
  failed_attempts: number;
  last_problem: string | null;
}

async function lease(sql: Sql, jobId: string): Promise<LeaseRow> {
  const [row] = await sql<LeaseRow[]>`
    select holder::text, expires_at, failed_attempts, last_problem
      from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
  assert.ok(row, `no lease row for ${jobId}`);
  return row;
}

/** The lease runs out now, as the clock would have it: expires_at a second in the past. */
async function expireLease(sql: Sql, jobId: string) {
  const rows = await sql`
    update public.historical_sync_job_leases set expires_at = now() - interval '1 second'
     where job_id = ${jobId}::uuid and holder is not null returning 1`;
  assert.equal(rows.length, 1, "there was a live lease to expire");
}

/** The job's rows in calls: how many, and how many distinct call ids. */
async function rowsOf(sql: Sql, jobId: string) {
  const [r] = await sql<{ n: number; distinct_ids: number }[]>`
    select count(*)::int as n, count(distinct ultravox_call_id)::int as distinct_ids
      from public.calls where historical_sync_job_id = ${jobId}::uuid`;
  return r;
}

Deno.test(`a job whose invocation is killed mid-page SYNC_MAX_ATTEMPTS (${MAX_ATTEMPTS}) times in a row ends failed, nothing imported twice`, async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(3 * PAGE);
  await using fake = await startFakeUltravox({ calls });
  const problems: string[] = [];
  const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
  const kills: { holder: string | null; attempts: number; signal: string | null }[] = [];
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      SYNC_MAX_ATTEMPTS: MAX_ATTEMPTS,
    });

    /**
     * One invocation in a child, SIGKILLed once its request number `n` is held by the
     * stand-in (and, with `afterPage`, once that many calls are committed).
     */
    const killMidPage = async (n: number, afterPage?: number) => {
      const before = await lease(db.sql, jobId);
      const child = spawnProcessor([jobId], config);
      try {
        await waitFor(`request ${n} to be held`, () => fake.requests.length >= n, {
          timeoutMs: 20_000,
        });
        if (afterPage !== undefined) {
          await waitFor(
            `${afterPage} calls committed`,
            async () => (await loadJob(db.sql, jobId)).processed_calls === afterPage,
            { timeoutMs: 20_000 },
          );
        }
      } finally {
        child.kill();
      }
      const exit = await child.done;
      const now = await lease(db.sql, jobId);
      kills.push({ holder: now.holder, attempts: now.failed_attempts, signal: exit.signal });
      expect(
        exit.signal === "SIGKILL",
        `invocation ${kills.length} ended by ${exit.signal}, not SIGKILL`,
      );
      expect(
        now.holder !== null && now.holder !== before.holder,
        `invocation ${kills.length} took the lease`,
      );
      expect(
        fake.requests.length === n,
        `invocation ${kills.length}: ${fake.requests.length} requests (expected ${n})`,
      );
      return now;
    };

    // Invocation 0: page 1 lands (which resets the count), page 2 is held when it is killed.
    fake.faults.push({ kind: "pass" }, { kind: "latency", ms: HOLD_MS });
    const first = await killMidPage(2, PAGE);
    expect(
      first.failed_attempts === 0,
      `a landed page resets the attempts (${first.failed_attempts})`,
    );
    expect(first.last_problem === null, "no problem was reported");

    // Invocations 1…N: each claims (an attempt), asks for page 2 again, and dies holding it.
    for (let i = 1; i <= MAX_ATTEMPTS; i++) {
      await expireLease(db.sql, jobId);
      fake.faults.push({ kind: "latency", ms: HOLD_MS });
      const now = await killMidPage(2 + i);
      expect(now.failed_attempts === i, `after kill ${i}: ${now.failed_attempts} attempts counted`);
      const job = await loadJob(db.sql, jobId);
      expect(job.status === "in_progress", `after kill ${i} the job is ${job.status}`);
      expect(job.processed_calls === PAGE, `after kill ${i}: ${job.processed_calls} processed`);
      expect(job.cursor !== null, `after kill ${i} the cursor still points at page 2`);
      const asked = fake.requests.at(-1)!;
      expect(asked.query.cursor !== undefined, `invocation ${i} resumed from the saved cursor`);
    }

    // The claim after the N-th kill gives up, and fetches nothing.
    await expireLease(db.sql, jobId);
    const requestsBefore = fake.requests.length;
    const last = spawnProcessor([jobId], config);
    const run = await last.waitFor((e) => e.event === "run", 20_000);
    const lastExit = await last.done;
    expect(
      lastExit.code === 0,
      `the last invocation exited ${lastExit.code}: ${lastExit.stderr.slice(0, 300)}`,
    );
    expect(
      Array.isArray(run.jobs) && run.jobs.length === 0,
      `the last claim took the job: ${JSON.stringify(run.jobs)}`,
    );
    expect(
      fake.requests.length === requestsBefore,
      "the last invocation asked Ultravox for a page",
    );

    const job = await loadJob(db.sql, jobId);
    const state = await lease(db.sql, jobId);
    const rows = await rowsOf(db.sql, jobId);
    const message =
      `Gave up after ${MAX_ATTEMPTS} attempts in a row without a page landing; the last problem: ` +
      "an invocation ended without reporting one (out of memory or CPU time, or killed)";
    expect(job.status === "failed", `the job is ${job.status}, not failed`);
    expect(job.error_message === message, `error_message: ${job.error_message}`);
    expect(
      job.completed_at !== null && job.last_error_at !== null,
      "completed_at and last_error_at set",
    );
    expect(state.holder === null && state.expires_at === null, "the failed job holds no lease");
    expect(state.failed_attempts === MAX_ATTEMPTS, `attempts on record: ${state.failed_attempts}`);
    // Page 1 once, page 2 never: nothing imported twice, counters exact.
    const mismatches = [
      ...(rows.n === PAGE ? [] : [`${rows.n} rows for the job (expected ${PAGE})`]),
      ...(job.imported_calls === rows.n
        ? []
        : [`imported_calls ${job.imported_calls} vs ${rows.n} rows`]),
      ...(job.processed_calls === job.imported_calls + job.skipped_calls + job.failed_calls
        ? []
        : ["processed ≠ imported + skipped + failed"]),
      ...(job.skipped_calls === 0 && job.failed_calls === 0
        ? []
        : ["skipped or failed calls counted"]),
    ];
    const [{ page1 }] = await db.sql<{ page1: number }[]>`
      select count(*)::int as page1 from public.calls
       where ultravox_call_id = any (${calls.slice(0, PAGE).map((c) => c.callId)}::uuid[])`;
    if (page1 !== PAGE) mismatches.push(`page 1 has ${page1} of ${PAGE} calls in calls`);

    await recordFigures({
      suite: "crash",
      test: `killed mid-page ${MAX_ATTEMPTS} times in a row (SYNC_MAX_ATTEMPTS = ${MAX_ATTEMPTS})`,
      cases: MAX_ATTEMPTS + 1,
      faults: MAX_ATTEMPTS + 1,
      calls_expected: PAGE,
      calls_lost: PAGE - Math.min(PAGE, page1),
      calls_duplicated: rows.n - rows.distinct_ids,
      counter_mismatches: problems.length + mismatches.length,
      notes: {
        attempts_after_each_kill: kills.map((k) => k.attempts),
        status: job.status,
        error_message: job.error_message,
        ultravox_requests: fake.requests.length,
      },
    }, started);
    assert.deepEqual(problems, [], "attempts, leases and the job as specified");
    assert.deepEqual(mismatches, [], "page 1 imported once, page 2 never, counters exact");
  } finally {
    await restoreCron();
  }
});

// ── fences ──────────────────────────────────────────────────────────────────────────

interface Fenced {
  db: TestDb;
  /** Worker A's session and another session (worker B, or the test's lock). */
  a: Sql;
  b: Sql;
  jobId: string;
  /** Pages of five calls each, mapped as the processor maps them. */
  pages: string[];
}

async function fencedScene(test: string, body: (s: Fenced) => Promise<string[]>) {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const a = dbSql(2);
  const b = dbSql(2);
  let problems: string[] = [];
  try {
    const agency = await db.createAgency();
    const jobId = await createJob(db.sql, agency.id);
    const calls = freshAccount(15);
    const pages = [0, 5, 10].map((i) => mapPage(calls.slice(i, i + 5)).callsJson);
    problems = await body({ db, a, b, jobId, pages });
  } finally {
    await recordFigures({
      suite: "concurrency",
      test,
      cases: 1,
      faults: 1,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: problems.length,
    }, started).catch(() => {});
    await Promise.all([a.end({ timeout: 5 }), b.end({ timeout: 5 })]);
    await restoreCron();
  }
  assert.deepEqual(problems, []);
}

async function claim(sql: Sql, holder: string, jobId: string) {
  return await sql<{ id: string; cursor: string | null }[]>`
    select id::text, cursor from public.claim_sync_jobs(${holder}::uuid, 1, 60, ${jobId}::uuid)`;
}

function recordPage(
  sql: Sql,
  jobId: string,
  holder: string,
  from: string | null,
  next: string,
  page: string,
) {
  return sql<{ status: string; page_imported: number }[]>`
    select status, page_imported from public.record_sync_page(
      ${jobId}::uuid, ${holder}::uuid, ${from}, ${next}, ${page}::text::jsonb, '[]'::jsonb,
      15, 60)`;
}

/** The job row and its lease row as text: what a fenced-out step must leave exactly as it was. */
async function rowsText(sql: Sql, jobId: string) {
  const [r] = await sql<{ job: string; lease: string; calls: number }[]>`
    select (select j::text from public.historical_sync_jobs j where j.id = ${jobId}::uuid) as job,
           (select l::text from public.historical_sync_job_leases l where l.job_id = ${jobId}::uuid) as lease,
           (select count(*)::int from public.calls where historical_sync_job_id = ${jobId}::uuid) as calls`;
  return r;
}

Deno.test("a worker whose lease was taken over while it waited cannot land its page, and B's lease is untouched", async () => {
  await fencedScene(
    "taken over while it waited: the stale worker lands nothing",
    async ({ db, a, b, jobId, pages }) => {
      const problems: string[] = [];
      const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
      const A = crypto.randomUUID();
      const B = crypto.randomUUID();
      // A holds the job and reads its cursor (none yet: the first page).
      const [mine] = await claim(a, A, jobId);
      expect(mine?.cursor === null, "A claimed the job at its first page");
      // A waits (a slow page); its lease runs out and B takes over.
      await expireLease(db.sql, jobId);
      expect((await claim(b, B, jobId)).length === 1, "B took over the expired lease");
      const before = await rowsText(db.sql, jobId);
      const bLease = await lease(db.sql, jobId);
      // A comes back with its page and its old holder id.
      const landed = await recordPage(a, jobId, A, mine?.cursor ?? null, "c1", pages[0]);
      expect(landed.length === 0, `A's page step returned ${JSON.stringify(landed)}`);
      const after = await rowsText(db.sql, jobId);
      expect(after.calls === 0, `${after.calls} calls of A's page landed`);
      expect(after.job === before.job, "A changed the job row");
      expect(after.lease === before.lease, "A changed B's lease row");
      const bNow = await lease(db.sql, jobId);
      expect(bNow.holder === B && bNow.expires_at === bLease.expires_at, "B's lease was touched");
      // B's own page lands.
      const [bPage] = await recordPage(b, jobId, B, null, "c1", pages[0]);
      expect(bPage?.page_imported === 5, `B's page imported ${bPage?.page_imported}`);
      return problems;
    },
  );
});

Deno.test("a worker still holding the lease whose cursor moved in another session is fenced out and drops its own lease", async () => {
  await fencedScene(
    "cursor moved in another session: fenced out, its lease dropped",
    async ({ db, a, b, jobId, pages }) => {
      const problems: string[] = [];
      const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
      const A = crypto.randomUUID();
      const [mine] = await claim(a, A, jobId);
      expect(mine?.cursor === null, "A claimed the job at its first page");
      // The same holder id lands page 1 from another session (a duplicate of A's step, say).
      const [p1] = await recordPage(b, jobId, A, null, "c1", pages[0]);
      expect(p1?.page_imported === 5, `page 1 imported ${p1?.page_imported}`);
      const before = await rowsText(db.sql, jobId);
      // A, still the recorded holder, sends page 1 again from its stale cursor.
      const stale = await recordPage(a, jobId, A, null, "c1", pages[1]);
      expect(stale.length === 0, `the stale step returned ${JSON.stringify(stale)}`);
      const after = await rowsText(db.sql, jobId);
      expect(after.calls === 5, `${after.calls} rows (expected page 1's 5): the stale page landed`);
      expect(after.job === before.job, "the stale step changed the job row");
      const dropped = await lease(db.sql, jobId);
      expect(
        dropped.holder === null && dropped.expires_at === null,
        `A kept its lease: ${JSON.stringify(dropped)}`,
      );
      // The job is claimable at once by another worker, from the committed cursor.
      const [next] = await claim(b, crypto.randomUUID(), jobId);
      expect(next?.cursor === "c1", `the next claim got ${JSON.stringify(next)}`);
      return problems;
    },
  );
});

Deno.test("a page step blocked behind a lease-row lock whose holder changes to B lands nothing once unblocked (the fence locks and re-reads the lease)", async () => {
  await fencedScene(
    "blocked at the fence while the holder changed: lands nothing",
    async ({ db, a, jobId, pages }) => {
      const problems: string[] = [];
      const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
      const A = crypto.randomUUID();
      const B = crypto.randomUUID();
      await claim(a, A, jobId);
      // The test's session locks the lease row.
      const lock = await db.sql.reserve();
      let committed = false;
      let pending: Promise<{ status: string; page_imported: number }[]> | null = null;
      try {
        await lock`begin`;
        const [{ pid }] = await lock<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await lock`select 1 from public.historical_sync_job_leases where job_id = ${jobId}::uuid for update`;
        // A's page step starts and waits at its fence.
        pending = Promise.resolve(recordPage(a, jobId, A, null, "c1", pages[0]));
        const blocked = await waitFor(
          "A's page step to wait on the lease-row lock",
          async () =>
            (await blockedBy(db.sql, pid)).find((q) => q.query.includes("record_sync_page")),
        );
        expect(blocked !== undefined, "A's step waited on the lease row");
        // Meanwhile the holder becomes B (as a takeover writes it), and that commits.
        await lock`
        update public.historical_sync_job_leases
           set holder = ${B}::uuid, expires_at = now() + interval '60 seconds'
         where job_id = ${jobId}::uuid`;
        await lock`commit`;
        committed = true;
      } finally {
        if (!committed) await lock`rollback`.catch(() => {});
        lock.release();
      }
      const result = await pending!;
      expect(result.length === 0, `A's step, unblocked, returned ${JSON.stringify(result)}`);
      const after = await rowsText(db.sql, jobId);
      expect(after.calls === 0, `${after.calls} calls of A's page landed`);
      const job = await loadJob(db.sql, jobId);
      expect(job.cursor === null && job.processed_calls === 0, "A's step moved the job");
      const l = await lease(db.sql, jobId);
      expect(l.holder === B, `the lease holder is ${l.holder}, not B: A's drop hit B's lease`);
      return problems;
    },
  );
});

Deno.test("control: a page step blocked behind a lease-row lock that changes nothing lands once unblocked", async () => {
  await fencedScene(
    "blocked at the fence, holder unchanged: lands",
    async ({ db, a, jobId, pages }) => {
      const problems: string[] = [];
      const expect = (ok: boolean, what: string) => void (ok || problems.push(what));
      const A = crypto.randomUUID();
      await claim(a, A, jobId);
      const lock = await db.sql.reserve();
      let committed = false;
      let pending: Promise<{ status: string; page_imported: number }[]> | null = null;
      try {
        await lock`begin`;
        const [{ pid }] = await lock<{ pid: number }[]>`select pg_backend_pid() as pid`;
        await lock`select 1 from public.historical_sync_job_leases where job_id = ${jobId}::uuid for update`;
        pending = Promise.resolve(recordPage(a, jobId, A, null, "c1", pages[0]));
        await waitFor(
          "A's page step to wait on the lease-row lock",
          async () =>
            (await blockedBy(db.sql, pid)).find((q) => q.query.includes("record_sync_page")),
        );
        await lock`commit`;
        committed = true;
      } finally {
        if (!committed) await lock`rollback`.catch(() => {});
        lock.release();
      }
      const [landed] = await pending!;
      expect(landed?.page_imported === 5, `A's step imported ${landed?.page_imported}`);
      expect((await lease(db.sql, jobId)).holder === A, "A keeps its lease");
      return problems;
    },
  );
});
