// Ties of equal `created` at page boundaries (docs/ULTRAVOX.md "Cursor pagination"): Ultravox
// pages as Django REST Framework's CursorPagination does, a position plus an offset among
// calls with the same `created`, and the engine must import every call exactly once.
import assert from "node:assert/strict";
import { account, counters, harness, jobState } from "../../support/engine.ts";

Deno.test("a walk over 10,000 calls with runs of equal created across page boundaries imports every call exactly once", async () => {
  // Runs of 1 to 250 calls sharing one instant, so many straddle the 100-call pages.
  const base = account(10_000, { days: 30 });
  const calls: typeof base = [];
  let i = 0;
  let run = 1;
  while (i < base.length) {
    const created = base[i].created;
    for (let k = 0; k < run && i < base.length; k++, i++) calls.push({ ...base[i], created });
    run = (run * 37) % 251 || 1;
  }
  await using h = await harness({ calls });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId, { to: "2026-11-01T00:00:00.000000Z" });

  let invocations = 0;
  while ((await jobState(h.sql, jobId)).status !== "completed" && invocations < 20) {
    await h.run(jobId, { SYNC_PAGE_SIZE: 100 });
    invocations++;
  }
  assert.deepEqual(counters(await jobState(h.sql, jobId)), {
    status: "completed",
    processed_calls: 10_000,
    imported_calls: 10_000,
    skipped_calls: 0,
    failed_calls: 0,
    total_calls: 10_000,
  });
  const [{ rows, distinct }] = await h.sql<{ rows: number; distinct: number }[]>`
    select count(*)::int as rows, count(distinct ultravox_call_id)::int as distinct
      from public.calls where historical_sync_job_id = ${jobId}::uuid`;
  assert.deepEqual({ rows, distinct }, { rows: 10_000, distinct: 10_000 });
  const [{ missing }] = await h.sql<{ missing: number }[]>`
    select count(*)::int as missing
      from unnest(${calls.map((c) => c.callId)}::uuid[]) as served(id)
     where not exists (select 1 from public.calls c where c.ultravox_call_id = served.id)`;
  assert.equal(missing, 0, "every served call is in calls");
  const ties = calls.filter((c, k) => k > 0 && calls[k - 1].created === c.created).length;
  assert.ok(ties > 5_000, `the account has ${ties} calls tied with the one before`);
});
