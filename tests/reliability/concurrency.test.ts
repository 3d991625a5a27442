// Case 2 — concurrent workers. Many processors (in this process, each with its own
// connection, and in child processes) race over several jobs of different agencies, with a
// page budget of 2 so jobs change hands all the time, and child workers frozen (SIGSTOP)
// past their lease so others take their jobs over. Every call lands once, every job's
// counters add up, and the page steps that succeeded are exactly the pages of the walks: the
// fence never lets a page be recorded twice.
import assert from "node:assert/strict";
import { type FakeCall, fakeKey, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { TestDb } from "../support/db.ts";
import { type ChildEvent, spawnProcessor } from "./support/child.ts";
import {
  ACTIVE,
  checkJob,
  createJob,
  dbSql,
  delay,
  freshAccount,
  type JobCheck,
  jobStatus,
  loadJob,
  noSleep,
  pagesFor,
  pauseCron,
  runUntilDone,
  syncConfig,
  waitFor,
  waitForLeaseExpiry,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";

const PAGE = 10;

interface JobPlan {
  calls: FakeCall[];
  maxCalls: number | null;
  /** What the walk counts: in API order, up to the cap. */
  seen: FakeCall[];
  heldElsewhere?: Set<string>;
}

/** Newest first, ties by callId descending, as Ultravox lists them. */
function apiOrder(calls: FakeCall[]): FakeCall[] {
  return [...calls].sort((a, b) =>
    a.created < b.created ? 1 : a.created > b.created ? -1 : a.callId < b.callId ? 1 : -1
  );
}

function runEvents(events: ChildEvent[]) {
  return events.filter((e) => e.event === "run") as unknown as {
    jobs: { id: string; pages: number; status: string }[];
  }[];
}

Deno.test("twelve workers racing over six agencies' jobs import every call once and record every page once", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  try {
    // Six accounts; the fifth shares 15 calls with the fourth (a call another agency holds
    // is skipped, never duplicated); the sixth job is capped at 35 calls.
    const accounts = [40, 50, 60, 70, 45, 60].map(freshAccount);
    const shared = accounts[3].slice(5, 20);
    accounts[4] = apiOrder([...accounts[4], ...shared]);
    const sharedIds = new Set(shared.map((c) => c.callId));
    const plans: JobPlan[] = accounts.map((calls, i) => ({
      calls,
      maxCalls: i === 5 ? 35 : null,
      seen: i === 5 ? calls.slice(0, 35) : calls,
      heldElsewhere: i === 3 || i === 4 ? sharedIds : undefined,
    }));
    // One stand-in for the six accounts, told apart by their keys as Ultravox does.
    const [first, ...rest] = plans.map((plan) => ({
      calls: plan.calls,
      apiKey: fakeKey(),
      latencyMs: 15,
    }));
    await using fake = await startFakeUltravox({ ...first, accounts: rest });
    const fakes = fake.accounts;
    const jobIds: string[] = [];
    for (const [i, plan] of plans.entries()) {
      const agency = await db.createAgency({ ultravoxKey: fakes[i].apiKey! });
      jobIds.push(await createJob(db.sql, agency.id, { maxCalls: plan.maxCalls }));
    }
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: 1,
      SYNC_MAX_PAGES_PER_RUN: 2,
    });

    // Two child workers, started first (a process takes a moment to boot).
    const children = [0, 1].map(() => spawnProcessor(jobIds, config, { loop: true }));
    await Promise.all(children.map((c) => c.waitFor((e) => e.event === "ready")));

    const pages = new Map(jobIds.map((id) => [id, 0]));
    const open = new Set(jobIds);
    let invocations = 0;
    let unclaimed = 0;
    let fencedOut = 0;
    const deadline = Date.now() + 45_000;
    const worker = async () => {
      const sql = dbSql(2);
      try {
        while (open.size > 0) {
          if (Date.now() > deadline) throw new Error("workers did not finish in time");
          const ids = [...open];
          const jobId = ids[Math.floor(Math.random() * ids.length)];
          const run = await processHistoricalSync({
            sql,
            config,
            sleep: noSleep,
            log: (e) => void (e.event === "job_fenced_out" && fencedOut++),
          }, { jobId });
          invocations++;
          const job = run.jobs[0];
          if (job) {
            pages.set(jobId, pages.get(jobId)! + job.pages);
            if (!ACTIVE.has(job.status)) open.delete(jobId);
          } else {
            unclaimed++;
            if (!ACTIVE.has(await jobStatus(sql, jobId))) open.delete(jobId);
            else await delay(10);
          }
        }
      } finally {
        await sql.end();
      }
    };
    // The children work alone for a moment, so each holds a lease when it is frozen past
    // it; the ten in-process workers start then and must take those jobs over.
    await delay(100);
    for (const child of children) child.signal("SIGSTOP");
    const thaw = (async () => {
      await delay(1_600);
      for (const child of children) child.signal("SIGCONT");
    })();
    await Promise.all([...Array.from({ length: 10 }, worker), thaw]);
    const exits = await Promise.all(children.map((c) => c.done));

    let childPages = 0;
    for (const child of children) {
      for (const run of runEvents(child.events)) {
        for (const job of run.jobs) {
          pages.set(job.id, pages.get(job.id)! + job.pages);
          childPages += job.pages;
        }
        invocations++;
        if (run.jobs.length === 0) unclaimed++;
      }
      fencedOut += child.events.filter((e) => e.kind === "job_fenced_out").length;
    }

    const checks: JobCheck[] = [];
    for (const [i, plan] of plans.entries()) {
      checks.push(
        await checkJob(db.sql, jobIds[i], {
          seen: plan.seen,
          heldElsewhere: plan.heldElsewhere,
          total: plan.calls.length,
          pages: pagesFor(plan.seen.length, PAGE),
          pagesRecorded: pages.get(jobIds[i]),
        }),
      );
    }
    // The shared calls: each imported by exactly one of the two jobs, skipped by the other.
    const [a, b] = [checks[3].job, checks[4].job];
    if (a.skipped_calls + b.skipped_calls !== shared.length) {
      checks[3].mismatches.push(
        `shared calls skipped ${a.skipped_calls} + ${b.skipped_calls} (expected ${shared.length})`,
      );
    }
    const requests = fakes.reduce((n, f) => n + f.requests.length, 0);
    const walkPages = plans.reduce((n, p) => n + pagesFor(p.seen.length, PAGE), 0);
    const recorded = [...pages.values()].reduce((n, p) => n + p, 0);
    const expectedCalls = plans.reduce((n, p) => n + p.seen.length, 0) - shared.length;
    await recordFigures({
      suite: "concurrency",
      test: "12 workers (10 in-process, 2 processes frozen past their lease) over 6 jobs",
      cases: jobIds.length,
      faults: children.length,
      calls_expected: expectedCalls,
      calls_lost: checks.reduce((n, c) => n + c.lost, 0),
      calls_duplicated: checks.reduce((n, c) => n + c.duplicated, 0),
      counter_mismatches: checks.reduce((n, c) => n + c.mismatches.length, 0),
      notes: {
        workers: 12,
        invocations,
        claims_refused: unclaimed,
        fenced_out: fencedOut,
        page_steps_recorded: recorded,
        page_steps_by_child_processes: childPages,
        walk_pages: walkPages,
        ultravox_requests: requests,
      },
    }, started);

    for (const [i, check] of checks.entries()) {
      assert.equal(check.lost, 0, `job ${i}: calls lost`);
      assert.equal(check.duplicated, 0, `job ${i}: calls duplicated`);
      assert.deepEqual(check.mismatches, [], `job ${i}`);
    }
    assert.equal(recorded, walkPages, "successful page steps = pages of the walks");
    assert.ok(requests >= walkPages);
    for (const exit of exits) assert.equal(exit.code, 0, exit.stderr);
  } finally {
    await restoreCron();
  }
});

