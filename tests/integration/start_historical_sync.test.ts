// start-historical-sync against the real database: who may start, the state checks, the
// job it creates (dates at microsecond precision), and the kick.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler } from "../../supabase/functions/start-historical-sync/index.ts";
import { TestDb } from "../support/db.ts";
import { call, expectError, functionRequest, ISO_MICROS } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const config = loadConfig();
const KEY = "uv_test_key";

function startFn(db: TestDb, now: () => Date = () => new Date()) {
  const kicks: string[] = [];
  const handler = makeHandler({ sql: db.sql, config, now, kick: (id) => void kicks.push(id) });
  const start = async (userId: string, body: unknown) =>
    await call(
      handler,
      functionRequest("start-historical-sync", body, {
        headers: userHeaders(await userToken(userId)),
      }),
    );
  return { start, kicks };
}

Deno.test("an owner starts a sync: 201 with the pending job, kicked at once", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start, kicks } = startFn(db);

  const reply = await start(agency.users.owner, { agency_id: agency.id });

  assert.equal(reply.status, 201);
  const job = reply.body.job;
  assert.equal(job.agency_id, agency.id);
  assert.equal(job.status, "pending");
  assert.equal(job.max_calls, 100);
  assert.equal(job.date_from, null);
  assert.equal(job.processed_calls, 0);
  assert.equal("cursor" in job, false);
  for (const field of ["date_to", "created_at"]) assert.match(job[field], ISO_MICROS, field);
  assert.deepEqual(job.progress, {
    fraction: 0,
    calls_per_minute: null,
    eta_seconds: null,
    stalled: false,
  });
  assert.deepEqual(kicks, [job.id]);
  const row = await db.loadJob(job.id);
  assert.equal(row?.status, "pending");
  assert.equal(row?.date_to, job.date_to);
});

Deno.test("an admin may start a sync too", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { admin: "admin" }, ultravoxKey: KEY });
  const reply = await startFn(db).start(agency.users.admin, { agency_id: agency.id });
  assert.equal(reply.status, 201);
});

Deno.test("a member may not start a sync: 403, nothing written, nothing kicked", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" }, ultravoxKey: KEY });
  const { start, kicks } = startFn(db);
  expectError(await start(agency.users.member, { agency_id: agency.id }), 403, "forbidden");
  assert.equal(await db.countJobs(agency.id), 0);
  assert.deepEqual(kicks, []);
});

Deno.test("a user of another agency gets 403", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ ultravoxKey: KEY });
  const other = await db.createAgency({ members: { owner: "owner" } });
  const reply = await startFn(db).start(other.users.owner, { agency_id: agency.id });
  expectError(reply, 403, "forbidden");
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("an unknown agency_id is 403, like one the caller is not a member of", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  const reply = await startFn(db).start(user, { agency_id: crypto.randomUUID() });
  expectError(reply, 403, "forbidden");
});

Deno.test("a member of an agency without a key gets 403, not 422 (membership before state)", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  expectError(
    await startFn(db).start(agency.users.member, { agency_id: agency.id }),
    403,
    "forbidden",
  );
});

Deno.test("an agency without an Ultravox key is 422 ultravox_key_missing, nothing written", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const { start, kicks } = startFn(db);
  expectError(
    await start(agency.users.owner, { agency_id: agency.id }),
    422,
    "ultravox_key_missing",
  );
  assert.equal(await db.countJobs(agency.id), 0);
  assert.deepEqual(kicks, []);
});

Deno.test("a second start while a job is active is 409 naming the active job", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start, kicks } = startFn(db);
  const first = await start(agency.users.owner, { agency_id: agency.id });
  assert.equal(first.status, 201);

  const second = await start(agency.users.owner, { agency_id: agency.id, max_calls: 5 });

  expectError(second, 409, "sync_already_active");
  assert.deepEqual(second.body.error.details, { job_id: first.body.job.id });
  assert.equal(await db.countJobs(agency.id), 1);
  assert.deepEqual(kicks, [first.body.job.id]);
});

Deno.test("an in-progress job blocks a start with 409, checked before the key (409 before 422)", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } }); // no key
  const running = await db.insertJob(agency.id, { status: "in_progress" });
  const reply = await startFn(db).start(agency.users.owner, { agency_id: agency.id });
  expectError(reply, 409, "sync_already_active");
  assert.equal(reply.body.error.details.job_id, running.id);
});

Deno.test("a finished job does not block a new start", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  for (const status of ["completed", "failed", "cancelled"] as const) {
    await db.insertJob(agency.id, { status, completed_at: new Date().toISOString() });
  }
  assert.equal((await startFn(db).start(agency.users.owner, { agency_id: agency.id })).status, 201);
});

Deno.test("two starts racing: exactly one 201 and one 409 naming the winner", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner", admin: "admin" },
    ultravoxKey: KEY,
  });
  const { start, kicks } = startFn(db);

  const replies = await Promise.all([
    start(agency.users.owner, { agency_id: agency.id }),
    start(agency.users.admin, { agency_id: agency.id }),
  ]);

  const statuses = replies.map((r) => r.status).sort();
  assert.deepEqual(statuses, [201, 409]);
  const won = replies.find((r) => r.status === 201)!;
  const lost = replies.find((r) => r.status === 409)!;
  expectError(lost, 409, "sync_already_active");
  assert.equal(lost.body.error.details.job_id, won.body.job.id);
  assert.equal(await db.countJobs(agency.id), 1);
  assert.deepEqual(kicks, [won.body.job.id]);
});

