// An invocation that spends its budget with work left queues the next one through pg_net,
// so a long import runs on without waiting for the next cron tick.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import {
  DISPATCH_JOB,
  pauseCronJob,
  putSecret,
  readDispatchSecrets,
  restoreDispatchSecrets,
  serveProcessor,
  waitFor,
} from "../support/cron.ts";

const CALLS = 25;

async function setUp(db: TestDb) {
  const fake = await startFakeUltravox({
    calls: generateAccount({ seed: 4242, count: CALLS, days: 10 }),
  });
  const { id: agencyId } = await db.createAgency({ ultravoxKey: DEFAULT_API_KEY });
  const [{ id: jobId }] = await db.sql<{ id: string }[]>`
    select id from public.create_sync_job(${agencyId}, null, '2026-11-01T00:00:00Z', null)`;
  return { fake, jobId };
}

function runOnce(db: TestDb, baseUrl: string, jobId: string) {
  return processHistoricalSync({
    sql: db.sql,
    config: {
      ...loadConfig(),
      ULTRAVOX_API_BASE: baseUrl,
      SYNC_PAGE_SIZE: 10,
      SYNC_MAX_PAGES_PER_RUN: 1,
    },
    log: () => {},
  }, { jobId });
}

Deno.test("a run that spends its page budget with work left queues exactly one next run; the last run queues none", async () => {
  await using db = await TestDb.open();
  const { fake, jobId } = await setUp(db);
  const before = await readDispatchSecrets(db.sql);
  const projectUrl = `http://127.0.0.1:9/continuation-${crypto.randomUUID()}`;
  const queued = async () =>
    await db.sql<{ url: string; headers: Record<string, string>; body: string }[]>`
      select url, headers, convert_from(body, 'UTF8') as body from net.http_request_queue
       where url = ${projectUrl + "/functions/v1/process-historical-sync"}`;
  try {
    await putSecret(db.sql, "project_url", projectUrl);
    await putSecret(db.sql, "functions_secret_key", "sb_secret_continuation_test");

    const statuses: string[] = [];
    const queuedAfter: number[] = [];
    for (let run = 0; run < 3; run++) {
      statuses.push((await runOnce(db, fake.baseUrl, jobId)).jobs[0].status);
      queuedAfter.push((await queued()).length);
    }
    // Pages of 10, 10 and 5 calls: the third run finishes the range and asks for nothing.
    assert.deepEqual(statuses, ["in_progress", "in_progress", "completed"]);
    assert.deepEqual(queuedAfter, [1, 2, 2]);
    const [request] = await queued();
    assert.deepEqual(request.headers, {
      "Content-Type": "application/json",
      apikey: "sb_secret_continuation_test",
    });
    assert.equal(request.body, '{"wait": false}');
  } finally {
    await db.sql`delete from net.http_request_queue where url like ${projectUrl + "%"}`;
    await restoreDispatchSecrets(db.sql, before);
    await fake.close();
  }
});

Deno.test("without the Vault secrets no next run is queued and the run still succeeds", async () => {
  await using db = await TestDb.open();
  const { fake, jobId } = await setUp(db);
  const before = await readDispatchSecrets(db.sql);
  try {
    await db.sql`delete from vault.secrets where name in ('project_url', 'functions_secret_key')`;
    const [{ max: maxBefore }] = await db.sql`select max(id) from net.http_request_queue`;
    const run = await runOnce(db, fake.baseUrl, jobId);
    assert.deepEqual(run.jobs.map((j) => [j.status, j.pages, j.imported]), [[
      "in_progress",
      1,
      10,
    ]]);
    const [{ max: maxAfter }] = await db.sql`select max(id) from net.http_request_queue`;
    assert.equal(maxAfter, maxBefore);
  } finally {
    await restoreDispatchSecrets(db.sql, before);
    await fake.close();
  }
});

Deno.test("with pg_net working, a long import runs to the end without any cron tick", async () => {
  await using db = await TestDb.open();
  const { fake, jobId } = await setUp(db);
  const resume = await pauseCronJob(db.sql, DISPATCH_JOB);
  try {
    await using rig = await serveProcessor(db.sql, {
      ultravoxBase: fake.baseUrl,
      jobId,
      config: { SYNC_PAGE_SIZE: 10, SYNC_MAX_PAGES_PER_RUN: 1 },
    });
    // One direct call starts it; every later page comes from a queued continuation.
    const res = await fetch(`${rig.server.url}/functions/v1/${DISPATCH_JOB}`, {
      method: "POST",
      headers: { apikey: rig.config.secretKeys.default, "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const job = await waitFor("the job to complete", async () => {
      const [row] = await db.sql`
        select status, processed_calls, imported_calls from public.historical_sync_jobs
         where id = ${jobId}`;
      return row.status === "completed" ? row : undefined;
    }, { timeoutMs: 10_000 });
    assert.deepEqual({ ...job }, {
      status: "completed",
      processed_calls: CALLS,
      imported_calls: CALLS,
    });
    // The direct call and two continuations, each one page; the continuations answered 202.
    await waitFor(
      "the last run to report",
      () => Promise.resolve(rig.runs.length === 3 || undefined),
      {
        timeoutMs: 5_000,
      },
    );
    assert.deepEqual(rig.runs.map((r) => r.jobs.map((j) => j.pages)), [[1], [1], [1]]);
    assert.deepEqual(rig.replies.map((r) => r.status), [200, 202, 202]);
  } finally {
    await resume();
    await fake.close();
  }
});
