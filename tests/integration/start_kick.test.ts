// start-historical-sync's kick: the start queues a processor request for the new job through
// pg_net, and the local pg_net worker delivers it to process-historical-sync (`wait: false`),
// so the job is processed within seconds, without any cron tick.
import assert from "node:assert/strict";
import {
  kickThroughPgNet,
  makeHandler,
} from "../../supabase/functions/start-historical-sync/index.ts";
import { TestDb } from "../support/db.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";
import { serveProcessor, waitFor } from "../support/cron.ts";
import { call, functionRequest } from "../support/requests.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

Deno.test("a started job is processed at once through the kick pg_net delivers, no cron tick needed", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 7, count: 30, end: "2026-11-20T00:00:00.000000Z", days: 10 }),
  });
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner" },
    ultravoxKey: DEFAULT_API_KEY,
  });
  // The job id is known only after the start: the served processor claims the job the
  // kick names (as the real one does), and nothing else.
  let jobId = "00000000-0000-4000-8000-000000000000";
  await using rig = await serveProcessor(db.sql, {
    ultravoxBase: fake.baseUrl,
    get jobId() {
      return jobId;
    },
  });
  const handler = makeHandler({
    sql: db.sql,
    config: rig.config,
    now: () => new Date(),
    kick: kickThroughPgNet(db.sql),
  });

  const reply = await call(
    handler,
    functionRequest("start-historical-sync", { agency_id: agency.id, max_calls: 12 }, {
      headers: userHeaders(await userToken(agency.users.owner)),
    }),
  );
  assert.equal(reply.status, 201);
  assert.equal(reply.body.job.status, "pending");
  jobId = reply.body.job.id;

  const job = await waitFor("the kicked job to complete", async () => {
    const row = await db.loadJob(jobId);
    return row?.status === "completed" ? row : undefined;
  }, { timeoutMs: 15_000 });
  assert.equal(job.imported_calls, 12);
  const [{ n }] = await db.sql`
    select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}::uuid`;
  assert.equal(n, 12);
  // The kick answered at once: 202, then the run went on in the background.
  assert.deepEqual(rig.replies[0], { status: 202, body: { accepted: true } });
});
