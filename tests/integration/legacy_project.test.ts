// A project still on the legacy JWT secret (docs/ARCHITECTURE.md §6), end to end over real
// HTTP through the router of `deno task serve`: user tokens are HS256 without `kid`, which
// the functions check with the project's Auth server — here serve's own /auth/v1/user — and
// the processor takes the service_role key, since the project has no secret keys.
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { makeHandler as makeStatus } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as makeCancel } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { makeHandler as makeProcess } from "../../supabase/functions/process-historical-sync/index.ts";
import { type FunctionModule, startServer } from "../../scripts/serve.ts";
import { devEnv } from "../../tools/dev_env.ts";
import { authUserHandler } from "../../tools/stand_in_auth.ts";
import { TestDb } from "../support/db.ts";
import {
  forgedLegacyToken,
  legacyApiKey,
  legacyServiceRoleKey,
  legacyUserToken,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  userToken,
} from "../support/tokens.ts";

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

/**
 * The four functions behind serve's router, configured by `configure(serverUrl)`; its
 * /auth/v1/user lets `gatewayKeys` through besides the dev keys.
 */
async function stack(db: TestDb, configure: (url: string) => Config, gatewayKeys: string[] = []) {
  const functions: Record<string, FunctionModule> = {};
  const authUser = authUserHandler({ apiKeys: [PUBLISHABLE_KEY, SECRET_KEY, ...gatewayKeys] });
  const server = await startServer({ port: 0, functions, authUser, log: () => {} });
  const config = configure(server.url);
  const now = () => new Date();
  const processed: (string | undefined)[] = [];
  Object.assign(functions, {
    "start-historical-sync": { fetch: makeStart({ sql: db.sql, config, now, kick: () => {} }) },
    "get-sync-status": { fetch: makeStatus({ sql: db.sql, config, now }) },
    "cancel-historical-sync": { fetch: makeCancel({ sql: db.sql, config, now }) },
    // The processor's credentials are the point here, not a run: record, do nothing.
    "process-historical-sync": {
      fetch: makeProcess({
        sql: db.sql,
        config,
        process: ({ jobId }) => {
          processed.push(jobId);
          return Promise.resolve({ jobs: [], duration_ms: 0 } as never);
        },
      }),
    },
  });
  const send = async (name: string, headers: Record<string, string>, body?: unknown) => {
    const res = await fetch(`${server.functionsUrl}${name}`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify(body ?? {}),
    });
    return { status: res.status, body: await res.json() };
  };
  return { server, config, send, processed, [Symbol.asyncDispose]: () => server.close() };
}

/** A legacy project: empty JWKS, anon and service_role JWTs, no publishable or secret keys. */
function legacyConfig(serviceRoleKey: string, anonKey: string) {
  return (url: string) =>
    loadConfig(envOf({
      SYNC_ALLOW_DEV_KEYS: "1",
      SUPABASE_URL: url,
      SUPABASE_JWKS: '{"keys":[]}',
      SUPABASE_ANON_KEY: anonKey,
      SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
    }));
}

/** supabase-js on a legacy project: the anon key as apikey, the user's token as bearer. */
const legacyHeaders = (anonKey: string, token: string) => ({
  apikey: anonKey,
  authorization: `Bearer ${token}`,
});

