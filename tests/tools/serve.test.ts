// The local router of `deno task serve`, over real HTTP on a free port.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as makeStatus } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { startServer } from "../../scripts/serve.ts";
import { TestDb, testSql } from "../support/db.ts";
import { readDispatchSecrets, restoreDispatchSecrets } from "../support/cron.ts";
import { userHeaders, userToken } from "../support/tokens.ts";

const config = loadConfig();

Deno.test("the router serves each function under /functions/v1/<name> and 404s the rest", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: "uv_key" });
  const kicks: string[] = [];
  const lines: string[] = [];
  const server = await startServer({
    supabaseUrl: "http://127.0.0.1:54321",
    port: 0,
    log: (line) => void lines.push(line),
    functions: {
      "start-historical-sync": {
        fetch: makeStart({
          sql: db.sql,
          config,
          now: () => new Date(),
          kick: (id) => void kicks.push(id),
        }),
      },
      "get-sync-status": { fetch: makeStatus({ sql: db.sql, config, now: () => new Date() }) },
    },
  });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(server.functionsUrl, `${server.url}/functions/v1/`);
    const headers = {
      ...userHeaders(await userToken(agency.users.owner)),
      "content-type": "application/json",
    };

    const started = await fetch(`${server.functionsUrl}start-historical-sync`, {
      method: "POST",
      headers,
      body: JSON.stringify({ agency_id: agency.id }),
    });
    assert.equal(started.status, 201);
    assert.equal(started.headers.get("access-control-allow-origin"), "*");
    const { job } = await started.json();
    assert.deepEqual(kicks, [job.id]);

    const status = await fetch(`${server.functionsUrl}get-sync-status?job_id=${job.id}`, {
      headers,
    });
    assert.equal(status.status, 200);
    assert.equal((await status.json()).job.id, job.id);

    const preflight = await fetch(`${server.functionsUrl}get-sync-status`, { method: "OPTIONS" });
    assert.equal(preflight.status, 204);
    await preflight.body?.cancel();

    for (const path of ["functions/v1/nope", "functions/v1/", "rest/v1/agencies", ""]) {
      const res = await fetch(`${server.url}/${path}`);
      assert.equal(res.status, 404, path);
      assert.equal((await res.json()).error.code, "not_found");
    }
    assert.ok(lines.some((l) => l.includes("POST /functions/v1/start-historical-sync 201")));
  } finally {
    await server.close();
  }
});

Deno.test("`deno task serve` prints exactly one line on stdout and stops on SIGTERM", async () => {
  // A free port for the child: bind :0, read it, release it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const url = `http://127.0.0.1:${port}`;
  const sql = testSql(1);
  const before = await readDispatchSecrets(sql);
  try {
    await serveOnce(url, sql);
  } finally {
    // serve wrote its own URL for cron: put back what the shared database had.
    await restoreDispatchSecrets(sql, before);
    await sql.end();
  }
});

async function serveOnce(url: string, sql: ReturnType<typeof testSql>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../scripts/serve.ts", import.meta.url).pathname],
    env: { SUPABASE_URL: url },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += value;
  }
  assert.equal(text, `Serving functions at ${url}/functions/v1/\n`);
  const res = await fetch(`${url}/functions/v1/get-sync-status`, { method: "OPTIONS" });
  assert.equal(res.status, 204);
  await res.body?.cancel();
  assert.deepEqual(await readDispatchSecrets(sql), {
    project_url: url,
    functions_secret_key: config.secretKeys.default,
  });

  child.kill("SIGTERM");
  const status = await child.status;
  while (true) {
    const { value, done } = await stdout.read();
    if (done) break;
    text += value;
  }
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  assert.equal(text, `Serving functions at ${url}/functions/v1/\n`);
}