Deno.test("a worker frozen past its lease is fenced out when it wakes: its page never lands", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(60);
  await using fake = await startFakeUltravox({ calls, latencyMs: 60 });
  const procSql = dbSql(3);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE, SYNC_LEASE_SECONDS: 1 });
    const child = spawnProcessor([jobId], config);
    try {
      await waitFor(
        "page 2 committed",
        async () => (await loadJob(db.sql, jobId)).processed_calls >= 2 * PAGE,
        { intervalMs: 1 },
      );
      child.signal("SIGSTOP");
      await waitForLeaseExpiry(db.sql, jobId);
      // A statement the child had sent before it froze has finished by now.
      const frozenAt = (await loadJob(db.sql, jobId)).processed_calls;
      // Another worker takes the job over and finishes it while the first one sleeps.
      fake.latencyMs = 0;
      const takeover = await runUntilDone({ sql: procSql, config, sleep: noSleep }, jobId);
      child.signal("SIGCONT");
      const exit = await child.done;
      const runs = runEvents(child.events);
      const childPages = runs.reduce((n, r) => n + (r.jobs[0]?.pages ?? 0), 0);
      const fenced = child.events.filter((e) => e.kind === "job_fenced_out").length;

      const check = await checkJob(db.sql, jobId, {
        seen: calls,
        total: calls.length,
        pages: pagesFor(calls.length, PAGE),
        pagesRecorded: childPages + takeover.pages,
      });
      await recordFigures({
        suite: "concurrency",
        test: "a worker frozen past its lease wakes up after a takeover",
        cases: 1,
        faults: 1,
        calls_expected: calls.length,
        calls_lost: check.lost,
        calls_duplicated: check.duplicated,
        counter_mismatches: check.mismatches.length,
        notes: {
          pages_before_freeze: frozenAt / PAGE,
          frozen_worker_pages: childPages,
          takeover_pages: takeover.pages,
          frozen_worker_fenced_out: fenced,
        },
      }, started);
      assert.equal(exit.code, 0, exit.stderr);
      assert.equal(fenced, 1, "the woken worker's page step was refused by the fence");
      assert.equal(childPages, frozenAt / PAGE, "the woken worker recorded nothing more");
      assert.equal(takeover.pages, calls.length / PAGE - frozenAt / PAGE);
      assert.equal(check.lost, 0);
      assert.equal(check.duplicated, 0);
      assert.deepEqual(check.mismatches, []);
    } finally {
      child.kill();
      await child.done;
    }
  } finally {
    await procSql.end();
    await restoreCron();
  }
});