Deno.test("legacy project: HS256 users start, watch and cancel; bad tokens are 401; the service_role key runs the processor", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({
    members: { owner: "owner", viewer: "member" },
    ultravoxKey: "uv_legacy_key",
  });
  const anonKey = await legacyApiKey("anon");
  const serviceRoleKey = await legacyServiceRoleKey();
  await using s = await stack(db, legacyConfig(serviceRoleKey, anonKey), [anonKey]);
  const owner = legacyHeaders(anonKey, await legacyUserToken(agency.users.owner));
  const viewer = legacyHeaders(anonKey, await legacyUserToken(agency.users.viewer));

  const started = await s.send("start-historical-sync", owner, { agency_id: agency.id });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const jobId = started.body.job.id;
  const status = await s.send("get-sync-status", viewer, { job_id: jobId });
  assert.deepEqual([status.status, status.body.job.id], [200, jobId]);
  const forbidden = await s.send("start-historical-sync", viewer, { agency_id: agency.id });
  assert.deepEqual([forbidden.status, forbidden.body.error.code], [403, "forbidden"]);

  for (
    const token of [
      await legacyUserToken(agency.users.owner, { expiresIn: -30 }),
      await legacyUserToken(agency.users.owner, { secret: "a-wrong-legacy-secret-".repeat(2) }),
      await forgedLegacyToken(agency.users.viewer, agency.users.owner),
      await legacyUserToken(agency.users.owner, { noExp: true }),
    ]
  ) {
    const r = await s.send("cancel-historical-sync", legacyHeaders(anonKey, token), {
      job_id: jobId,
    });
    assert.deepEqual([r.status, r.body.error.code], [401, "unauthorized"]);
  }
  // A legacy project's JWKS is empty: an ES256 token of the dev key is refused.
  const es256 = await s.send(
    "get-sync-status",
    legacyHeaders(anonKey, await userToken(agency.users.owner)),
    { job_id: jobId },
  );
  assert.equal(es256.status, 401);

  const cancelled = await s.send("cancel-historical-sync", owner, { job_id: jobId });
  assert.deepEqual([cancelled.status, cancelled.body.job.status], [200, "cancelled"]);

  // The processor: the service_role key in apikey; nothing else.
  const ran = await s.send("process-historical-sync", { apikey: serviceRoleKey }, {
    job_id: jobId,
  });
  assert.equal(ran.status, 200, JSON.stringify(ran.body));
  assert.deepEqual(s.processed, [jobId]);
  const wrongKinds: Record<string, string>[] = [
    { apikey: SECRET_KEY },
    { apikey: anonKey },
    { authorization: `Bearer ${serviceRoleKey}` },
    owner,
  ];
  for (const headers of wrongKinds) {
    const r = await s.send("process-historical-sync", headers, { job_id: jobId });
    assert.deepEqual([r.status, r.body.error.code], [401, "unauthorized"]);
  }
  // And user endpoints refuse the service_role key, wherever it is sent.
  const asUser = await s.send("get-sync-status", {
    apikey: serviceRoleKey,
    authorization: owner.authorization,
  }, {
    job_id: jobId,
  });
  assert.equal(asUser.status, 401);
  assert.deepEqual(s.processed, [jobId]);
});

Deno.test("legacy project with its Auth server down: 500 internal_error, and nothing is started", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: "k" });
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = `http://127.0.0.1:${(probe.addr as Deno.NetAddr).port}`;
  probe.close();
  const serviceRoleKey = await legacyServiceRoleKey();
  // The functions' SUPABASE_URL points at a port nobody listens on.
  await using s = await stack(db, () => legacyConfig(serviceRoleKey, PUBLISHABLE_KEY)(closed));
  const original = console.error;
  console.error = () => {}; // the expected "auth_server" log line
  try {
    const r = await s.send(
      "start-historical-sync",
      legacyHeaders(PUBLISHABLE_KEY, await legacyUserToken(agency.users.owner)),
      { agency_id: agency.id },
    );
    assert.deepEqual([r.status, r.body.error.code], [500, "internal_error"]);
    assert.match(r.body.error.message, /try again/);
  } finally {
    console.error = original;
  }
  assert.equal(await db.countJobs(agency.id), 0);
});

Deno.test("a project on the new keys: ES256 and legacy tokens both work; the service_role key does not run the processor", async () => {
  await using db = await TestDb.open();
  const agency = await db.createAgency({ members: { owner: "owner" }, ultravoxKey: "k" });
  const serviceRoleKey = await legacyServiceRoleKey();
  // As the platform sets it: the new keys and, beside them, the legacy service_role key.
  await using s = await stack(db, (url) =>
    loadConfig(envOf({
      ...devEnv(envOf({})),
      SUPABASE_URL: url,
      SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
    })));
  const headers = (token: string) => ({
    apikey: PUBLISHABLE_KEY,
    authorization: `Bearer ${token}`,
  });
  const started = await s.send(
    "start-historical-sync",
    headers(await userToken(agency.users.owner)),
    {
      agency_id: agency.id,
    },
  );
  assert.equal(started.status, 201);
  const jobId = started.body.job.id;
  const legacy = await s.send(
    "get-sync-status",
    headers(await legacyUserToken(agency.users.owner)),
    {
      job_id: jobId,
    },
  );
  assert.equal(legacy.status, 200);

  const refused = await s.send("process-historical-sync", { apikey: serviceRoleKey }, {
    job_id: jobId,
  });
  assert.deepEqual([refused.status, refused.body.error.code], [401, "unauthorized"]);
  const ran = await s.send("process-historical-sync", { apikey: SECRET_KEY }, { job_id: jobId });
  assert.equal(ran.status, 200);
  assert.deepEqual(s.processed, [jobId]);
  await s.send("cancel-historical-sync", headers(await userToken(agency.users.owner)), {
    job_id: jobId,
  });
});
