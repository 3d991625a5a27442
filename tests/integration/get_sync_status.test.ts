// get-sync-status against the real database: GET and POST forms, one job or an agency's
// list, the membership matrix and the limit bounds.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler } from "../../supabase/functions/get-sync-status/index.ts";
import { TestDb } from "../support/db.ts";
import { call, expectError, functionRequest, ISO_MICROS, type Reply } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const config = loadConfig();
const NAME = "get-sync-status";

function statusFn(db: TestDb, now: () => Date = () => new Date()) {
  const handler = makeHandler({ sql: db.sql, config, now });
  return {
    get: async (userId: string, query: string): Promise<Reply> =>
      await call(
        handler,
        functionRequest(NAME, undefined, {
          method: "GET",
          query,
          headers: userHeaders(await userToken(userId)),
        }),
      ),
    post: async (userId: string, body: unknown): Promise<Reply> =>
      await call(
        handler,
        functionRequest(NAME, body, { headers: userHeaders(await userToken(userId)) }),
      ),
  };
}

Deno.test("any member reads one job by GET ?job_id=, without cursor, timestamps in µs", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const job = await db.insertJob(agency.id, {
    status: "in_progress",
    cursor: "secret-ish-cursor",
    date_from: "2025-01-01T00:00:00.000001Z",
    date_to: "2025-06-30T23:59:59.999999Z",
    total_calls: 200,
    processed_calls: 50,
    imported_calls: 50,
    max_calls: null,
    started_at: "2026-11-29T10:00:00.000000Z",
    last_activity_at: "2026-11-29T10:01:00.000000Z",
  });
  const now = new Date("2026-11-29T10:02:00.000Z");

  const reply = await statusFn(db, () => now).get(agency.users.member, `job_id=${job.id}`);

  assert.equal(reply.status, 200);
  const view = reply.body.job;
  assert.equal(view.id, job.id);
  assert.equal("cursor" in view, false);
  assert.equal(view.date_from, "2025-01-01T00:00:00.000001Z");
  assert.equal(view.date_to, "2025-06-30T23:59:59.999999Z");
  for (const field of ["created_at", "started_at", "last_activity_at"]) {
    assert.match(view[field], ISO_MICROS, field);
  }
  assert.deepEqual(view.progress, {
    fraction: 0.25,
    calls_per_minute: 25,
    eta_seconds: 360,
    stalled: false,
  });
});

Deno.test("the same request as a POST body gives the same answer", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  const now = new Date();
  const status = statusFn(db, () => now);
  const viaGet = await status.get(agency.users.owner, `job_id=${job.id}`);
  const viaPost = await status.post(agency.users.owner, { job_id: job.id });
  assert.equal(viaPost.status, 200);
  assert.deepEqual(viaPost.body, viaGet.body);
});

Deno.test("an agency's jobs come newest first with the active job beside them", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const oldest = await db.insertJob(agency.id, {
    status: "completed",
    created_at: "2026-11-01T00:00:00.000001Z",
    completed_at: "2026-11-01T00:05:00.000000Z",
  });
  const middle = await db.insertJob(agency.id, {
    status: "failed",
    created_at: "2026-11-02T00:00:00.000001Z",
    completed_at: "2026-11-02T00:05:00.000000Z",
  });
  const active = await db.insertJob(agency.id, {
    status: "pending",
    created_at: "2026-11-03T00:00:00.000001Z",
  });
  const status = statusFn(db);

  for (
    const reply of [
      await status.get(agency.users.member, `agency_id=${agency.id}`),
      await status.post(agency.users.member, { agency_id: agency.id }),
    ]
  ) {
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body.jobs.map((j: { id: string }) => j.id), [
      active.id,
      middle.id,
      oldest.id,
    ]);
    assert.equal(reply.body.active_job.id, active.id);
    assert.equal(reply.body.jobs[2].progress.fraction, 1);
    assert.equal(reply.body.jobs.some((j: object) => "cursor" in j), false);
  }
});

Deno.test("limit caps the list; active_job is null when nothing is active", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { admin: "admin" } });
  const ids: string[] = [];
  for (let day = 1; day <= 3; day++) {
    const job = await db.insertJob(agency.id, {
      status: "cancelled",
      created_at: `2026-11-0${day}T00:00:00.000000Z`,
      completed_at: `2026-11-0${day}T00:01:00.000000Z`,
    });
    ids.unshift(job.id);
  }
  const status = statusFn(db);
  const viaGet = await status.get(agency.users.admin, `agency_id=${agency.id}&limit=2`);
  const viaPost = await status.post(agency.users.admin, { agency_id: agency.id, limit: 2 });
  for (const reply of [viaGet, viaPost]) {
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body.jobs.map((j: { id: string }) => j.id), ids.slice(0, 2));
    assert.equal(reply.body.active_job, null);
  }
});

