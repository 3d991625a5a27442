// process-historical-sync: the secret-key-only endpoint that runs the processor and closes
// the cron_job_logs row pg_cron's dispatcher opened.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import type { RunSummary } from "../../supabase/functions/_shared/sync/processor.ts";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";
import { makeHandler } from "../../supabase/functions/process-historical-sync/index.ts";
import { type Sql, TestDb } from "../support/db.ts";
import { call, expectError, functionRequest } from "../support/requests.ts";
import { secretKeyHeaders } from "../support/tokens.ts";

const config = loadConfig();
const NAME = "process-historical-sync";

const SUMMARY: RunSummary = {
  jobs: [{
    id: "3f1e2d3c-0000-4000-8000-000000000001",
    status: "in_progress",
    pages: 2,
    imported: 150,
    skipped: 40,
    refreshed: 5,
    failed: 10,
  }],
  duration_ms: 1234,
};

function processFn(db: TestDb, run: (opts: { jobId?: string }) => Promise<RunSummary>) {
  const runs: { jobId?: string }[] = [];
  const handler = makeHandler({
    sql: db.sql,
    config,
    process: (opts) => {
      runs.push(opts);
      return run(opts);
    },
  });
  const post = async (body: unknown) =>
    await call(handler, functionRequest(NAME, body, { headers: secretKeyHeaders() }));
  return { post, runs };
}

async function openCronLog(sql: Sql): Promise<string> {
  const [{ id }] = await sql`
    insert into public.cron_job_logs (job_name, status)
    values ('test:process-historical-sync', 'running') returning id`;
  return id;
}

async function withQuietConsoleError<T>(fn: (logged: string[]) => Promise<T>): Promise<T> {
  const logged: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
  try {
    return await fn(logged);
  } finally {
    console.error = original;
  }
}

Deno.test("a run with the secret key answers 200 with the processor's summary", async () => {
  await using db = await TestDb.open();
  const { post, runs } = processFn(db, () => Promise.resolve(SUMMARY));
  const reply = await post({});
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, SUMMARY);
  assert.deepEqual(runs, [{}]);
});

Deno.test("job_id restricts the run to that job", async () => {
  await using db = await TestDb.open();
  const { post, runs } = processFn(db, () => Promise.resolve({ jobs: [], duration_ms: 3 }));
  const jobId = crypto.randomUUID();
  const reply = await post({ job_id: jobId });
  assert.deepEqual(reply.body, { jobs: [], duration_ms: 3 });
  assert.deepEqual(runs, [{ jobId }]);
});

Deno.test("an empty body is an empty request", async () => {
  await using db = await TestDb.open();
  const { post, runs } = processFn(db, () => Promise.resolve(SUMMARY));
  assert.equal((await post(new Uint8Array())).status, 200);
  assert.deepEqual(runs, [{}]);
});

Deno.test("ids must be uuids", async () => {
  await using db = await TestDb.open();
  const { post, runs } = processFn(db, () => Promise.resolve(SUMMARY));
  const reply = await post({ cron_log_id: "x", job_id: 5 });
  expectError(reply, 400, "validation_failed");
  assert.deepEqual(
    reply.body.error.details.map((d: { path: string }) => d.path).sort(),
    ["cron_log_id", "job_id"],
  );
  assert.deepEqual(runs, []);
});

Deno.test("an unknown cron_log_id is not an error: the run proceeds", async () => {
  await using db = await TestDb.open();
  const { post, runs } = processFn(db, () => Promise.resolve(SUMMARY));
  const reply = await withQuietConsoleError(async (logged) => {
    const r = await post({ cron_log_id: crypto.randomUUID() });
    assert.deepEqual(logged, []);
    return r;
  });
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, SUMMARY);
  assert.equal(runs.length, 1);
});

Deno.test("a cron_log_id (one request) is completed with the 200 body as its run", async () => {
  await using db = await TestDb.open();
  const id = await openCronLog(db.sql);
  try {
    const { post } = processFn(db, () => Promise.resolve(SUMMARY));
    const reply = await withQuietConsoleError(() => post({ cron_log_id: id }));
    assert.equal(reply.status, 200);
    const [log] = await db.sql`select * from public.cron_job_logs where id = ${id}::uuid`;
    assert.equal(log.status, "completed");
    assert.deepEqual(log.result, { runs: [SUMMARY], ...SUMMARY });
    assert.equal(log.error_message, null);
    assert.notEqual(log.completed_at, null);
  } finally {
    await db.sql`delete from public.cron_job_logs where id = ${id}::uuid`;
  }
});

Deno.test("a closed cron log is left alone", async () => {
  await using db = await TestDb.open();
  const [{ id }] = await db.sql`
    insert into public.cron_job_logs (job_name, status, completed_at, result)
    values ('test:process-historical-sync', 'completed', now(), '{"earlier": true}')
    returning id`;
  try {
    const { post } = processFn(db, () => Promise.resolve(SUMMARY));
    assert.equal((await withQuietConsoleError(() => post({ cron_log_id: id }))).status, 200);
    const [log] = await db.sql`select * from public.cron_job_logs where id = ${id}::uuid`;
    assert.equal(log.status, "completed");
    assert.deepEqual(log.result, { earlier: true });
  } finally {
    await db.sql`delete from public.cron_job_logs where id = ${id}::uuid`;
  }
});

Deno.test("a processor failure is 500 internal_error and fails the cron log with its message", async () => {
  await using db = await TestDb.open();
  const id = await openCronLog(db.sql);
  try {
    const { post } = processFn(db, () => Promise.reject(new Error("database went away")));
    const reply = await withQuietConsoleError(async (logged) => {
      const r = await post({ cron_log_id: id });
      assert.ok(logged.some((line) => line.includes("database went away")));
      return r;
    });
    expectError(reply, 500, "internal_error");
    assert.doesNotMatch(reply.body.error.message, /database went away/);
    const [log] = await db.sql`select * from public.cron_job_logs where id = ${id}::uuid`;
    assert.equal(log.status, "failed");
    assert.equal(log.error_message, "database went away");
  } finally {
    await db.sql`delete from public.cron_job_logs where id = ${id}::uuid`;
  }
});

Deno.test("with the real processor, a job_id nobody can claim gives jobs: []", async () => {
  await using db = await TestDb.open();
  const handler = makeHandler({
    sql: db.sql,
    config,
    process: (opts) => processHistoricalSync({ sql: db.sql, config, log: () => {} }, opts),
  });
  const reply = await call(
    handler,
    functionRequest(NAME, { job_id: crypto.randomUUID() }, { headers: secretKeyHeaders() }),
  );
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body.jobs, []);
  assert.equal(typeof reply.body.duration_ms, "number");
});
