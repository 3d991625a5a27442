// Cancel while a page is in flight: nothing lands after it.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import {
  account,
  counters,
  harness,
  ids,
  importedIds,
  jobState,
  presentIds,
  until,
} from "../../support/engine.ts";

Deno.test("cancel while a page is in flight keeps that page and every later one out of calls", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "pass" }, { kind: "latency", ms: 800 });

  const running = h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  await until(
    "page 1 is written",
    async () => (await jobState(h.sql, jobId)).processed_calls === 5,
  );
  await until("page 2 is in flight", () => h.fake.requests.length === 2);
  const cursorAfterPage1 = (await jobState(h.sql, jobId)).cursor;
  const cancelled = await h.sql`select status from public.cancel_sync_job(${jobId})`;
  assert.deepEqual(cancelled.map((r) => r.status), ["cancelled"]);

  const run = await running;
  assert.deepEqual(run.jobs, [
    { id: jobId, status: "cancelled", pages: 1, imported: 5, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "cancelled",
    processed_calls: 5,
    imported_calls: 5,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 15,
  });
  assert.equal(job.cursor, cursorAfterPage1);
  assert.equal(job.lease_holder, null);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 5)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(5))), []);
  // Page 3 was prefetched when page 2 arrived, before its write found the job cancelled.
  assert.equal(h.fake.requests.length, 3);

  assert.deepEqual((await h.run(jobId)).jobs, [], "a cancelled job cannot be claimed");
  assert.equal(h.fake.requests.length, 3);
});

// ---- errors ----------------------------------------------------------------------------------
