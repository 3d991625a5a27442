// Calls already present count as skipped; max_calls cuts exactly at the cap.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import {
  account,
  counters,
  harness,
  holdCalls,
  ids,
  importedIds,
  jobState,
  presentIds,
} from "../../support/engine.ts";

Deno.test("calls already in calls count as skipped, also when another agency holds them", async () => {
  await using h = await harness({ calls: account(12) });
  const agencyId = await h.agency();
  const other = await h.agency({ key: null });
  const calls = h.fake.calls;
  const ownHeld = [calls[0], calls[6]];
  const otherHeld = [calls[4], calls[5], calls[11]];
  await holdCalls(h.sql, agencyId, ownHeld);
  await holdCalls(h.sql, other, otherHeld);
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 7, skipped: 5, refreshed: 0, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 12,
    imported_calls: 7,
    skipped_calls: 5,
    failed_calls: 0,
    total_calls: 12,
  });
  const held = new Set(ids([...ownHeld, ...otherHeld]));
  assert.deepEqual(await importedIds(h.sql, jobId), ids(calls).filter((id) => !held.has(id)));
  // The held rows are untouched: same agency, source and raw.
  const rows = await h.sql<{ id: string; agency_id: string; source: string; raw: unknown }[]>`
    select ultravox_call_id::text as id, agency_id::text, source, raw from public.calls
     where ultravox_call_id = any (${[...held]}::uuid[]) order by 1`;
  assert.deepEqual(
    [...rows],
    [
      ...ownHeld.map((c) => ({ id: c.callId, agency_id: agencyId })),
      ...otherHeld.map((c) => ({ id: c.callId, agency_id: other })),
    ]
      .map((r) => ({ ...r, source: "webhook", raw: { held: true } }))
      .sort((a, b) => a.id < b.id ? -1 : 1),
  );
});

// ---- max_calls -------------------------------------------------------------------------------

Deno.test("max_calls in the middle of a page imports exactly the cap and counts nothing after it", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 13 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 13, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 13,
    imported_calls: 13,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 25,
  });
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 13)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(13))), []);
  // Page 3 was prefetched while page 2 was written, then dropped: nothing of it counts.
  assert.equal(h.fake.requests.length, 3);
});

Deno.test("max_calls at a page boundary completes without counting the next page", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 10 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 10, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.processed_calls, 10);
  assert.equal(job.imported_calls, 10);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 10)));
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(10))), []);
  assert.equal(h.fake.requests.length, 2, "page 2 was prefetched and dropped");
});

Deno.test("max_calls = 1 imports the newest call only", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 1 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 1, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual([job.processed_calls, job.imported_calls, job.skipped_calls], [1, 1, 0]);
  assert.deepEqual(await importedIds(h.sql, jobId), [h.fake.calls[0].callId]);
  assert.deepEqual(await presentIds(h.sql, ids(h.fake.calls.slice(1))), []);
});

Deno.test("a call already present right before the cut is skipped and does not use up the cap; one right after is not counted", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const other = await h.agency({ key: null });
  const c = h.fake.calls;
  // API order: new, new, held, new, held, new… with max_calls 3 the cut falls after c[3].
  await holdCalls(h.sql, other, [c[2], c[4]]);
  const jobId = await h.job(agencyId, { max: 3 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 3, skipped: 1, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [4, 3, 1, 0],
  );
  assert.deepEqual(await importedIds(h.sql, jobId), ids([c[0], c[1], c[3]]));
  assert.deepEqual(await presentIds(h.sql, ids(c.slice(5))), []);
});

Deno.test("max_calls holds across invocations", async () => {
  await using h = await harness({ calls: account(25) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { max: 13 });

  const first = await h.run(jobId, { SYNC_PAGE_SIZE: 10, SYNC_MAX_PAGES_PER_RUN: 1 });
  const second = await h.run(jobId, { SYNC_PAGE_SIZE: 10, SYNC_MAX_PAGES_PER_RUN: 1 });

  assert.deepEqual(first.jobs, [
    {
      id: jobId,
      status: "in_progress",
      pages: 1,
      imported: 10,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
  assert.deepEqual(second.jobs, [
    { id: jobId, status: "completed", pages: 1, imported: 3, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 13)));
  assert.equal((await jobState(h.sql, jobId)).processed_calls, 13);
});

// ---- the range -------------------------------------------------------------------------------
