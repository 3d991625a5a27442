// The date range: both bounds inclusive to the microsecond, nothing outside counted.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import { callAt } from "../../../tools/stand_in_ultravox/accounts.ts";
import {
  assertRowsMatch,
  harness,
  ids,
  importedIds,
  jobState,
  presentIds,
} from "../../support/engine.ts";

const FROM = "2026-10-01T00:00:00.000000Z";
const TO = "2026-10-31T23:59:59.999999Z";

function rangeCalls() {
  return {
    afterTo: callAt("2026-11-01T00:00:00.000000Z"),
    atTo: callAt(TO),
    inside: [
      callAt("2026-10-20T08:00:00.000001Z"),
      callAt("2026-10-10T12:34:56.789012Z"),
      callAt("2026-10-01T00:00:00.000001Z"),
    ],
    atFrom: callAt(FROM),
    beforeFrom: callAt("2026-09-30T23:59:59.999999Z"),
  };
}

Deno.test("both bounds are inclusive to the microsecond; a microsecond outside is not imported", async () => {
  const r = rangeCalls();
  const all = [r.afterTo, r.atTo, ...r.inside, r.atFrom, r.beforeFrom];
  await using h = await harness({ calls: all });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { from: FROM, to: TO });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 2 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 5, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests[0].query.fromDate, FROM);
  assert.equal(h.fake.requests[0].query.toDate, TO);
  assert.equal((await jobState(h.sql, jobId)).total_calls, 5);
  const inRange = [r.atTo, ...r.inside, r.atFrom];
  assert.deepEqual(await importedIds(h.sql, jobId), ids(inRange));
  await assertRowsMatch(h.sql, jobId, agencyId, inRange);
  assert.deepEqual(await presentIds(h.sql, ids([r.afterTo, r.beforeFrom])), []);
});

Deno.test("calls outside the range are neither imported nor counted when the source returns them anyway", async () => {
  const r = rangeCalls();
  const all = [r.afterTo, r.atTo, ...r.inside, r.atFrom, r.beforeFrom];
  await using h = await harness({ calls: all });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { from: FROM, to: TO });
  // A source that ignores the date filters.
  const unfiltered: typeof fetch = (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    url.searchParams.delete("fromDate");
    url.searchParams.delete("toDate");
    return fetch(url, init);
  };

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 3 }, { fetch: unfiltered });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 3, imported: 5, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.equal(h.fake.requests[0].query.toDate, undefined, "the source saw no bounds");
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [5, 5, 0, 0],
  );
  assert.equal(job.total_calls, 7, "total_calls is what the source reported");
  assert.deepEqual(await importedIds(h.sql, jobId), ids([r.atTo, ...r.inside, r.atFrom]));
  assert.deepEqual(await presentIds(h.sql, ids([r.afterTo, r.beforeFrom])), []);
});

// ---- prefetch --------------------------------------------------------------------------------
