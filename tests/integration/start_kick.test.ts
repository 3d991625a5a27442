// start-historical-sync's kick, wired to the real processor and the Ultravox stand-in: the
// job is processed within seconds, without any cron tick.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { drainBackground } from "../../supabase/functions/_shared/platform/background.ts";
import {
  kickProcessor,
  makeHandler,
} from "../../supabase/functions/start-historical-sync/index.ts";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import { call, functionRequest } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

Deno.test("a started job is processed at once by the kick, no cron tick needed", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 7, count: 30, end: "2026-11-20T00:00:00.000000Z", days: 10 }),
  });
  await using db = await TestDb.open();
  const config = { ...loadConfig(), ULTRAVOX_API_BASE: fake.baseUrl };
  const agency = await db.createAgency({
    members: { owner: "owner" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  const handler = makeHandler({
    sql: db.sql,
    config,
    now: () => new Date(),
    kick: kickProcessor(db.sql, config),
  });

  const reply = await call(
    handler,
    functionRequest("start-historical-sync", { agency_id: agency.id, max_calls: 12 }, {
      headers: userHeaders(await userToken(agency.users.owner)),
    }),
  );
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.status, "pending");

  const deadline = Date.now() + 10_000;
  let job = await db.loadJob(reply.body.job.id);
  while (job?.status !== "completed" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    job = await db.loadJob(reply.body.job.id);
  }
  assert.equal(await drainBackground(10_000), true);
  assert.equal(job?.status, "completed");
  assert.equal(job?.imported_calls, 12);
  const [{ n }] = await db.sql`
    select count(*)::int as n from public.calls where historical_sync_job_id = ${job!.id}::uuid`;
  assert.equal(n, 12);
});
