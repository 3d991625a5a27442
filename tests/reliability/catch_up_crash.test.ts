// A catch-up killed in its deleted-calls walk (docs/ARCHITECTURE.md §5 "Deleted calls"). The
// processor runs in a child process (support/processor_child.ts) and is SIGKILLed at three
// points of tombstone page 2: while it is being fetched, between its marks and its commit with
// the backend terminated (rolled back), and there with the orphaned statement left to commit.
// After the dead worker's lease runs out (and not before), the next invocation resumes from
// deleted_cursor and completes; every deleted call is marked once with its own deletionTime,
// no other call is, and deleted_marked is exact.
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
  claimJustBeforeExpiry,
  createJob,
  dbSql,
  freshAccount,
  holdLock,
  JOB_DATE_TO,
  noSleep,
  pauseCron,
  runUntilDone,
  type Sql,
  syncConfig,
  terminateBackend,
  waitFor,
  waitForLeaseExpiry,
} from "./support/harness.ts";

const CALLS = 8;
const PAGE = 2;
/** Deleted after the full sync: 5 tombstones, so 3 tombstone pages (2, 2, 1). */
const DELETED = [0, 2, 3, 5, 7];
const deletionTime = (i: number) => `2026-11-02T10:00:0${i}.00000${i + 1}Z`;

interface Scene {
  sql: Sql;
  jobId: string;
  child: ChildProcessor;
  /** Tombstones in the order /api/deleted_calls lists them (newest created first). */
  tombstones: { callId: string }[];
  deletedRequests: () => (string | null)[];
}

