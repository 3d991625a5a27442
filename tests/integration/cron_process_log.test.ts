// process-historical-sync and the log row it was handed (docs/ARCHITECTURE.md §6-§7), over real HTTP
// with the real processor: an unknown cron_log_id, or one already closed (the dispatcher
// timed it out while the function ran, or it was completed), is no error: the run
// proceeds, answers 200, and leaves the logs as they were.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import { secretKeyHeaders } from "../support/tokens.ts";
import { DISPATCH_JOB, serveProcessor } from "../support/cron.ts";

const CALLS = 30;

/** Starts a job of CALLS calls and posts `body` to the served processor. */
async function runWith(db: TestDb, body: Record<string, unknown>) {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 703, count: CALLS, end: "2026-11-20T00:00:00Z", days: 10 }),
  });
  const agency = await db.createAgency({ ultravoxKey: DEFAULT_API_KEY });
  const job = await db.insertJob(agency.id, { max_calls: null });
  await using rig = await serveProcessor(db.sql, {
    ultravoxBase: fake.baseUrl,
    jobId: job.id,
    dispatch: false,
  });
  const res = await fetch(`${rig.server.functionsUrl}${DISPATCH_JOB}`, {
    method: "POST",
    headers: { ...secretKeyHeaders(), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), job };
}

function assertImported(reply: Awaited<ReturnType<typeof runWith>>) {
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body.jobs, [
    {
      id: reply.job.id,
      status: "completed",
      pages: 1,
      imported: CALLS,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
}

async function logRow(db: TestDb, id: string) {
  const rows = await db.sql`select * from public.cron_job_logs where id = ${id}::uuid`;
  return rows.map((r) => ({ ...r }));
}

Deno.test("an unknown cron_log_id: the run imports, answers 200 and writes no log row", async () => {
  await using db = await TestDb.open();
  const unknown = crypto.randomUUID();
  const reply = await runWith(db, { cron_log_id: unknown });
  assertImported(reply);
  assert.deepEqual(await logRow(db, unknown), []);
});

for (
  const [closed, fields] of [
    [
      "timed out by the dispatcher",
      {
        status: "failed",
        error_message: "timed out: no completion reported within 10 minutes",
        result: { dispatched: true, request_id: 0 },
      },
    ],
    [
      "completed",
      {
        status: "completed",
        error_message: null,
        result: { jobs: [], duration_ms: 7 },
      },
    ],
  ] as const
) {
  Deno.test(`a cron_log_id already ${closed}: the run imports, answers 200 and the row is left as it was`, async () => {
    await using db = await TestDb.open();
    const [{ id }] = await db.sql`
      insert into public.cron_job_logs (job_name, started_at, completed_at, status, result,
                                        error_message)
      values (${DISPATCH_JOB}, now() - interval '11 minutes', now() - interval '1 minute',
              ${fields.status}, ${JSON.stringify(fields.result)}::text::jsonb,
              ${fields.error_message})
      returning id`;
    try {
      const before = await logRow(db, id);
      assert.equal(before.length, 1);
      const reply = await runWith(db, { cron_log_id: id });
      assertImported(reply);
      assert.deepEqual(await logRow(db, id), before);
    } finally {
      await db.sql`delete from public.cron_job_logs where id = ${id}::uuid`;
    }
  });
}
