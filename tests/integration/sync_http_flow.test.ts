// A sync the way a dashboard and the backend drive it, through the four functions' handlers,
// with the real engine, the real local Postgres and the Ultravox stand-in: start → process
// (one page per invocation, as budget-bound ticks would) → status after each → completed;
// and a cancel through the function in the middle of a walk.
import assert from "node:assert/strict";
import { callAt } from "../../tools/stand_in_ultravox/accounts.ts";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";
import { makeHandler as startHandler } from "../../supabase/functions/start-historical-sync/index.ts";
import { makeHandler as processHandler } from "../../supabase/functions/process-historical-sync/index.ts";
import { makeHandler as statusHandler } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as cancelHandler } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { TestDb, testSql } from "../support/db.ts";
import {
  DEFAULT_API_KEY,
  type FakeCall,
  type FakeUltravox,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { call, functionRequest, ISO_MICROS, type Reply } from "../support/requests.ts";
import { secretKeyHeaders, userHeaders, userToken } from "../support/tokens.ts";

/** October 2026 as bare dates cover it, plus one call a microsecond outside at each end. */
function october() {
  const inside = [
    callAt("2026-10-31T23:59:59.999999Z"), // the last microsecond of date_to "2026-10-31"
    ...Array.from(
      { length: 10 },
      (_, i) => callAt(`2026-10-${String(30 - i * 2)}T12:00:00.000000Z`),
    ),
    callAt("2026-10-01T00:00:00.000000Z"), // the first microsecond of date_from "2026-10-01"
  ];
  return {
    inside,
    outside: [callAt("2026-11-01T00:00:00.000000Z"), callAt("2026-09-30T23:59:59.999999Z")],
  };
}

interface Flow {
  db: TestDb;
  fake: FakeUltravox;
  agencyId: string;
  start(body: Record<string, unknown>): Promise<Reply>;
  process(jobId: string): Promise<Reply>;
  status(jobId: string): Promise<Reply>;
  cancel(jobId: string): Promise<Reply>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function flow(
  calls: FakeCall[],
  // One walk per job unless a test asks for slices; pages of 5, one page per invocation.
  settings: Partial<Config> = { SYNC_SLICES: 1 },
): Promise<Flow> {
  const db = await TestDb.open();
  const engineSql = testSql();
  const fake = await startFakeUltravox({ calls });
  const config: Config = {
    ...loadConfig(),
    ULTRAVOX_API_BASE: fake.baseUrl,
    SYNC_PAGE_SIZE: 5,
    SYNC_MAX_PAGES_PER_RUN: 1,
    ...settings,
  };
  const agency = await db.createAgency({
    members: { owner: "owner", viewer: "member" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  const owner = userHeaders(await userToken(agency.users.owner));
  const viewer = userHeaders(await userToken(agency.users.viewer));
  const now = () => new Date();
  const kicked: string[] = [];
  const start = startHandler({ sql: db.sql, config, now, kick: (id) => void kicked.push(id) });
  const proc = processHandler({
    sql: db.sql,
    config,
    process: (opts) =>
      processHistoricalSync({
        sql: engineSql,
        config,
        sleep: () => Promise.resolve(),
        log: () => {},
      }, opts),
  });
  const status = statusHandler({ sql: db.sql, config, now });
  const cancel = cancelHandler({ sql: db.sql, config, now });
  return {
    db,
    fake,
    agencyId: agency.id,
    async start(body) {
      const reply = await call(
        start,
        functionRequest("start-historical-sync", body, { headers: owner }),
      );
      if (reply.status === 201) assert.deepEqual(kicked.splice(0), [reply.body.job.id]);
      return reply;
    },
    process: (jobId) =>
      call(
        proc,
        functionRequest("process-historical-sync", { job_id: jobId }, {
          headers: secretKeyHeaders(),
        }),
      ),
    status: (jobId) =>
      call(
        status,
        functionRequest("get-sync-status", undefined, {
          method: "GET",
          query: `job_id=${jobId}`,
          headers: viewer,
        }),
      ),
    cancel: (jobId) =>
      call(
        cancel,
        functionRequest("cancel-historical-sync", { job_id: jobId }, { headers: owner }),
      ),
    async [Symbol.asyncDispose]() {
      try {
        await fake.close();
      } finally {
        await engineSql.end({ timeout: 5 });
        await db.close();
      }
    },
  };
}

Deno.test("an uncapped job walks as 4 slices at once: contiguous exact bounds, each call once, slices in the view", async () => {
  const { inside, outside } = october();
  await using f = await flow([...inside, ...outside], {
    SYNC_SLICES: 4,
    SYNC_MAX_PAGES_PER_RUN: 100,
  });
  const started = await f.start({
    agency_id: f.agencyId,
    date_from: "2026-10-01",
    date_to: "2026-10-31",
    max_calls: null,
  });
  assert.equal(started.status, 201);
  const jobId: string = started.body.job.id;
  assert.deepEqual(started.body.job.slices, { total: 4, done: 0 });

  // One invocation claims the 4 slices (SYNC_MAX_JOBS_PER_RUN = 4) and walks them together.
  const run = await f.process(jobId);
  assert.equal(run.status, 200);
  // Every request Ultravox answered became one page step: nothing fetched was dropped.
  const pages = f.fake.requests.length;
  assert.deepEqual(run.body.jobs, [
    { id: jobId, status: "completed", pages, imported: 12, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = (await f.status(jobId)).body.job;
  assert.equal(job.status, "completed");
  assert.equal(job.imported_calls, 12);
  assert.equal(job.processed_calls, 12);
  assert.equal(job.total_calls, 12); // the sum of the slices' first totals
  assert.deepEqual(job.slices, { total: 4, done: 4 });

  // The first request of each slice: bounds that tile the job's range, microsecond-exact.
  const firsts = f.fake.requests.filter((r) => !r.query.cursor)
    .map((r) => ({ from: r.query.fromDate, to: r.query.toDate }))
    .sort((a, b) => a.to.localeCompare(b.to));
  assert.equal(firsts.length, 4);
  assert.equal(firsts[0].from, "2026-10-01T00:00:00.000000Z");
  assert.equal(firsts[3].to, "2026-10-31T23:59:59.999999Z");
  for (let i = 1; i < 4; i++) {
    const micros = (iso: string) => BigInt(Date.parse(iso)) * 1000n + BigInt(iso.slice(23, 26));
    assert.equal(
      micros(firsts[i].from) - micros(firsts[i - 1].to),
      1n,
      `slice ${i} ends 1 µs before ${i + 1} starts`,
    );
  }
  const rows = await f.db.sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where agency_id = ${f.agencyId} order by created_at desc`;
  assert.deepEqual(rows.map((r) => r.id), inside.map((c) => c.callId));
});

Deno.test("started with bare dates, processed a page per tick, a job reports its way to completed", async () => {
  const { inside, outside } = october();
  await using f = await flow([...inside, ...outside]);

  const started = await f.start({
    agency_id: f.agencyId,
    date_from: "2026-10-01",
    date_to: "2026-10-31",
    max_calls: null,
  });
  assert.equal(started.status, 201);
  const jobId: string = started.body.job.id;
  assert.equal(started.body.job.status, "pending");
  assert.equal(started.body.job.date_from, "2026-10-01T00:00:00.000000Z");
  assert.equal(started.body.job.date_to, "2026-10-31T23:59:59.999999Z");

  // 12 calls in range, pages of 5: three ticks.
  const fractions: number[] = [];
  const expected = [
    { status: "in_progress", pages: 1, imported: 5 },
    { status: "in_progress", pages: 1, imported: 5 },
    { status: "completed", pages: 1, imported: 2 },
  ];
  for (const [i, want] of expected.entries()) {
    const tick = await f.process(jobId);
    assert.equal(tick.status, 200);
    assert.deepEqual(tick.body.jobs, [{ id: jobId, skipped: 0, refreshed: 0, failed: 0, ...want }]);
    const view = await f.status(jobId);
    assert.equal(view.status, 200);
    const job = view.body.job;
    assert.equal(job.status, want.status);
    assert.equal(job.imported_calls, 5 * i + want.imported);
    assert.equal(job.processed_calls, job.imported_calls);
    assert.equal(job.total_calls, 12);
    assert.equal("cursor" in job, false);
    assert.match(job.started_at, ISO_MICROS);
    fractions.push(job.progress.fraction);
  }
  assert.deepEqual(fractions.slice(0, 2), [5 / 12, 10 / 12]);
  assert.equal(fractions[2], 1);

  // The engine asked for exactly the stored bounds, and imported exactly the calls inside them.
  assert.equal(f.fake.requests[0].query.fromDate, "2026-10-01T00:00:00.000000Z");
  assert.equal(f.fake.requests[0].query.toDate, "2026-10-31T23:59:59.999999Z");
  const rows = await f.db.sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where agency_id = ${f.agencyId} order by created_at desc`;
  assert.deepEqual(rows.map((r) => r.id), inside.map((c) => c.callId));
  // A finished job is no longer claimed; a new start is allowed again.
  assert.deepEqual((await f.process(jobId)).body.jobs, []);
  const again = await f.start({ agency_id: f.agencyId });
  assert.equal(again.status, 201);
  assert.equal((await f.cancel(again.body.job.id)).status, 200);
});

Deno.test("a cancel through the function between ticks stops the walk: later ticks import nothing", async () => {
  const { inside } = october();
  await using f = await flow(inside);
  const started = await f.start({
    agency_id: f.agencyId,
    date_from: "2026-10-01",
    date_to: "2026-10-31",
  });
  const jobId: string = started.body.job.id;

  const first = await f.process(jobId);
  assert.deepEqual(first.body.jobs, [
    {
      id: jobId,
      status: "in_progress",
      pages: 1,
      imported: 5,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
  const cancelled = await f.cancel(jobId);
  assert.equal(cancelled.status, 200);
  assert.equal(cancelled.body.job.status, "cancelled");
  assert.match(cancelled.body.job.completed_at, ISO_MICROS);

  assert.deepEqual((await f.process(jobId)).body.jobs, []);
  const view = (await f.status(jobId)).body.job;
  assert.equal(view.status, "cancelled");
  assert.equal(view.imported_calls, 5);
  assert.equal(view.processed_calls, 5);
  const [{ n }] = await f.db.sql<{ n: number }[]>`
    select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}`;
  assert.equal(n, 5);
  assert.equal(f.fake.requests.length, 1);
  // Cancelling again is idempotent.
  assert.equal((await f.cancel(jobId)).status, 200);
});
