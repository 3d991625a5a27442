// One invocation and several: whole ranges, page and time budgets, the prefetch.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import {
  account,
  assertRowsMatch,
  counters,
  cursors,
  harness,
  holdCalls,
  ids,
  importedIds,
  jobState,
  until,
} from "../../support/engine.ts";

Deno.test("one invocation imports a whole range: completed, exact counters, every column as served", async () => {
  await using h = await harness({ calls: account(23) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { to: "2026-11-01T00:00:00.000000Z" });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 23, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "completed",
    processed_calls: 23,
    imported_calls: 23,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 23,
  });
  assert.equal(job.cursor, null);
  assert.equal(job.error_message, null);
  assert.equal(job.has_last_error_at, false);
  assert.equal(job.has_started_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.lease_holder, null);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
  await assertRowsMatch(h.sql, jobId, agencyId, h.fake.calls);

  // Three requests, each with the job's stored bounds and the cursor of the page before.
  assert.equal(h.fake.requests.length, 3);
  for (const r of h.fake.requests) {
    assert.equal(r.path, "/api/calls");
    assert.equal(r.keyOk, true);
    assert.deepEqual(
      { ...r.query, cursor: undefined },
      {
        toDate: "2026-11-01T00:00:00.000000Z",
        sort: "-created",
        pageSize: "10",
        cursor: undefined,
      },
    );
  }
  assert.equal(h.fake.requests[0].query.cursor, undefined);
  assert.equal(new Set(cursors(h.fake)).size, 3);
  assert.deepEqual(h.sleeps, []);
});

Deno.test("an empty range completes on its first page with total_calls 0", async () => {
  await using h = await harness({ calls: account(5, { end: "2026-11-01T00:00:00Z", days: 1 }) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, {
    from: "2026-10-01T00:00:00.000000Z",
    to: "2026-10-02T00:00:00.000000Z",
  });

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 0, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 0,
    imported_calls: 0,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 0,
  });
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].query.fromDate, "2026-10-01T00:00:00.000000Z");
});

// ---- a walk over many invocations ------------------------------------------------------------

for (const perRun of [1, 2, 3]) {
  Deno.test(`a walk split ${perRun} page(s) per invocation ends as one invocation would, each continuing where the last released`, async () => {
    await using h = await harness({ calls: account(23) });
    const heldBy = await h.agency({ key: null });
    await holdCalls(h.sql, heldBy, [h.fake.calls[3], h.fake.calls[17]]);
    const PAGE_SIZE = 5; // 23 calls: pages of 5, 5, 5, 5, 3

    // The reference: one invocation, in an agency removed afterwards (its calls with it).
    const refAgency = await h.agency();
    const refJob = await h.job(refAgency);
    const ref = await h.run(refJob, { SYNC_PAGE_SIZE: PAGE_SIZE });
    assert.deepEqual(ref.jobs, [
      {
        id: refJob,
        status: "completed",
        pages: 5,
        imported: 21,
        skipped: 2,
        refreshed: 0,
        failed: 0,
      },
    ]);
    const refState = counters(await jobState(h.sql, refJob));
    const refIds = await importedIds(h.sql, refJob);
    const refQueries = h.fake.requests.map((r) => r.query);
    assert.equal(refQueries.length, 5);
    await h.sql`delete from public.agencies where id = ${refAgency}`;
    h.fake.requests.length = 0;

    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const invocations = Math.ceil(5 / perRun);
    for (let i = 1; i <= invocations; i++) {
      const before = await jobState(h.sql, jobId);
      const firstRequest = h.fake.requests.length;
      const run = await h.run(jobId, { SYNC_PAGE_SIZE: PAGE_SIZE, SYNC_MAX_PAGES_PER_RUN: perRun });
      const last = i === invocations;
      const pages = last ? 5 - perRun * (invocations - 1) : perRun;
      assert.equal(run.jobs.length, 1, `invocation ${i} claimed the job at once`);
      assert.equal(run.jobs[0].status, last ? "completed" : "in_progress");
      assert.equal(run.jobs[0].pages, pages);
      // It starts from the cursor the last invocation saved, and requests each page once.
      assert.equal(h.fake.requests[firstRequest].query.cursor ?? null, before.cursor);
      assert.equal(h.fake.requests.length, firstRequest + pages);
      const after = await jobState(h.sql, jobId);
      if (!last) {
        assert.equal(after.lease_holder, null, "the lease is released");
        assert.equal(after.lease_expires_at, null);
        assert.notEqual(after.cursor, null);
      }
    }

    assert.deepEqual(counters(await jobState(h.sql, jobId)), refState);
    assert.deepEqual(await importedIds(h.sql, jobId), refIds);
    assert.deepEqual(h.fake.requests.map((r) => r.query), refQueries);
    assert.equal(new Set(cursors(h.fake)).size, 5, "no page requested twice");
    assert.deepEqual((await h.run(jobId)).jobs, [], "a completed job cannot be claimed");
  });
}

Deno.test("the time budget stops a walk after the page taken before the deadline", async () => {
  // Each page takes 600 ms; the budget of 1000 ms allows page 2 (taken at ~600 ms as the
  // prefetch) but not page 3 (due at ~1200 ms).
  await using h = await harness({ calls: account(12), latencyMs: 600 });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 4, SYNC_TIME_BUDGET_MS: 1000 });

  assert.deepEqual(run.jobs, [
    {
      id: jobId,
      status: "in_progress",
      pages: 2,
      imported: 8,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
  assert.equal(h.fake.requests.length, 2);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.lease_holder, null);
  assert.equal(job.processed_calls, 8);
});

// ---- skipped calls ---------------------------------------------------------------------------

Deno.test("the next page is requested while the previous page's write is still waiting", async () => {
  await using h = await harness({ calls: account(12) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  // Page 1 is slow, so the test can lock the job row after the claim and before the write.
  h.fake.faults.push({ kind: "latency", ms: 300 });

  const running = h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  await until("page 1 is requested", () => h.fake.requests.length === 1);
  let unlock!: () => void;
  const locked = Promise.withResolvers<void>();
  const holding = h.sql.begin(async (tx) => {
    await tx`select 1 from public.historical_sync_jobs where id = ${jobId} for update`;
    locked.resolve();
    await new Promise<void>((r) => unlock = r);
  });
  await locked.promise;

  // Page 1's write now waits on the row lock; page 2 is requested all the same.
  await until("page 2 is requested", () => h.fake.requests.length === 2);
  assert.equal((await jobState(h.sql, jobId)).processed_calls, 0);
  assert.deepEqual(await importedIds(h.sql, jobId), []);
  // But never two pages ahead: page 3's cursor is only known once page 2 is read.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(h.fake.requests.length, 2);

  unlock();
  await holding;
  const run = await running;
  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 12, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests.length, 3);
});

// ---- cancel ----------------------------------------------------------------------------------