Deno.test("bare dates cover whole days: 00:00:00Z to 23:59:59.999999Z", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const reply = await startFn(db).start(agency.users.owner, {
    agency_id: agency.id,
    date_from: "2025-03-01",
    date_to: "2025-03-31",
  });
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.date_from, "2025-03-01T00:00:00.000000Z");
  assert.equal(reply.body.job.date_to, "2025-03-31T23:59:59.999999Z");
  const row = await db.loadJob(reply.body.job.id);
  assert.equal(row?.date_from, "2025-03-01T00:00:00.000000Z");
  assert.equal(row?.date_to, "2025-03-31T23:59:59.999999Z");
});

Deno.test("date-times with offsets are stored in UTC with their microseconds", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const reply = await startFn(db).start(agency.users.owner, {
    agency_id: agency.id,
    date_from: "2025-01-02T03:04:05.123456+01:00",
    date_to: "2025-02-03T04:05:06.654321-02:30",
  });
  assert.equal(reply.status, 201);
  const row = await db.loadJob(reply.body.job.id);
  assert.equal(row?.date_from, "2025-01-02T02:04:05.123456Z");
  assert.equal(row?.date_to, "2025-02-03T06:35:06.654321Z");
  assert.equal(reply.body.job.date_from, row?.date_from);
  assert.equal(reply.body.job.date_to, row?.date_to);
});

Deno.test("a future date_to is clamped to now; a missing one is now", async () => {
  await using db = await TestDb.open();
  const now = new Date("2026-11-29T01:02:03.456Z");
  const a = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const b = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start } = startFn(db, () => now);

  const future = await start(a.users.owner, { agency_id: a.id, date_to: "2999-01-01" });
  const missing = await start(b.users.owner, { agency_id: b.id, date_from: "2026-01-01" });

  assert.equal(future.status, 201);
  assert.equal(future.body.job.date_to, "2026-11-29T01:02:03.456000Z");
  assert.equal(missing.status, 201);
  assert.equal(missing.body.job.date_to, "2026-11-29T01:02:03.456000Z");
  assert.equal(missing.body.job.created_at, "2026-11-29T01:02:03.456000Z");
});

Deno.test("a future date_from is 400 (the range is checked after clamping)", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const reply = await startFn(db).start(agency.users.owner, {
    agency_id: agency.id,
    date_from: "2999-01-01",
    date_to: "2999-12-31",
  });
  expectError(reply, 400, "validation_failed");
  assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["date_from"]);
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("a reversed or empty range is 400", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start } = startFn(db);
  for (
    const range of [
      { date_from: "2025-03-02", date_to: "2025-03-01" },
      { date_from: "2025-03-01T10:00:00.000001Z", date_to: "2025-03-01T10:00:00.000001Z" },
    ]
  ) {
    const reply = await start(agency.users.owner, { agency_id: agency.id, ...range });
    expectError(reply, 400, "validation_failed");
    assert.equal(reply.body.error.details[0].path, "date_from");
  }
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("malformed dates are 400 naming the field", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start } = startFn(db);
  for (
    const [field, value] of [
      ["date_from", "2025-03-01T10:00:00"], // no offset
      ["date_to", "2025-02-30"],
      ["date_to", null], // date_to may be omitted, not null
      ["date_from", 20250301],
    ] as const
  ) {
    const reply = await start(agency.users.owner, { agency_id: agency.id, [field]: value });
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), [field]);
  }
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("max_calls outside 1…1,000,000 or not an integer is 400", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const { start } = startFn(db);
  for (const max_calls of [0, -1, 1_000_001, 1.5, "5", true]) {
    const reply = await start(agency.users.owner, { agency_id: agency.id, max_calls });
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["max_calls"]);
  }
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("max_calls accepts 1, 1,000,000 and null (no cap)", async () => {
  await using db = await TestDb.open();
  const { start } = startFn(db);
  for (const max_calls of [1, 1_000_000, null]) {
    const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
    const reply = await start(agency.users.owner, { agency_id: agency.id, max_calls });
    assert.equal(reply.status, 201);
    assert.equal(reply.body.job.max_calls, max_calls);
    assert.equal((await db.loadJob(reply.body.job.id))?.max_calls, max_calls);
  }
});

Deno.test("a missing or malformed agency_id is 400 before any membership check", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  const { start } = startFn(db);
  for (const body of [{}, { agency_id: "nope" }, { agency_id: 7 }]) {
    const reply = await start(user, body);
    expectError(reply, 400, "validation_failed");
    assert.deepEqual(reply.body.error.details.map((d: { path: string }) => d.path), ["agency_id"]);
  }
});

Deno.test("every bad field is listed at once", async () => {
  await using db = await TestDb.open();
  const user = await db.createUser();
  const reply = await startFn(db).start(user, {
    agency_id: "x",
    date_from: "yesterday",
    max_calls: 0,
    extra: 1,
  });
  expectError(reply, 400, "validation_failed");
  assert.deepEqual(
    reply.body.error.details.map((d: { path: string }) => d.path).sort(),
    ["agency_id", "date_from", "extra", "max_calls"],
  );
});

Deno.test("an upper-case agency uuid is accepted", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: KEY });
  const reply = await startFn(db).start(agency.users.owner, {
    agency_id: agency.id.toUpperCase(),
  });
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.agency_id, agency.id);
});
