// Objects that cannot be stored count as failed; the rest of the page imports. A call fails
// only when it cannot be stored at all (no uuid callId, no readable `created`, text Postgres
// cannot hold); a field of an unexpected shape is stored as null and reported, not failed
// (docs/ARCHITECTURE.md §5 "What a call needs").
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import {
  account,
  AS_UTC_ISO,
  counters,
  harness,
  ids,
  importedIds,
  jobState,
} from "../../support/engine.ts";
import {
  FUTURE_END_REASON,
  INVALID_CALL_DEFECTS,
  ODD_CALL_FIELDS,
} from "../../../tools/stand_in_ultravox/server.ts";

// The invalidCalls fault's third object (serial 2) is the latest of three, and its reason.
const THIRD_INVALID = "badca11d-0000-4000-8000-000000000003";
const THIRD_REASON = INVALID_CALL_DEFECTS[2].reasonStartsWith; // created without an offset
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const THREE_FAILED = new RegExp(
  `^3 call\\(s\\) failed validation and were not imported \\(latest: ${THIRD_INVALID}: ${
    escape(THIRD_REASON)
  } .+\\)$`,
);

Deno.test("invalid objects in a page count as failed, the rest imports, error_message says how many and why", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  // Page 2 (the last) gets 3 bad objects among its 5 calls: missing callId, created not a
  // date-time, created without an offset (INVALID_CALL_DEFECTS), the last of them the latest.
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
  assert.match(job.error_message ?? "", THREE_FAILED);
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
    assert.match((await jobState(h.sql, jobId)).error_message ?? "", THREE_FAILED);
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

// An odd field is not a failure: the call imports with that column null (or its default), the
// whole object stays in raw, an unknown endReason is kept as text, and the engine state counts
// the calls with unreadable fields and names the fields.
Deno.test({
  name:
    "odd calls import with their unexpected fields stored as null; unreadable_calls and unreadable_fields count them exactly",
  fn: async () => {
    // Older than the fault's odd calls (DEFAULT_BAD_CREATED, 2026-10-01), so page 1 is still
    // the newest and the walk stays newest first.
    await using h = await harness({ calls: account(15, { end: "2026-09-30T00:00:00Z" }) });
    const agencyId = await h.agency();
    const jobId = await h.job(agencyId);
    const n = ODD_CALL_FIELDS.length; // 5, the first (unknown endReason) readable
    h.fake.faults.push({ kind: "oddCalls", count: n });

    const run = await h.run(jobId, { SYNC_PAGE_SIZE: 10 });

    // Page 1: 10 calls + 5 odd ones; page 2: 5 calls. Nothing fails.
    assert.deepEqual(run.jobs, [
      {
        id: jobId,
        status: "completed",
        pages: 2,
        imported: 20,
        skipped: 0,
        refreshed: 0,
        failed: 0,
      },
    ]);
    const job = await jobState(h.sql, jobId);
    assert.deepEqual(counters(job), {
      status: "completed",
      processed_calls: 20,
      imported_calls: 20,
      skipped_calls: 0,
      failed_calls: 0,
      total_calls: 15, // a fault's objects are not the account's
    });
    assert.equal(job.error_message, null);
    assert.equal(job.has_last_error_at, false);

    const [state] = await h.sql<
      { unreadable_calls: number; unreadable_fields: string[]; refreshed_calls: number }[]
    >`
      select unreadable_calls, unreadable_fields, refreshed_calls
        from public.historical_sync_job_leases where job_id = ${jobId}`;
    assert.deepEqual(state, {
      unreadable_calls: 4,
      unreadable_fields: ["agentId", "billedDuration", "metadata", "recordingEnabled"],
      refreshed_calls: 0,
    });
    assert.deepEqual(
      state.unreadable_fields,
      [...new Set(ODD_CALL_FIELDS.flatMap((f) => f.unreadable))].sort(),
    );
    assert.equal(state.unreadable_calls, ODD_CALL_FIELDS.filter((f) => f.unreadable.length).length);

    // The odd calls' rows: the unreadable columns null (or what of them is readable), raw whole.
    const odd = await h.sql<Record<string, unknown>[]>`
      select ultravox_call_id::text as id, ultravox_agent_id::text as agent_id, end_reason,
             billed_duration_seconds::text as billed, metadata, recording_enabled,
             to_char(created_at at time zone 'UTC', ${h.sql.unsafe(AS_UTC_ISO)}) as created,
             raw
        from public.calls
       where historical_sync_job_id = ${jobId} and ultravox_call_id::text like '0ddca11d-%'
       order by ultravox_call_id`;
    assert.equal(odd.length, n);
    const byField = Object.fromEntries(ODD_CALL_FIELDS.map((f, i) => [f.field, odd[i]]));
    assert.equal(byField.endReason.end_reason, FUTURE_END_REASON);
    assert.equal(byField.billedDuration.billed, null);
    assert.equal((byField.billedDuration.raw as Record<string, unknown>).billedDuration, "61");
    assert.equal(byField.agentId.agent_id, null);
    // Of a metadata object with a non-string value, the string entries are kept.
    assert.deepEqual(byField.metadata.metadata, { source: "web" });
    assert.deepEqual((byField.metadata.raw as Record<string, unknown>).metadata, {
      source: "web",
      attempt: 2,
    });
    assert.equal(byField.recordingEnabled.recording_enabled, false);
    assert.equal((byField.recordingEnabled.raw as Record<string, unknown>).recordingEnabled, "yes");
    for (const row of odd) {
      assert.equal(row.created, "2026-10-01T12:00:00.000001Z");
      assert.equal(row.billed === null, row === byField.billedDuration, `billed of ${row.id}`);
    }
    // Every call of the account imported too.
    const all = await importedIds(h.sql, jobId);
    assert.deepEqual(all.filter((id) => !id.startsWith("0ddca11d-")), ids(h.fake.calls));
  },
});
