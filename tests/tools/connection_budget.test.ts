// The connection budget (docs/ARCHITECTURE.md §8, docs/OPERATIONS.md "Database connections"):
// the functions' pools are sized from the configuration, one connection for a user endpoint,
// so a burst of 40 concurrent status requests through `deno task serve` keeps the project's
// backends opened by it within 12.
import assert from "node:assert/strict";
import { TestDb, testSql } from "../support/db.ts";
import { readDispatchSecrets, restoreDispatchSecrets } from "../support/cron.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const APP = "virsyn-historical-sync"; // the application_name of every connection of ours

Deno.test("40 concurrent get-sync-status requests keep the backends serve opens within 12", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { member: "member" } });
  const token = await userToken(agency.users.member);
  const sampler = testSql(1);
  const before = await readDispatchSecrets(db.sql);
  const backends = async () => {
    const [{ n }] = await sampler<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
       where application_name = ${APP} and backend_type = 'client backend'`;
    return n;
  };
  // Ours before serve starts: the test's own pool and the sampler.
  await db.sql`select 1`;
  const baseline = await backends();

  const port = 54400 + Math.floor(Math.random() * 500);
  const url = `http://127.0.0.1:${port}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../scripts/serve.ts", import.meta.url).pathname],
    env: { SUPABASE_URL: url },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let ready = "";
    while (!ready.includes("\n")) {
      const { value, done } = await stdout.read();
      if (done) throw new Error("serve exited before it was ready");
      ready += value;
    }
    let peak = 0;
    let sampling = true;
    const sample = (async () => {
      while (sampling) {
        peak = Math.max(peak, (await backends()) - baseline);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const replies = await Promise.all(
      Array.from(
        { length: 40 },
        () =>
          fetch(`${url}/functions/v1/get-sync-status?agency_id=${agency.id}`, {
            headers: userHeaders(token),
          }).then(async (res) => ({ status: res.status, body: await res.json() })),
      ),
    );
    sampling = false;
    await sample;
    assert.deepEqual(replies.map((r) => r.status), Array(40).fill(200));
    assert.ok(replies.every((r) => Array.isArray(r.body.jobs)));
    assert.ok(peak >= 1, `serve opened no backend at all (peak ${peak})`);
    assert.ok(peak <= 12, `serve held ${peak} backends during the burst`);
    console.log(`peak backends opened by serve during 40 concurrent requests: ${peak}`);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await stdout.cancel().catch(() => {});
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await restoreDispatchSecrets(db.sql, before);
    await sampler.end();
  }
});
