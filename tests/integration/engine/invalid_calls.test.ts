// Objects that cannot be stored count as failed; the rest of the page imports.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import { account, counters, harness, ids, importedIds, jobState } from "../../support/engine.ts";

Deno.test("invalid objects in a page count as failed, the rest imports, error_message says how many and why", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  // Page 2 (the last) gets 3 bad objects among its 5 calls: missing callId, created
  // "yesterday", endReason "exploded" (INVALID_CALL_DEFECTS), the last of them the latest.
  h.fake.faults.push({ kind: "pass" }, { kind: "invalidCalls", count: 3 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 15, skipped: 0, refreshed: 0, failed: 3 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(counters(job), {
    status: "completed",
    processed_calls: 18,
    imported_calls: 15,
    skipped_calls: 0,
    failed_calls: 3,
    total_calls: 15,
  });
  assert.match(
    job.error_message ?? "",
    /^3 call\(s\) failed validation and were not imported \(latest: badca11d-0000-4000-8000-000000000003: endReason: .+\)$/,
  );
  assert.equal(job.has_last_error_at, true);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

Deno.test({
  name: "failures on an earlier page are still explained when the job completes",
  fn: async () => {
    await using h = await harness({ calls: account(15) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    h.fake.faults.push({ kind: "invalidCalls", count: 3 });

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

    assert.deepEqual(run.jobs, [
      {
        id: jobId,
        status: "completed",
        pages: 2,
        imported: 15,
        skipped: 0,
        refreshed: 0,
        failed: 3,
      },
    ]);
    assert.match(
      (await jobState(h.sql, jobId)).error_message ?? "",
      /^3 call\(s\) failed validation and were not imported \(latest: badca11d-0000-4000-8000-000000000003: endReason: .+\)$/,
    );
  },
});

// Postgres text and jsonb cannot hold U+0000 (22P05) nor a lone surrogate (22P02): one such
// string would fail the whole page's insert on every retry, so such a call fails validation
// like any other bad object and the walk goes on.
Deno.test({
  name:
    "a call with a NUL character fails validation; the rest of its page imports and the walk goes on",
  fn: async () => {
    await using h = await harness({ calls: account(8) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const c = h.fake.calls;
    c[1].summary = "The caller said \u0000 and hung up.";
    c[6].systemPrompt = "prompt\u0000"; // on page 2, kept only in raw

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

    assert.deepEqual(run.jobs, [
      {
        id: jobId,
        status: "completed",
        pages: 2,
        imported: 6,
        skipped: 0,
        refreshed: 0,
        failed: 2,
      },
    ]);
    const job = await jobState(h.sql, jobId);
    assert.deepEqual(
      [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
      [8, 6, 0, 2],
    );
    assert.match(
      job.error_message ?? "",
      new RegExp(
        `^2 call\\(s\\) failed validation and were not imported \\(latest: ${
          c[6].callId
        }: systemPrompt: .*NUL.*\\)$`,
      ),
    );
    assert.deepEqual(await importedIds(h.sql, jobId), ids(c.filter((_, i) => i !== 1 && i !== 6)));
  },
});

Deno.test({
  name: "a call with a lone surrogate fails validation; the rest of its page imports",
  fn: async () => {
    await using h = await harness({ calls: account(8) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const c = h.fake.calls;
    c[6].shortSummary = "Half an emoji: \uD83D";

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

    assert.deepEqual(run.jobs, [
      {
        id: jobId,
        status: "completed",
        pages: 2,
        imported: 7,
        skipped: 0,
        refreshed: 0,
        failed: 1,
      },
    ]);
    assert.match(
      (await jobState(h.sql, jobId)).error_message ?? "",
      new RegExp(`\\(latest: ${c[6].callId}: shortSummary: .+\\)$`),
    );
    assert.deepEqual(await importedIds(h.sql, jobId), ids(c.filter((_, i) => i !== 6)));
  },
});

// ---- several jobs in one invocation ----------------------------------------------------------
