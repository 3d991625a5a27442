// loadConfig (docs/ARCHITECTURE.md §8): only the environment; local defaults only under
// SYNC_ALLOW_DEV_KEYS=1 with a loopback project and database; every missing or bad setting
// is an error that names its variable.
import assert from "node:assert/strict";
import {
  ConfigError,
  dispatchKey,
  loadConfig,
  processorKeys,
} from "../../supabase/functions/_shared/platform/config.ts";
import { devEnv } from "../../tools/dev_env.ts";
import devKeys from "../../supabase/dev-keys.json" with { type: "json" };

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];
/** What `deno task serve` and the tests run with: the dev keys, SYNC_ALLOW_DEV_KEYS=1. */
const LOCAL = devEnv(envOf({}));
/** A hosted project on the new keys, as the platform sets it. */
const HOSTED = {
  SUPABASE_URL: "https://abcd.supabase.co",
  SUPABASE_DB_URL: "postgresql://postgres:pw@db.abcd.supabase.co:5432/postgres",
  SUPABASE_JWKS: '{"keys":[]}',
  SUPABASE_PUBLISHABLE_KEYS: '{"default":"sb_publishable_p"}',
  SUPABASE_SECRET_KEYS: '{"default":"sb_secret_s"}',
};
const without = (vars: Record<string, string>, ...names: string[]) =>
  Object.fromEntries(Object.entries(vars).filter(([k]) => !names.includes(k)));