async function engineState(sql: Sql, jobId: string) {
  const [row] = await sql<
    {
      phase: string;
      deleted_cursor: string | null;
      deleted_marked: number;
      holder: string | null;
    }[]
  >`
    select phase, deleted_cursor, deleted_marked, holder::text
      from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
  return row;
}

async function marks(sql: Sql, calls: FakeCall[]): Promise<Record<string, string | null>> {
  const rows = await sql<{ id: string; at: string | null }[]>`
    select ultravox_call_id::text as id, ultravox_deleted_at as at from public.calls
     where ultravox_call_id = any (${calls.map((c) => c.callId)}::uuid[])`;
  return Object.fromEntries(rows.map((r) => [r.id, r.at]));
}

async function killChild(child: ChildProcessor) {
  child.kill();
  return await child.done;
}

/** The child's record_deleted_page, once it waits on a lock the test holds. */
async function blockedDeletedPage(sql: Sql, lockPid: number) {
  return await waitFor("record_deleted_page to wait on the test's lock", async () => {
    const blocked = await blockedBy(sql, lockPid);
    return blocked.find((b) => b.query.includes("record_deleted_page"));
  });
}

/**
 * 8 calls imported by a full sync, 5 of them then deleted; a catch-up (date_from null) walked
 * by a child processor in pages of 2 with a 2 s lease; `kill` brings it down in tombstone
 * page 2; recovery runs in-process. Returns how many tombstone pages had landed at the kill.
 */
async function crashAndRecover(
  kill: (scene: Scene) => Promise<void>,
  opts: { faults?: (fake: FakeUltravox) => void } = {},
) {
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(CALLS);
  await using fake = await startFakeUltravox({ calls });
  const procSql = dbSql(4);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE, SYNC_LEASE_SECONDS: 2 });
    const fullId = await createJob(db.sql, agency.id);
    const full = await runUntilDone({ sql: procSql, config, sleep: noSleep }, fullId);
    assert.equal(full.status, "completed");
    assert.equal(full.imported, CALLS);

    const deleted = DELETED.map((i) => calls[i]);
    deleted.forEach((c, i) => fake.deleteCall(c.callId, deletionTime(i)));
    const expectedMarks = Object.fromEntries(
      calls.map((c) => [c.callId, deleted.includes(c) ? deletionTime(deleted.indexOf(c)) : null]),
    );
    const [{ id: jobId }] = await db.sql<{ id: string }[]>`
      select id from public.create_sync_job(${agency.id}::uuid, null, ${JOB_DATE_TO}::timestamptz,
                                            null, p_catch_up => true)`;
    fake.requests.length = 0;
    const deletedRequests = () =>
      fake.requests.filter((r) => r.path === "/api/deleted_calls").map((r) =>
        r.query.cursor ?? null
      );

    opts.faults?.(fake);
    const child = spawnProcessor([jobId], config);
    try {
      await kill({
        sql: db.sql,
        jobId,
        child,
        tombstones: [...fake.deletedCalls],
        deletedRequests,
      });
    } finally {
      child.kill();
    }
    const exit = await child.done;
    assert.equal(exit.signal, "SIGKILL", "the child was killed, not finished");

    // What the kill left: whole tombstone pages only, their marks counted exactly.
    const atCrash = await engineState(db.sql, jobId);
    assert.equal(atCrash.phase, "deleted_calls");
    assert.ok(atCrash.deleted_cursor !== null, "the walk stopped inside its tombstone pages");
    const markedAtCrash = Object.values(await marks(db.sql, deleted)).filter((m) => m !== null);
    assert.ok(
      atCrash.deleted_marked === 2 || atCrash.deleted_marked === 4,
      `whole pages of 2 only (${atCrash.deleted_marked})`,
    );
    assert.equal(
      markedAtCrash.length,
      atCrash.deleted_marked,
      "marks = deleted_marked after the kill",
    );
    const pagesAtCrash = atCrash.deleted_marked / PAGE;

    assert.equal(
      await claimJustBeforeExpiry(db.sql, jobId),
      0,
      "no claim before the lease runs out",
    );
    await waitForLeaseExpiry(db.sql, jobId);
    const recovery = await runUntilDone({ sql: procSql, config, sleep: noSleep }, jobId);

    assert.equal(recovery.status, "completed");
    assert.equal(recovery.invocations, 1);
    assert.equal(recovery.pages, 3 - pagesAtCrash, "recovery resumes at deleted_cursor");
    const final = await engineState(db.sql, jobId);
    assert.deepEqual(
      { ...final },
      { phase: "deleted_calls", deleted_cursor: null, deleted_marked: 5, holder: null },
    );
    assert.deepEqual(
      await marks(db.sql, calls),
      expectedMarks,
      "each deleted call marked once, the others not",
    );
    const [job] = await db.sql<
      { status: string; processed: number; imported: number; skipped: number; failed: number }[]
    >`
      select status, processed_calls as processed, imported_calls as imported,
             skipped_calls as skipped, failed_calls as failed
        from public.historical_sync_jobs where id = ${jobId}::uuid`;
    assert.deepEqual(
      { ...job },
      { status: "completed", processed: 3, imported: 0, skipped: 3, failed: 0 },
    );
    const [{ rows }] = await db.sql<{ rows: number }[]>`
      select count(*)::int as rows from public.calls where agency_id = ${agency.id}::uuid`;
    assert.equal(rows, CALLS, "no row deleted");
    // The recovery asked for the page after the last one that landed, then on to the end.
    const cursors = deletedRequests();
    assert.equal(cursors[0], null);
    assert.equal(new Set(cursors).size, 3, "three distinct tombstone pages");
    return { pagesAtCrash, cursors };
  } finally {
    await procSql.end();
    await restoreCron();
  }
}

Deno.test("a catch-up killed while tombstone page 2 is in flight resumes from deleted_cursor and marks each call once", async () => {
  const { pagesAtCrash, cursors } = await crashAndRecover(
    async ({ sql, jobId, child, deletedRequests }) => {
      await waitFor(
        "tombstone page 2 requested after page 1 landed",
        async () =>
          deletedRequests().length >= 2 && (await engineState(sql, jobId)).deleted_marked === 2,
      );
      await killChild(child);
    },
    // Requests: calls pages 1 and 2, tombstone page 1, then tombstone page 2, held back.
    {
      faults: (fake) => fake.faults.push({ kind: "pass", times: 3 }, { kind: "latency", ms: 3000 }),
    },
  );
  assert.equal(pagesAtCrash, 1);
  assert.equal(
    cursors.length,
    4,
    "tombstone page 2 asked for twice: by the dead worker and the next",
  );
  assert.equal(cursors[1], cursors[2]);
});

Deno.test("a catch-up killed between its marks and their commit has the page rolled back when its backend ends", async () => {
  const { pagesAtCrash, cursors } = await crashAndRecover(
    async ({ sql, jobId, child, tombstones }) => {
      // record_deleted_page fences (locking the job and lease rows), then marks the page's
      // calls: holding the row of tombstone page 2's first call stops it there, before commit.
      const lock = await holdLock(
        sql,
        (c) =>
          c`select 1 from public.calls where ultravox_call_id = ${tombstones[2].callId}::uuid
          for update`,
      );
      try {
        const step = await blockedDeletedPage(sql, lock.pid);
        assert.equal((await engineState(sql, jobId)).deleted_marked, 2, "page 1 landed");
        await killChild(child);
        // The dead child's page step, and its heartbeat if it fired (waiting on the lease row).
        for (const b of await blockedBy(sql, step.pid)) await terminateBackend(sql, b.pid);
        await terminateBackend(sql, step.pid);
        await waitFor(
          "the child's backend to exit",
          async () => !await backendAlive(sql, step.pid),
        );
      } finally {
        await lock.release();
      }
      const state = await engineState(sql, jobId);
      assert.equal(state.deleted_marked, 2, "page 2 was rolled back");
    },
  );
  assert.equal(pagesAtCrash, 1);
  assert.equal(cursors.length, 4);
  assert.equal(cursors[1], cursors[2], "page 2 asked for again from the same cursor");
});

Deno.test("a catch-up killed between its marks and their commit whose statement still completes lands the page once", async () => {
  const { pagesAtCrash, cursors } = await crashAndRecover(
    async ({ sql, child, tombstones }) => {
      const lock = await holdLock(
        sql,
        (c) =>
          c`select 1 from public.calls where ultravox_call_id = ${tombstones[2].callId}::uuid
          for update`,
      );
      let stepPid = 0;
      try {
        stepPid = (await blockedDeletedPage(sql, lock.pid)).pid;
        await killChild(child);
      } finally {
        // Postgres finishes a statement whose client died: it commits, then notices.
        await lock.release();
      }
      await waitFor(
        "the orphaned page step to finish",
        async () => !await backendAlive(sql, stepPid),
      );
    },
  );
  // Whether page 2 landed or not, the counters above were exact; here: which it was.
  assert.ok(pagesAtCrash === 1 || pagesAtCrash === 2, `pages at the kill: ${pagesAtCrash}`);
  assert.equal(
    cursors.length,
    2 + (3 - pagesAtCrash),
    "each page asked for once more than it landed, at most",
  );
});
