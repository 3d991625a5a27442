// Case 1 — crash mid-page. The processor runs in a child process (support/processor_child.ts)
// and is SIGKILLed at controlled points of a page step; row locks held from the test's
// connection stop the child exactly where a kill should land. After the dead worker's lease
// runs out (and not before), the next invocation finishes the job, and every call of the
// account is in `calls` exactly once with exact counters.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import {
  type FakeCall,
  type FakeUltravox,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { type ChildProcessor, spawnProcessor } from "./support/child.ts";
import {
  backendAlive,
  blockedBy,
  checkJob,
  claimJustBeforeExpiry,
  createJob,
  dbSql,
  freshAccount,
  type HeldLock,
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
  agencyId: string;
  jobId: string;
  child: ChildProcessor;
  /** The account, newest first (API order). */
  calls: FakeCall[];
  /** With `lockEarlier`: the lock on the earlier-imported call's row, taken before the child. */
  lock: HeldLock | null;
}

/**
 * A call of page 3 that an earlier import of this agency already wrote, while it was still
 * running: the page step finds it changed upstream and refreshes it (an UPDATE after the
 * page's INSERT, in the same transaction), so a lock on its row stops the step between its
 * upsert and its commit. The page step's fence locks the job and lease rows first, so those
 * rows would stop it before the upsert.
 */
const EARLIER = 2 * PAGE + 5;
/** Another call of page 3, one the page step really inserts. */
const INSERTED = 2 * PAGE;

/** Writes `call` as an earlier import of the agency wrote it while the call was running. */
async function importedEarlier(sql: Sql, agencyId: string, call: FakeCall) {
  const running = {
    ...call,
    ended: null,
    endReason: null,
    billedDuration: null,
    billingStatus: "BILLING_STATUS_PENDING",
    shortSummary: null,
    summary: null,
  };
  await sql`
    insert into public.calls (agency_id, ultravox_call_id, created_at, joined_at, raw, source)
    values (${agencyId}::uuid, ${call.callId}::uuid, ${call.created}::timestamptz,
            ${call.joined ?? null}::timestamptz, ${sql.json(running)}, 'historical_sync')`;
}

/** Holds a row lock on the earlier-imported call of page 3 (see EARLIER). */
function lockEarlierRow(sql: Sql, calls: FakeCall[]) {
  return holdLock(sql, (c) =>
    c`select 1 from public.calls
       where ultravox_call_id = ${calls[EARLIER].callId}::uuid for update`);
}

/**
 * Whether another transaction holds an uncommitted insert of `callId`: an insert of the same
 * callId from here then waits for it (here: until lock_timeout), where it would otherwise
 * just insert (rolled back here either way).
 */
async function uncommittedInsertOf(sql: Sql, agencyId: string, callId: string) {
  const conn = await sql.reserve();
  try {
    await conn`begin`;
    await conn`set local lock_timeout = '300ms'`;
    try {
      await conn`
        insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
        values (${agencyId}::uuid, ${callId}::uuid, now(), '{}', 'probe')
        on conflict (ultravox_call_id) do nothing`;
      return false;
    } catch (e) {
      if ((e as { code?: string }).code === "55P03") return true; // lock_not_available
      throw e;
    }
  } finally {
    await conn`rollback`;
    conn.release();
  }
}