function refused(vars: Record<string, string>, message: RegExp) {
  assert.throws(() => loadConfig(envOf(vars)), (e) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("locally (dev keys handed in, SYNC_ALLOW_DEV_KEYS=1) every other setting has its default", () => {
  const c = loadConfig(envOf(LOCAL));
  assert.equal(c.devKeysAllowed, true);
  assert.equal(c.SUPABASE_DB_URL, "postgresql://postgres:postgres@127.0.0.1:54322/postgres");
  assert.equal(c.SUPABASE_URL, "http://127.0.0.1:54321");
  assert.equal(c.ULTRAVOX_API_BASE, "https://api.ultravox.ai/api");
  assert.deepEqual(
    [
      c.SYNC_TIME_BUDGET_MS,
      c.SYNC_MAX_PAGES_PER_RUN,
      c.SYNC_PAGE_SIZE,
      c.SYNC_MAX_JOBS_PER_RUN,
      c.SYNC_LEASE_SECONDS,
      c.SYNC_MAX_ATTEMPTS,
      c.SYNC_MAX_PAGE_BYTES,
      c.SYNC_USER_ACTIONS_PER_MINUTE,
    ],
    [50000, 100, 100, 4, 120, 10, 16777216, 30],
  );
  assert.deepEqual(c.jwks, devKeys.jwks);
  assert.deepEqual(c.secretKeys, { default: devKeys.secret_key });
  assert.deepEqual(c.publishableKeys, { default: devKeys.publishable_key });
  assert.equal(c.serviceRoleKey, null);
});

Deno.test("with nothing set there is no default at all: SUPABASE_URL is named", () => {
  refused({}, /^SUPABASE_URL is not set/);
});

Deno.test("a hosted project's environment is complete as the platform sets it", () => {
  const c = loadConfig(envOf(HOSTED));
  assert.equal(c.devKeysAllowed, false);
  assert.equal(c.SUPABASE_URL, HOSTED.SUPABASE_URL);
  assert.deepEqual(c.secretKeys, { default: "sb_secret_s" });
  assert.deepEqual(c.publishableKeys, { default: "sb_publishable_p" });
});

Deno.test("each missing setting is an error naming its variable, hosted or local", () => {
  refused(without(HOSTED, "SUPABASE_DB_URL"), /^SUPABASE_DB_URL is not set \(nor SYNC_DB_URL\)/);
  for (const env of [HOSTED, LOCAL]) {
    refused(
      without(env, "SUPABASE_PUBLISHABLE_KEYS"),
      /^SUPABASE_PUBLISHABLE_KEYS is not set \(nor SUPABASE_PUBLISHABLE_KEY, nor the legacy SUPABASE_ANON_KEY\)/,
    );
    refused(
      without(env, "SUPABASE_SECRET_KEYS"),
      /^SUPABASE_SECRET_KEYS is not set \(nor SUPABASE_SECRET_KEY, nor a legacy project's SUPABASE_SERVICE_ROLE_KEY\)/,
    );
  }
  // SYNC_DB_URL alone is a database.
  const pooled = "postgresql://postgres.abcd:pw@aws-0-eu.pooler.supabase.com:6543/postgres";
  const c = loadConfig(envOf({ ...without(HOSTED, "SUPABASE_DB_URL"), SYNC_DB_URL: pooled }));
  assert.equal(c.SYNC_DB_URL, pooled);
});

Deno.test("without SYNC_ALLOW_DEV_KEYS even a loopback stack gets no defaults", () => {
  refused(without(LOCAL, "SYNC_ALLOW_DEV_KEYS"), /^SUPABASE_URL is not set/);
  refused(
    { ...without(LOCAL, "SYNC_ALLOW_DEV_KEYS"), SUPABASE_URL: "http://127.0.0.1:54321" },
    /^SUPABASE_DB_URL is not set/,
  );
});

Deno.test("SYNC_ALLOW_DEV_KEYS only serves a loopback SUPABASE_URL and database", () => {
  refused({ ...LOCAL, SUPABASE_URL: "https://abcd.supabase.co" }, /SUPABASE_URL is not a loopback/);
  refused({ ...LOCAL, SUPABASE_URL: "http://kong:8000" }, /SUPABASE_URL is not a loopback/);
  refused(
    { ...LOCAL, SUPABASE_DB_URL: HOSTED.SUPABASE_DB_URL },
    /SUPABASE_DB_URL is not a loopback/,
  );
  refused(
    { ...LOCAL, SYNC_DB_URL: "postgresql://u:p@pooler.example.com:6543/postgres" },
    /SYNC_DB_URL is not a loopback/,
  );
  refused({ ...LOCAL, SYNC_ALLOW_DEV_KEYS: "yes" }, /SYNC_ALLOW_DEV_KEYS: must be 1 or unset/);
  for (const url of ["http://localhost:5555", "http://127.0.0.2:54321", "http://[::1]:54321"]) {
    assert.equal(loadConfig(envOf({ ...LOCAL, SUPABASE_URL: url })).SUPABASE_URL, url);
  }
  const db = "postgresql://postgres:postgres@localhost:5432/postgres";
  assert.equal(loadConfig(envOf({ ...LOCAL, SUPABASE_DB_URL: db })).SUPABASE_DB_URL, db);
});

Deno.test("SUPABASE_JWKS_URL and ULTRAVOX_API_BASE must be https unless loopback", () => {
  const urlOnly = without(HOSTED, "SUPABASE_JWKS");
  refused(
    { ...urlOnly, SUPABASE_JWKS_URL: "http://abcd.supabase.co/auth/v1/.well-known/jwks.json" },
    /^SUPABASE_JWKS_URL must be an https URL .*: set it to https:\/\//,
  );
  refused({ ...urlOnly, SUPABASE_JWKS_URL: "not a url" }, /^SUPABASE_JWKS_URL must be a URL/);
  for (
    const ok of [
      "https://abcd.supabase.co/auth/v1/.well-known/jwks.json",
      "http://127.0.0.1:54321/jwks",
    ]
  ) {
    assert.equal(loadConfig(envOf({ ...urlOnly, SUPABASE_JWKS_URL: ok })).jwksUrl, ok);
  }
  for (
    const bad of ["http://api.ultravox.ai/api", "http://localhost.example.com/api", "ftp://x/api"]
  ) {
    refused(
      { ...HOSTED, ULTRAVOX_API_BASE: bad },
      /^ULTRAVOX_API_BASE must be an https URL .*Ultravox keys.*https:\/\/api\.ultravox\.ai\/api/,
    );
  }
  for (
    const ok of [
      "http://127.0.0.1:54329/api",
      "http://[::1]:8080/api",
      "https://eu.example.com/api",
    ]
  ) {
    assert.equal(loadConfig(envOf({ ...HOSTED, ULTRAVOX_API_BASE: ok })).ULTRAVOX_API_BASE, ok);
  }
});

Deno.test("integers come from the environment and a bad one names its variable", () => {
  assert.equal(loadConfig(envOf({ ...LOCAL, SYNC_PAGE_SIZE: "200" })).SYNC_PAGE_SIZE, 200);
  refused({ ...LOCAL, SYNC_LEASE_SECONDS: "soon" }, /SYNC_LEASE_SECONDS/);
  refused({ ...LOCAL, SYNC_MAX_ATTEMPTS: "0" }, /SYNC_MAX_ATTEMPTS/);
});

Deno.test("the plural key map wins over the single key; an empty or bad map is handled", () => {
  const c = loadConfig(envOf({
    ...HOSTED,
    SUPABASE_SECRET_KEYS: '{"default":"sb_secret_map","cron":"sb_secret_cron"}',
    SUPABASE_SECRET_KEY: "sb_secret_single",
    SUPABASE_PUBLISHABLE_KEYS: "",
    SUPABASE_PUBLISHABLE_KEY: "sb_publishable_single",
  }));
  assert.deepEqual(c.secretKeys, { default: "sb_secret_map", cron: "sb_secret_cron" });
  assert.deepEqual(c.publishableKeys, { default: "sb_publishable_single" });
  const empty = loadConfig(envOf({
    ...HOSTED,
    SUPABASE_SECRET_KEYS: "{}",
    SUPABASE_SECRET_KEY: "sb_secret_single",
  }));
  assert.deepEqual(empty.secretKeys, { default: "sb_secret_single" });
  refused(
    { ...HOSTED, SUPABASE_SECRET_KEYS: "sb_secret_not_json" },
    /^SUPABASE_SECRET_KEYS must be a JSON map/,
  );
  refused(
    { ...HOSTED, SUPABASE_PUBLISHABLE_KEYS: '{"default":1}' },
    /^SUPABASE_PUBLISHABLE_KEYS must be a JSON map/,
  );
});

Deno.test("an inline JWKS wins over a JWKS URL, and must be a key set", () => {
  const jwks = { keys: [{ kty: "EC", kid: "other" }] };
  const both = loadConfig(envOf({
    ...HOSTED,
    SUPABASE_JWKS: JSON.stringify(jwks),
    SUPABASE_JWKS_URL: "https://example.test/jwks",
  }));
  assert.deepEqual([both.jwks, both.jwksUrl], [jwks, null]);
  refused({ ...HOSTED, SUPABASE_JWKS: "{keys:" }, /^SUPABASE_JWKS must be a JSON Web Key Set/);
  refused({ ...HOSTED, SUPABASE_JWKS: '{"keys":{}}' }, /^SUPABASE_JWKS must be a JSON Web Key Set/);
});

Deno.test("a legacy project: the service_role key serves the processor only without secret keys", () => {
  const legacy = {
    ...without(HOSTED, "SUPABASE_SECRET_KEYS", "SUPABASE_PUBLISHABLE_KEYS"),
    SUPABASE_ANON_KEY: "eyJanon.legacy.jwt",
    SUPABASE_SERVICE_ROLE_KEY: "eyJservice.legacy.jwt",
  };
  const c = loadConfig(envOf(legacy));
  assert.deepEqual(c.secretKeys, {});
  assert.deepEqual(c.publishableKeys, { default: "eyJanon.legacy.jwt" });
  assert.deepEqual(processorKeys(c), ["eyJservice.legacy.jwt"]);
  assert.equal(dispatchKey(c), "eyJservice.legacy.jwt");

  const both = loadConfig(envOf({ ...legacy, SUPABASE_SECRET_KEYS: '{"default":"sb_secret_s"}' }));
  assert.deepEqual(processorKeys(both), ["sb_secret_s"]);
  assert.equal(dispatchKey(both), "sb_secret_s");
  assert.equal(both.serviceRoleKey, "eyJservice.legacy.jwt", "kept, so user endpoints refuse it");
});

Deno.test("configuration errors never carry a key or a database password", () => {
  const secret = "sb_secret_do_not_print_me";
  for (
    const vars of [
      { ...HOSTED, SUPABASE_SECRET_KEYS: secret },
      { ...LOCAL, SUPABASE_DB_URL: "postgresql://postgres:hunter2@db.example.com/postgres" },
    ]
  ) {
    try {
      loadConfig(envOf(vars));
      assert.fail("accepted");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.doesNotMatch(e.message, /do_not_print_me|hunter2/);
    }
  }
});

Deno.test("without SUPABASE_JWKS or SUPABASE_JWKS_URL the keys are fetched from the project's Auth", () => {
  const c = loadConfig(envOf({
    SUPABASE_URL: "https://abcdefghijklmnop.supabase.co/",
    SUPABASE_DB_URL: "postgresql://postgres:pw@db.abcdefghijklmnop.supabase.co:5432/postgres",
    SUPABASE_PUBLISHABLE_KEY: "sb_publishable_x",
    SUPABASE_SECRET_KEY: "sb_secret_x",
  }));
  assert.equal(c.jwks, null);
  assert.equal(c.jwksUrl, "https://abcdefghijklmnop.supabase.co/auth/v1/.well-known/jwks.json");
});
