// Case 1 — crash mid-page. The processor runs in a child process (support/processor_child.ts)
// and is SIGKILLed at controlled points of a page step; row locks held from the test's
// connection stop the child exactly where a kill should land. After the dead worker's lease
// runs out (and not before), the next invocation finishes the job, and every call of the
// account is in `calls` exactly once with exact counters.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { type FakeUltravox, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { type ChildProcessor, spawnProcessor } from "./support/child.ts";
import {
  backendAlive,
  blockedBy,
  checkJob,
  claimJustBeforeExpiry,
  createJob,
  dbSql,
  freshAccount,
  holdLock,
  loadJob,
  noSleep,
  pauseCron,
  runUntilDone,
  type Sql,
  syncConfig,
  terminateBackend,
  waitFor,
  waitForLeaseExpiry,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const CALLS = 60;
const PAGE = 10;
const PAGES = CALLS / PAGE;

interface Scene {
  sql: Sql;
  fake: FakeUltravox;
  jobId: string;
  child: ChildProcessor;
}

async function committed(sql: Sql, jobId: string): Promise<number> {
  return (await loadJob(sql, jobId)).processed_calls;
}

async function callRows(sql: Sql, jobId: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}::uuid`;
  return n;
}

/** The child's record_sync_page, once it waits on a lock the test holds. */
async function blockedPageStep(sql: Sql, lockPid: number) {
  return await waitFor("record_sync_page to wait on the test's lock", async () => {
    const blocked = await blockedBy(sql, lockPid);
    return blocked.find((b) => b.query.includes("record_sync_page"));
  });
}

/** Kills the child and waits until its process is gone. */
async function killChild(child: ChildProcessor) {
  child.kill();
  return await child.done;
}

/**
 * One kill point: a 60-call account walked in pages of 10 by a child processor with a 2 s
 * lease; `kill` brings it down; recovery runs in-process.
 */
async function crashAndRecover(
  test: string,
  kill: (scene: Scene) => Promise<Record<string, unknown>>,
) {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(CALLS);
  await using fake = await startFakeUltravox({ calls });
  const procSql = dbSql(4);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE, SYNC_LEASE_SECONDS: 2 });
    const child = spawnProcessor([jobId], config);
    let notes: Record<string, unknown>;
    try {
      notes = await kill({ sql: db.sql, fake, jobId, child });
    } finally {
      child.kill();
    }
    const exit = await child.done;

    // What the crash left: whole pages only, each with its checkpoint.
    const atCrash = await loadJob(db.sql, jobId);
    const rowsAtCrash = await callRows(db.sql, jobId);
    const early = await claimJustBeforeExpiry(db.sql, jobId);
    await waitForLeaseExpiry(db.sql, jobId);
    const recovery = await runUntilDone({ sql: procSql, config, sleep: noSleep }, jobId);

    const pagesBefore = atCrash.processed_calls / PAGE;
    const check = await checkJob(db.sql, jobId, {
      seen: calls,
      total: CALLS,
      pages: PAGES,
      pagesRecorded: pagesBefore + recovery.pages,
    });
    if (rowsAtCrash !== atCrash.imported_calls || atCrash.processed_calls % PAGE !== 0) {
      check.mismatches.push(
        `after the kill: ${rowsAtCrash} rows, imported ${atCrash.imported_calls}, processed ${atCrash.processed_calls}`,
      );
    }
    if (early !== 0) check.mismatches.push("the job was claimable before its lease ran out");
    await recordFigures({
      suite: "crash",
      test,
      cases: 1,
      faults: 1,
      calls_expected: CALLS,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length,
      notes: {
        ...notes,
        pages_committed_at_kill: pagesBefore,
        recovery_invocations: recovery.invocations,
        recovery_pages: recovery.pages,
        child_signal: exit.signal,
      },
    }, started);

    assert.equal(exit.signal, "SIGKILL", "the child was killed, not finished");
    assert.equal(early, 0, "no claim before the lease runs out");
    assert.equal(rowsAtCrash, atCrash.imported_calls, "rows = imported_calls after the kill");
    assert.deepEqual(check.mismatches, []);
    assert.equal(check.lost, 0);
    assert.equal(check.duplicated, 0);
    assert.equal(check.rows, CALLS);
    assert.equal(recovery.pages, PAGES - pagesBefore, "recovery resumes at the checkpoint");
  } finally {
    await procSql.end();
    await restoreCron();
  }
}

Deno.test("a worker killed while a page is in flight leaves only whole pages and the next worker finishes exactly", async () => {
  await crashAndRecover("killed while page 3 is in flight", async ({ sql, fake, jobId, child }) => {
    fake.faults.push({ kind: "pass", times: 2 }, { kind: "latency", ms: 500 });
    await waitFor(
      "page 3 requested after page 2 committed",
      async () => fake.requests.length >= 3 && await committed(sql, jobId) >= 2 * PAGE,
    );
    await killChild(child);
    assert.equal(await committed(sql, jobId), 2 * PAGE);
    return { kill_point: "page 3 requested, not yet answered" };
  });
});

Deno.test("a worker killed after fetching a page, before writing it, loses nothing", async () => {
  await crashAndRecover(
    "killed after fetching page 3, before its write",
    async ({ sql, fake, jobId, child }) => {
      fake.faults.push({ kind: "pass", times: 2 }, { kind: "latency", ms: 400 });
      await waitFor("page 2 committed", async () => await committed(sql, jobId) >= 2 * PAGE);
      // The page step's fence locks the job row first: holding it stops the child there.
      const lock = await holdLock(
        sql,
        (c) => c`select 1 from public.historical_sync_jobs where id = ${jobId}::uuid for update`,
      );
      try {
        const step = await blockedPageStep(sql, lock.pid);
        assert.equal(fake.requests[2].status, 200, "page 3 was served");
        await killChild(child);
        await terminateBackend(sql, step.pid);
        await waitFor(
          "the child's backend to exit",
          async () => !await backendAlive(sql, step.pid),
        );
      } finally {
        await lock.release();
      }
      assert.equal(await committed(sql, jobId), 2 * PAGE);
      return { kill_point: "page 3 fetched, page step waiting at its fence" };
    },
  );
});

Deno.test("a worker killed between its upsert and its commit has the page rolled back when its backend ends", async () => {
  await crashAndRecover(
    "killed after the upsert, before commit; backend terminated",
    async ({ sql, fake, jobId, child }) => {
      fake.faults.push({ kind: "pass", times: 2 }, { kind: "latency", ms: 400 });
      await waitFor("page 2 committed", async () => await committed(sql, jobId) >= 2 * PAGE);
      // record_sync_page fences, inserts the calls, moves the job, then renews the lease:
      // holding the lease row stops it after the upsert, before the commit.
      const lock = await holdLock(sql, (c) =>
        c`select 1 from public.historical_sync_job_leases
           where job_id = ${jobId}::uuid for update`);
      let wroteCalls = false;
      try {
        const step = await blockedPageStep(sql, lock.pid);
        const [held] = await sql`
          select 1 from pg_locks
           where pid = ${step.pid}::int and relation = 'public.calls'::regclass
             and mode = 'RowExclusiveLock'`;
        wroteCalls = held !== undefined;
        assert.equal(await callRows(sql, jobId), 2 * PAGE, "page 3 is not visible uncommitted");
        await killChild(child);
        // Everything of the dead child still waiting on the test's lock (the heartbeat too).
        for (const b of await blockedBy(sql, lock.pid)) await terminateBackend(sql, b.pid);
        await waitFor(
          "the child's backend to exit",
          async () => !await backendAlive(sql, step.pid),
        );
      } finally {
        await lock.release();
      }
      assert.ok(wroteCalls, "the blocked page step had inserted into calls");
      assert.equal(await committed(sql, jobId), 2 * PAGE);
      assert.equal(await callRows(sql, jobId), 2 * PAGE);
      return { kill_point: "page 3 upserted, not committed; backend terminated → rolled back" };
    },
  );
});

Deno.test("a worker killed between its upsert and its commit whose statement still completes lands the whole page once", async () => {
  await crashAndRecover(
    "killed after the upsert, before commit; statement completes",
    async ({ sql, fake, jobId, child }) => {
      fake.faults.push({ kind: "pass", times: 2 }, { kind: "latency", ms: 400 });
      await waitFor("page 2 committed", async () => await committed(sql, jobId) >= 2 * PAGE);
      const lock = await holdLock(sql, (c) =>
        c`select 1 from public.historical_sync_job_leases
           where job_id = ${jobId}::uuid for update`);
      let stepPid = 0;
      try {
        stepPid = (await blockedPageStep(sql, lock.pid)).pid;
        await killChild(child);
      } finally {
        // Postgres finishes a statement whose client died: it commits, then notices.
        await lock.release();
      }
      await waitFor(
        "the orphaned page step to finish",
        async () => !await backendAlive(sql, stepPid),
      );
      const landed = await committed(sql, jobId);
      assert.ok(landed === 2 * PAGE || landed === 3 * PAGE, `whole pages only (${landed})`);
      assert.equal(await callRows(sql, jobId), landed);
      return {
        kill_point: "page 3 upserted, not committed; client gone, statement completed",
        orphan_committed_page_3: landed === 3 * PAGE,
      };
    },
  );
});

Deno.test("a worker killed right after a commit is resumed from that checkpoint", async () => {
  await crashAndRecover(
    "killed right after committing page 3",
    async ({ sql, fake, jobId, child }) => {
      fake.latencyMs = 40;
      await waitFor(
        "page 3 committed",
        async () => await committed(sql, jobId) >= 3 * PAGE,
        { intervalMs: 1 },
      );
      await killChild(child);
      fake.latencyMs = 0;
      return { kill_point: "right after a commit (polled at 1 ms)" };
    },
  );
});