Deno.test("the list defaults to 20 jobs and accepts limits 1 and 100", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  await db.sql`
    insert into public.historical_sync_jobs (agency_id, date_to, status, created_at, completed_at)
    select ${agency.id}::uuid, now(), 'completed', now() - make_interval(mins => i), now()
      from generate_series(1, 25) as i`;
  const status = statusFn(db);
  assert.equal(
    (await status.get(agency.users.owner, `agency_id=${agency.id}`)).body.jobs.length,
    20,
  );
  assert.equal(
    (await status.get(agency.users.owner, `agency_id=${agency.id}&limit=1`)).body.jobs.length,
    1,
  );
  assert.equal(
    (await status.post(agency.users.owner, { agency_id: agency.id, limit: 100 })).body.jobs.length,
    25,
  );
});

Deno.test("limit 0, 101, 1.5 or text is 400 naming limit, in both forms", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const status = statusFn(db);
  for (const limit of ["0", "101", "1.5", "ten", ""]) {
    const reply = await status.get(agency.users.owner, `agency_id=${agency.id}&limit=${limit}`);
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["limit"]);
  }
  for (const limit of [0, 101, 1.5, "20"]) {
    const reply = await status.post(agency.users.owner, { agency_id: agency.id, limit });
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["limit"]);
  }
});

Deno.test("exactly one of job_id and agency_id: neither or both is 400", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  const status = statusFn(db);
  expectError(await status.get(agency.users.owner, ""), 400, "validation_failed");
  expectError(await status.post(agency.users.owner, {}), 400, "validation_failed");
  expectError(
    await status.get(agency.users.owner, `job_id=${job.id}&agency_id=${agency.id}`),
    400,
    "validation_failed",
  );
  expectError(
    await status.post(agency.users.owner, { job_id: job.id, limit: 5 }),
    400,
    "validation_failed",
  );
  expectError(
    await status.get(agency.users.owner, `job_id=${job.id}&job_id=${job.id}`),
    400,
    "validation_failed",
  );
});

Deno.test("a malformed id or an unknown query parameter is 400", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  const status = statusFn(db);
  const bad = await status.get(user, "job_id=123");
  expectError(bad, 400, "validation_failed");
  assert.equal(bad.body.error.details[0].path, "job_id");
  const unknown = await status.get(user, `agency_id=${crypto.randomUUID()}&page=2`);
  expectError(unknown, 400, "validation_failed");
  assert.equal(unknown.body.error.details[0].path, "page");
});

Deno.test("a job of an agency the caller does not belong to is 404", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const mine = await db.createAgency({ members: { owner: "owner" } });
  const job = await db.insertJob(agency.id);
  expectError(await statusFn(db).get(mine.users.owner, `job_id=${job.id}`), 404, "not_found");
});

Deno.test("an unknown job is 404", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  expectError(await statusFn(db).post(user, { job_id: crypto.randomUUID() }), 404, "not_found");
});

Deno.test("listing another agency or an unknown agency is 403", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency();
  const user = await db.createUser();
  const status = statusFn(db);
  expectError(await status.get(user, `agency_id=${agency.id}`), 403, "forbidden");
  expectError(await status.get(user, `agency_id=${crypto.randomUUID()}`), 403, "forbidden");
});

Deno.test("owner, admin and member may all read status", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner", admin: "admin", member: "member" },
  });
  const job = await db.insertJob(agency.id);
  const status = statusFn(db);
  for (const user of Object.values(agency.users)) {
    assert.equal((await status.get(user, `job_id=${job.id}`)).status, 200);
    assert.equal((await status.get(user, `agency_id=${agency.id}`)).status, 200);
  }
});

Deno.test("an in-progress job silent for longer than max(2 × lease, 120 s) is stalled", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const job = await db.insertJob(agency.id, {
    status: "in_progress",
    started_at: "2026-11-29T10:00:00.000000Z",
    last_activity_at: "2026-11-29T10:00:00.000000Z",
  });
  const silence = config.SYNC_LEASE_SECONDS * 2 * 1000;
  const quiet = statusFn(db, () => new Date(Date.parse("2026-11-29T10:00:00Z") + silence));
  const late = statusFn(db, () => new Date(Date.parse("2026-11-29T10:00:00Z") + silence + 1000));
  assert.equal(
    (await quiet.get(agency.users.member, `job_id=${job.id}`)).body.job.progress.stalled,
    false,
  );
  assert.equal(
    (await late.get(agency.users.member, `job_id=${job.id}`)).body.job.progress.stalled,
    true,
  );
});
