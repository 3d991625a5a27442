// The local router of `deno task serve`, over real HTTP on a free port: the functions, and
// GET /auth/v1/user as Supabase Auth answers it (docs/ARCHITECTURE.md §8).
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as makeStatus } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { startServer } from "../../scripts/serve.ts";
import { TestDb, testSql } from "../support/db.ts";
import { readDispatchSecrets, restoreDispatchSecrets } from "../support/cron.ts";
import {
  legacyUserToken,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  userHeaders,
  userToken,
} from "../support/tokens.ts";

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

Deno.test("serve answers GET /auth/v1/user as Supabase Auth would, for the dev tokens", async () => {
  const server = await startServer({ port: 0, functions: {}, log: () => {} });
  const user = (headers: Record<string, string>, method = "GET") =>
    fetch(`${server.url}/auth/v1/user`, { method, headers }).then(async (res) => ({
      status: res.status,
      body: await res.json(),
    }));
  try {
    const USER = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
    const ok = await user(
      userHeaders(await legacyUserToken(USER, { claims: { email: "a@b.test" } })),
    );
    assert.equal(ok.status, 200);
    assert.equal(ok.body.id, USER);
    assert.deepEqual([ok.body.aud, ok.body.role, ok.body.email], [
      "authenticated",
      "authenticated",
      "a@b.test",
    ]);
    // Tokens of the signing key too, as an Auth server on signing keys answers both.
    assert.equal((await user(userHeaders(await userToken(USER)))).body.id, USER);
    // The secret key passes the gateway as well.
    assert.equal(
      (await user({ ...userHeaders(await legacyUserToken(USER)), apikey: SECRET_KEY })).status,
      200,
    );

    const badJwt = async (token: string, msg: RegExp) => {
      const r = await user(userHeaders(token));
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 401);
      assert.equal(r.body.error_code, "bad_jwt");
      assert.match(r.body.msg, msg);
    };
    await badJwt(
      await legacyUserToken(USER, { expiresIn: -5 }),
      /^invalid JWT: .*token is expired$/,
    );
    await badJwt(
      await legacyUserToken(USER, { secret: "not-the-dev-secret".repeat(3) }),
      /^invalid JWT: /,
    );
    await badJwt(await legacyUserToken("not-a-uuid"), /sub claim must be a UUID/);
    await badJwt("not.a.jwt", /^invalid JWT: /);

    const noBearer = await user({ apikey: PUBLISHABLE_KEY });
    assert.deepEqual([noBearer.status, noBearer.body.error_code], [401, "no_authorization"]);
    const noApikey = await user({ authorization: `Bearer ${await legacyUserToken(USER)}` });
    assert.deepEqual(noApikey, { status: 401, body: { message: "No API key found in request" } });
    const wrongApikey = await user({
      ...userHeaders(await legacyUserToken(USER)),
      apikey: "sb_publishable_x",
    });
    assert.equal(wrongApikey.status, 401);
    assert.equal((await user(userHeaders(await legacyUserToken(USER)), "POST")).status, 405);
    // Only that path: the rest of /auth/v1 is not served.
    const other = await fetch(`${server.url}/auth/v1/token`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
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

function inherited(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.flatMap((n) => Deno.env.get(n) ? [[n, Deno.env.get(n)!]] : []));
}

async function serveOnce(url: string, sql: ReturnType<typeof testSql>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../scripts/serve.ts", import.meta.url).pathname],
    // Nothing of the keys from here: serve hands the dev keys to the functions itself.
    clearEnv: true,
    env: { ...inherited("HOME", "PATH", "DENO_DIR", "SUPABASE_DB_URL"), SUPABASE_URL: url },
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
  // The dev keys came in through the environment, so a legacy token works end to end: the
  // function asks serve's own /auth/v1/user, then answers 400 for the missing fields.
  const legacy = await fetch(`${url}/functions/v1/get-sync-status`, {
    headers: userHeaders(await legacyUserToken("9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d")),
  });
  assert.equal(legacy.status, 400);
  assert.equal((await legacy.json()).error.code, "validation_failed");
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
