// docs/ARCHITECTURE.md §6 check order, for each of the four functions: OPTIONS preflight → method
// (405) → size and type (413, 415) → credentials (401) → body (400). Each step is tested
// with every later step also failing, so only the right order gives the expected answer.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { MAX_BODY_BYTES } from "../../supabase/functions/_shared/http/request.ts";
import { makeHandler as makeStart } from "../../supabase/functions/start-historical-sync/index.ts";
import { makeHandler as makeProcess } from "../../supabase/functions/process-historical-sync/index.ts";
import { makeHandler as makeCancel } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { makeHandler as makeStatus } from "../../supabase/functions/get-sync-status/index.ts";
import { TestDb } from "../support/db.ts";
import { call, expectError, functionRequest } from "../support/requests.ts";
import { SECRET_KEY, secretKeyHeaders, userHeaders, userToken } from "../support/tokens.ts";

const config = loadConfig();

interface Endpoint {
  name: string;
  make: (db: TestDb) => (req: Request) => Promise<Response>;
  wrongMethod: string;
  /** Valid credentials for this endpoint. */
  credentials: (db: TestDb) => Promise<Record<string, string>>;
  /** Credentials of the wrong kind. */
  wrongKind: (db: TestDb) => Promise<Record<string, string>>;
}

const asUser = async (db: TestDb) => userHeaders(await userToken(await db.createUser()));

const endpoints: Endpoint[] = [
  {
    name: "start-historical-sync",
    make: (db) =>
      makeStart({ sql: db.sql, config, now: () => new Date(), kick: () => assert.fail("kicked") }),
    wrongMethod: "GET",
    credentials: asUser,
    wrongKind: () => Promise.resolve({ apikey: SECRET_KEY }),
  },
  {
    name: "process-historical-sync",
    make: (db) =>
      makeProcess({
        sql: db.sql,
        config,
        process: () => Promise.reject(new Error("must not run")),
      }),
    wrongMethod: "GET",
    credentials: () => Promise.resolve(secretKeyHeaders()),
    wrongKind: asUser,
  },
  {
    name: "cancel-historical-sync",
    make: (db) => makeCancel({ sql: db.sql, config, now: () => new Date() }),
    wrongMethod: "GET",
    credentials: asUser,
    wrongKind: () => Promise.resolve({ authorization: `Bearer ${SECRET_KEY}` }),
  },
  {
    name: "get-sync-status",
    make: (db) => makeStatus({ sql: db.sql, config, now: () => new Date() }),
    wrongMethod: "DELETE",
    credentials: asUser,
    wrongKind: () => Promise.resolve({ apikey: SECRET_KEY }),
  },
];

const tooBig = new Uint8Array(MAX_BODY_BYTES + 1).fill(0x20);

for (const ep of endpoints) {
  Deno.test(`${ep.name}: OPTIONS is a 2xx with CORS headers and needs no credentials`, async () => {
    await using db = await TestDb.open();
    const res = await ep.make(db)(functionRequest(ep.name, undefined, { method: "OPTIONS" }));
    assert.ok(res.status >= 200 && res.status < 300);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /apikey/);
    await res.body?.cancel();
  });

  Deno.test(`${ep.name}: a wrong method is 405 before anything else`, async () => {
    await using db = await TestDb.open();
    const reply = await call(
      ep.make(db),
      functionRequest(ep.name, undefined, { method: ep.wrongMethod }),
    );
    expectError(reply, 405, "method_not_allowed");
    assert.equal(reply.headers.get("access-control-allow-origin"), "*");
    assert.match(reply.headers.get("allow") ?? "", /POST/);
  });

  Deno.test(`${ep.name}: a body over 64 KiB is 413 before credentials`, async () => {
    await using db = await TestDb.open();
    const reply = await call(
      ep.make(db),
      functionRequest(ep.name, tooBig, { headers: { "content-type": "text/plain" } }),
    );
    expectError(reply, 413, "payload_too_large");
    assert.equal(reply.headers.get("access-control-allow-origin"), "*");
  });

  Deno.test(`${ep.name}: a non-JSON Content-Type is 415 before credentials`, async () => {
    await using db = await TestDb.open();
    const reply = await call(
      ep.make(db),
      functionRequest(ep.name, "a=1", {
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
    );
    expectError(reply, 415, "unsupported_media_type");
  });

  Deno.test(`${ep.name}: missing credentials are 401 before the body is parsed`, async () => {
    await using db = await TestDb.open();
    const reply = await call(ep.make(db), functionRequest(ep.name, "{not json"));
    expectError(reply, 401, "unauthorized");
    assert.equal(reply.headers.get("access-control-allow-origin"), "*");
  });

  Deno.test(`${ep.name}: credentials of the wrong kind are 401`, async () => {
    await using db = await TestDb.open();
    const reply = await call(
      ep.make(db),
      functionRequest(ep.name, "{not json", { headers: await ep.wrongKind(db) }),
    );
    expectError(reply, 401, "unauthorized");
  });

  Deno.test(`${ep.name}: a body that is not a JSON object is 400 invalid_json`, async () => {
    await using db = await TestDb.open();
    const handler = ep.make(db);
    const headers = await ep.credentials(db);
    for (const text of ["{not json", "[]", "null", '"text"']) {
      const reply = await call(handler, functionRequest(ep.name, text, { headers }));
      expectError(reply, 400, "invalid_json");
    }
  });

  Deno.test(`${ep.name}: an unknown field is 400 validation_failed naming it`, async () => {
    await using db = await TestDb.open();
    const reply = await call(
      ep.make(db),
      functionRequest(ep.name, { surprise: true }, { headers: await ep.credentials(db) }),
    );
    expectError(reply, 400, "validation_failed");
    assert.ok(
      reply.body.error.details.some((d: { path: string }) => d.path === "surprise"),
      JSON.stringify(reply.body),
    );
  });
}
