// Several jobs in one invocation: each walks its own range, all share one budget.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import { type FakeCall, microsOf } from "../../../tools/stand_in_ultravox/server.ts";
import {
  account,
  assertRowsMatch,
  Harness,
  harness,
  ids,
  importedIds,
  jobState,
} from "../../support/engine.ts";

/** 12 calls on each of 29, 30 and 31 October 2026. */
function threeDays(): FakeCall[] {
  return ["2026-10-30", "2026-10-31", "2026-11-01"].flatMap((next) =>
    account(12, { end: `${next}T00:00:00Z`, days: 1 })
  );
}

/** Three agencies with a job each over one of the three days, claimed before anyone else's. */
async function threeJobs(h: Harness) {
  const days = [
    ["2026-10-29T00:00:00.000000Z", "2026-10-29T23:59:59.999999Z"],
    ["2026-10-30T00:00:00.000000Z", "2026-10-30T23:59:59.999999Z"],
    ["2026-10-31T00:00:00.000000Z", "2026-10-31T23:59:59.999999Z"],
  ];
  const jobs = [];
  for (const [i, [from, to]] of days.entries()) {
    const agencyId = await h.agency();
    // Created "in 1970", so an unrestricted claim takes these three before anyone else's.
    const createdAt = `1970-01-01T00:00:00.00000${i + 1}Z`;
    const jobId = await h.job(agencyId, { from, to, createdAt });
    const served = h.fake.calls.filter((c) =>
      microsOf(c.created)! >= microsOf(from)! && microsOf(c.created)! <= microsOf(to)!
    );
    jobs.push({ agencyId, jobId, served });
  }
  return jobs;
}

Deno.test("three jobs in one invocation each walk their own range to the end, side by side", async () => {
  await using h = await harness({
    calls: threeDays(),
    latencyMs: 150,
  });
  const jobs = await threeJobs(h);
  for (const j of jobs) assert.equal(j.served.length, 12);

  const run = await h.run(undefined, { SYNC_PAGE_SIZE: 4, SYNC_MAX_JOBS_PER_RUN: 3 });

  assert.deepEqual(
    run.jobs.toSorted((a, b) => a.id < b.id ? -1 : 1),
    jobs.map((j) => ({
      id: j.jobId,
      status: "completed",
      pages: 3,
      imported: j.served.length,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    })).toSorted((a, b) => a.id < b.id ? -1 : 1),
  );
  for (const j of jobs) {
    assert.deepEqual(await importedIds(h.sql, j.jobId), ids(j.served));
    await assertRowsMatch(h.sql, j.jobId, j.agencyId, j.served);
  }
  // All three walks started before any first page came back.
  assert.deepEqual(h.fake.requests.slice(0, 3).map((r) => r.query.cursor ?? null), [
    null,
    null,
    null,
  ]);
  assert.deepEqual(
    new Set(h.fake.requests.slice(0, 3).map((r) => r.query.fromDate)),
    new Set(jobs.map((_, i) => `2026-10-${29 + i}T00:00:00.000000Z`)),
  );
});

Deno.test("jobs in one invocation share its page budget", async () => {
  await using h = await harness({
    calls: threeDays(),
    latencyMs: 100,
  });
  const jobs = await threeJobs(h);
  for (const j of jobs) assert.equal(j.served.length, 12);

  const run = await h.run(undefined, {
    SYNC_PAGE_SIZE: 3,
    SYNC_MAX_JOBS_PER_RUN: 3,
    SYNC_MAX_PAGES_PER_RUN: 4,
  });

  assert.deepEqual(run.jobs.map((j) => j.id).sort(), jobs.map((j) => j.jobId).sort());
  assert.equal(run.jobs.reduce((sum, j) => sum + j.pages, 0), 4);
  for (const j of run.jobs) {
    assert.equal(j.status, "in_progress");
    assert.ok(j.pages === 1 || j.pages === 2, `each job walked 1 or 2 pages, got ${j.pages}`);
    assert.equal(j.imported, j.pages * 3);
    const state = await jobState(h.sql, j.id);
    assert.equal(state.processed_calls, j.pages * 3);
    assert.equal(state.lease_holder, null);
  }
  assert.equal(h.fake.requests.length, 4);
});