/** The earlier-imported call's row: the job that wrote it, and whether raw is the served object. */
async function earlierRow(sql: Sql, call: FakeCall) {
  const [row] = await sql<{ job_id: string | null; raw_served: boolean; ended: boolean }[]>`
    select historical_sync_job_id::text as job_id,
           raw = ${sql.json(JSON.parse(JSON.stringify(call)))}::jsonb as raw_served,
           ended_at is not null as ended
      from public.calls where ultravox_call_id = ${call.callId}::uuid`;
  return row;
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
  // lockEarlier: hold that call's row (see lockEarlierRow) before the child starts, so its
  // page 3 cannot have passed it by the time the test looks.
  opts: { earlierImport?: boolean; lockEarlier?: boolean } = {},
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
    // That call is then in `calls` already (skipped, and refreshed), not written by this job.
    const earlier = opts.earlierImport ? calls[EARLIER] : null;
    if (earlier) await importedEarlier(db.sql, agency.id, earlier);
    const lock = opts.lockEarlier ? await lockEarlierRow(db.sql, calls) : null;
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE, SYNC_LEASE_SECONDS: 2 });
    const child = spawnProcessor([jobId], config);
    let notes: Record<string, unknown>;
    try {
      notes = await kill({ sql: db.sql, fake, agencyId: agency.id, jobId, child, calls, lock });
    } finally {
      child.kill();
      await lock?.release();
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
      ...(earlier ? { heldElsewhere: new Set([earlier.callId]) } : {}),
    });
    // The earlier-imported call, once: skipped and refreshed by the page step that landed
    // page 3, never imported again, and its row left to the import that wrote it.
    const expected = earlier
      ? { imported: CALLS - 1, skipped: 1, refreshed: 1 }
      : { imported: CALLS, skipped: 0, refreshed: 0 };
    const [{ refreshed_calls }] = await db.sql<{ refreshed_calls: number }[]>`
      select refreshed_calls from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
    const counted = {
      imported: check.job.imported_calls,
      skipped: check.job.skipped_calls,
      refreshed: refreshed_calls,
    };
    const mismatch = (what: string, a: unknown, b: unknown) => {
      if (a !== b) check.mismatches.push(`${what}: ${a} (expected ${b})`);
    };
    for (const k of ["imported", "skipped", "refreshed"] as const) {
      mismatch(`${k} calls`, counted[k], expected[k]);
    }
    // What the recovery's own summaries report: page 3 is theirs unless it landed before.
    const recoveryWalkedPage3 = pagesBefore < 3;
    mismatch(
      "refreshed in the recovery's summaries",
      recovery.runs.flatMap((r) => r.jobs).reduce((n, j) => n + j.refreshed, 0),
      recoveryWalkedPage3 ? expected.refreshed : 0,
    );
    mismatch(
      "skipped in the recovery's summaries",
      recovery.skipped,
      recoveryWalkedPage3 ? expected.skipped : 0,
    );
    if (earlier) {
      const row = await earlierRow(db.sql, earlier);
      mismatch("the earlier import's row refreshed to the served call", row?.raw_served, true);
      mismatch("the earlier import's row now ended", row?.ended, true);
      mismatch("the earlier import's row keeps its job", row?.job_id, null);
    }
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
    assert.equal(check.rows, expected.imported);
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
    async ({ sql, agencyId, jobId, child, calls, lock: held }) => {
      // record_sync_page fences (locking the job and lease rows), inserts the page's new
      // calls, refreshes the call an earlier import wrote, then moves the job: holding that
      // call's row (taken before the child started) stops page 3's step after the upsert,
      // before the commit. Pages 1 and 2 never touch that row.
      const lock = held!;
      let wroteCalls = false;
      try {
        await waitFor("page 2 committed", async () => await committed(sql, jobId) >= 2 * PAGE);
        const step = await blockedPageStep(sql, lock.pid);
        wroteCalls = await uncommittedInsertOf(sql, agencyId, calls[INSERTED].callId);
        assert.equal(await callRows(sql, jobId), 2 * PAGE, "page 3 is not visible uncommitted");
        await killChild(child);
        // Everything of the dead child still waiting: the page step on the test's lock, and
        // the heartbeat, if it fired, on the lease row the page step holds.
        for (const b of await blockedBy(sql, step.pid)) await terminateBackend(sql, b.pid);
        for (const b of await blockedBy(sql, lock.pid)) await terminateBackend(sql, b.pid);
        await waitFor(
          "the child's backend to exit",
          async () => !await backendAlive(sql, step.pid),
        );
      } finally {
        await lock.release();
      }
      assert.ok(wroteCalls, "the blocked page step had inserted page 3's calls");
      assert.equal(await committed(sql, jobId), 2 * PAGE);
      assert.equal(await callRows(sql, jobId), 2 * PAGE);
      const row = await earlierRow(sql, calls[EARLIER]);
      assert.equal(row?.raw_served, false, "the refresh was rolled back too");
      return { kill_point: "page 3 upserted, not committed; backend terminated → rolled back" };
    },
    { earlierImport: true, lockEarlier: true },
  );
});

Deno.test("a worker killed between its upsert and its commit whose statement still completes lands the whole page once", async () => {
  await crashAndRecover(
    "killed after the upsert, before commit; statement completes",
    async ({ sql, agencyId, jobId, child, calls, lock: held }) => {
      const lock = held!; // as above: page 3's step stops there
      let stepPid = 0;
      let wroteCalls = false;
      try {
        await waitFor("page 2 committed", async () => await committed(sql, jobId) >= 2 * PAGE);
        stepPid = (await blockedPageStep(sql, lock.pid)).pid;
        wroteCalls = await uncommittedInsertOf(sql, agencyId, calls[INSERTED].callId);
        await killChild(child);
      } finally {
        // Postgres finishes a statement whose client died: it commits, then notices.
        await lock.release();
      }
      await waitFor(
        "the orphaned page step to finish",
        async () => !await backendAlive(sql, stepPid),
      );
      assert.ok(wroteCalls, "the blocked page step had inserted page 3's calls");
      const landed = await committed(sql, jobId);
      assert.ok(landed === 2 * PAGE || landed === 3 * PAGE, `whole pages only (${landed})`);
      // Page 3 holds the earlier-imported call: skipped, not a row of this job.
      assert.equal(await callRows(sql, jobId), landed === 3 * PAGE ? landed - 1 : landed);
      assert.equal(
        (await earlierRow(sql, calls[EARLIER]))?.raw_served,
        landed === 3 * PAGE,
        "the refresh landed with its page, and only with it",
      );
      return {
        kill_point: "page 3 upserted, not committed; client gone, statement completed",
        orphan_committed_page_3: landed === 3 * PAGE,
      };
    },
    { earlierImport: true, lockEarlier: true },
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
