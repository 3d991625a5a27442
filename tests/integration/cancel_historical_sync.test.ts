// cancel-historical-sync against the real database: the membership matrix, idempotence,
// and finished jobs.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { TestDb } from "../support/db.ts";
import { call, expectError, functionRequest, ISO_MICROS } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const config = loadConfig();

function cancelFn(db: TestDb, now: () => Date = () => new Date()) {
  const handler = makeHandler({ sql: db.sql, config, now });
  return async (userId: string, body: unknown) =>
    await call(
      handler,
      functionRequest("cancel-historical-sync", body, {
        headers: userHeaders(await userToken(userId)),
      }),
    );
}

Deno.test("an owner cancels a pending job: 200 with the cancelled job", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  const now = new Date("2026-11-29T08:00:00.250Z");

  const reply = await cancelFn(db, () => now)(agency.users.owner, { job_id: job.id });

  assert.equal(reply.status, 200);
  assert.equal(reply.body.job.id, job.id);
  assert.equal(reply.body.job.status, "cancelled");
  assert.equal(reply.body.job.completed_at, "2026-11-29T08:00:00.250000Z");
  assert.equal("cursor" in reply.body.job, false);
  assert.equal(reply.body.job.progress.stalled, false);
  assert.equal((await db.loadJob(job.id))?.status, "cancelled");
});

Deno.test("an admin cancels an in-progress job and its lease is released", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { admin: "admin" } });
  const job = await db.insertJob(agency.id, {
    status: "in_progress",
    started_at: "2026-11-29T07:00:00.000001Z",
    cursor: "c1",
  });
  await db.sql`
    insert into public.historical_sync_job_leases (job_id, holder, expires_at)
    values (${job.id}::uuid, gen_random_uuid(), now() + interval '2 minutes')`;

  const reply = await cancelFn(db)(agency.users.admin, { job_id: job.id });

  assert.equal(reply.status, 200);
  assert.equal(reply.body.job.status, "cancelled");
  assert.equal(reply.body.job.started_at, "2026-11-29T07:00:00.000001Z");
  assert.match(reply.body.job.completed_at, ISO_MICROS);
  const [lease] = await db.sql`
    select holder from public.historical_sync_job_leases where job_id = ${job.id}::uuid`;
  assert.equal(lease.holder, null);
});

Deno.test("cancelling a cancelled job again is 200 and changes nothing", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  const cancel = cancelFn(db);
  const first = await cancel(agency.users.owner, { job_id: job.id });

  const second = await cancel(agency.users.owner, { job_id: job.id });

  assert.equal(second.status, 200);
  assert.equal(second.body.job.status, "cancelled");
  assert.equal(second.body.job.completed_at, first.body.job.completed_at);
});

Deno.test("cancelling a completed or failed job is 409 job_already_finished", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const cancel = cancelFn(db);
  for (const status of ["completed", "failed"] as const) {
    const job = await db.insertJob(agency.id, { status, completed_at: new Date().toISOString() });
    const reply = await cancel(agency.users.owner, { job_id: job.id });
    expectError(reply, 409, "job_already_finished");
    assert.equal((await db.loadJob(job.id))?.status, status);
  }
});

Deno.test("a member may not cancel: 403, the job stays active", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const job = await db.insertJob(agency.id);
  expectError(await cancelFn(db)(agency.users.member, { job_id: job.id }), 403, "forbidden");
  assert.equal((await db.loadJob(job.id))?.status, "pending");
});

Deno.test("a job of an agency the caller does not belong to is 404, even for an owner elsewhere", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const mine = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  expectError(await cancelFn(db)(mine.users.owner, { job_id: job.id }), 404, "not_found");
  assert.equal((await db.loadJob(job.id))?.status, "pending");
});

Deno.test("an unknown job is 404", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  expectError(await cancelFn(db)(user, { job_id: crypto.randomUUID() }), 404, "not_found");
});

Deno.test("a 404 comes before a 409: a finished job of another agency is not_found", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const user = await db.createUser();
  const job = await db.insertJob(agency.id, {
    status: "completed",
    completed_at: new Date().toISOString(),
  });
  expectError(await cancelFn(db)(user, { job_id: job.id }), 404, "not_found");
});

Deno.test("a member asking to cancel a finished job gets 403 (membership before state)", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const job = await db.insertJob(agency.id, {
    status: "completed",
    completed_at: new Date().toISOString(),
  });
  expectError(await cancelFn(db)(agency.users.member, { job_id: job.id }), 403, "forbidden");
});

Deno.test("job_id must be a uuid", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  const cancel = cancelFn(db);
  for (const body of [{}, { job_id: "123" }, { job_id: null }]) {
    const reply = await cancel(user, body);
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["job_id"]);
  }
});
