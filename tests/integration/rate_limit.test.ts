// Start and cancel floods (docs/ARCHITECTURE.md §6): past SYNC_USER_ACTIONS_PER_MINUTE per
// agency, 429 rate_limited with Retry-After, counted in the database so every isolate shares
// the count. Two handlers on two connection pools stand for two isolates.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { makeHandler as makeCancel } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { TestDb, testSql } from "../support/db.ts";
import { call, expectError, functionRequest } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const config = { ...loadConfig(), SYNC_USER_ACTIONS_PER_MINUTE: 4 };

Deno.test("the 5th start or cancel of an agency within a minute is 429 rate_limited with Retry-After, across isolates", async () => {
  await using db = await TestDb.open();
  const other = testSql(2);
  try {
    const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: "k" });
    const neighbour = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: "k" });
    const now = () => new Date();
    const isolateA = {
      start: makeStart({ sql: db.sql, config, now, kick: () => {} }),
      cancel: makeCancel({ sql: db.sql, config, now }),
    };
    const isolateB = {
      start: makeStart({ sql: other, config, now, kick: () => {} }),
      cancel: makeCancel({ sql: other, config, now }),
    };
    const headers = userHeaders(await userToken(agency.users.owner));
    const start = (i: typeof isolateA) =>
      call(
        i.start,
        functionRequest("start-historical-sync", { agency_id: agency.id }, { headers }),
      );
    const cancel = (i: typeof isolateA, jobId: string) =>
      call(i.cancel, functionRequest("cancel-historical-sync", { job_id: jobId }, { headers }));

    // Four actions, alternating isolates: start, cancel, start, cancel.
    const first = await start(isolateA);
    assert.equal(first.status, 201);
    assert.equal((await cancel(isolateB, first.body.job.id)).status, 200);
    const second = await start(isolateB);
    assert.equal(second.status, 201);
    assert.equal((await cancel(isolateA, second.body.job.id)).status, 200);

    // The fifth, from either isolate, is refused and counts nothing.
    const refused = expectError(await start(isolateA), 429, "rate_limited");
    const wait = Number(refused.headers.get("retry-after"));
    assert.ok(Number.isInteger(wait) && wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.deepEqual(refused.body.error.details, { retry_after_seconds: wait });
    assert.match(refused.body.error.message, /4 times in the last minute; try again in \d+ s\.$/);
    expectError(await start(isolateB), 429, "rate_limited");
    const [{ jobs }] = await db.sql`
      select count(*)::int as jobs from public.historical_sync_jobs where agency_id = ${agency.id}::uuid`;
    assert.equal(jobs, 2, "the refused starts created no job");

    // Another agency has its own count.
    const neighbourStart = await call(
      isolateB.start,
      functionRequest("start-historical-sync", { agency_id: neighbour.id }, {
        headers: userHeaders(await userToken(neighbour.users.owner)),
      }),
    );
    assert.equal(neighbourStart.status, 201);
  } finally {
    await other.end();
  }
});

Deno.test("the count of actions is a sliding minute: an action leaves it 60 s after it was made", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" } });
  const note = async (at: string) => {
    const [{ wait }] = await db.sql<{ wait: number }[]>`
      select public.note_sync_user_action(${agency.id}::uuid, 2, ${at}::timestamptz) as wait`;
    return wait;
  };
  assert.equal(await note("2026-12-01T10:00:00Z"), 0);
  assert.equal(await note("2026-12-01T10:00:20Z"), 0);
  assert.equal(
    await note("2026-12-01T10:00:30Z"),
    30,
    "the first action leaves the window at 10:01:00",
  );
  assert.equal(await note("2026-12-01T10:00:59.5Z"), 1, "half a second still reads as 1 s");
  assert.equal(await note("2026-12-01T10:01:00Z"), 0, "at 10:01:00 the first has left");
  assert.equal(await note("2026-12-01T10:01:05Z"), 15);
});
