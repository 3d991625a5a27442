import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import devKeys from "../../supabase/dev-keys.json" with { type: "json" };

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("with nothing set, every variable has its local default", () => {
  const c = loadConfig(envOf({}));
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
    ],
    [50000, 100, 100, 4, 120, 10],
  );
  assert.deepEqual(c.jwks, devKeys.jwks);
  assert.deepEqual(c.secretKeys, { default: devKeys.secret_key });
  assert.deepEqual(c.publishableKeys, { default: devKeys.publishable_key });
});

Deno.test("integers come from the environment and a bad one names its variable", () => {
  assert.equal(loadConfig(envOf({ SYNC_PAGE_SIZE: "200" })).SYNC_PAGE_SIZE, 200);
  assert.throws(() => loadConfig(envOf({ SYNC_LEASE_SECONDS: "soon" })), /SYNC_LEASE_SECONDS/);
  assert.throws(() => loadConfig(envOf({ SYNC_MAX_ATTEMPTS: "0" })), /SYNC_MAX_ATTEMPTS/);
});

Deno.test("the plural key map wins over the single key", () => {
  const c = loadConfig(envOf({
    SUPABASE_SECRET_KEYS: '{"default":"sb_secret_map","cron":"sb_secret_cron"}',
    SUPABASE_SECRET_KEY: "sb_secret_single",
    SUPABASE_PUBLISHABLE_KEY: "sb_publishable_single",
  }));
  assert.deepEqual(c.secretKeys, { default: "sb_secret_map", cron: "sb_secret_cron" });
  assert.deepEqual(c.publishableKeys, { default: "sb_publishable_single" });
});

Deno.test("an inline JWKS wins over a JWKS URL", () => {
  const jwks = { keys: [{ kty: "EC", kid: "other" }] };
  const both = loadConfig(envOf({
    SUPABASE_JWKS: JSON.stringify(jwks),
    SUPABASE_JWKS_URL: "https://example.test/jwks",
  }));
  assert.deepEqual([both.jwks, both.jwksUrl], [jwks, null]);
  const urlOnly = loadConfig(envOf({ SUPABASE_JWKS_URL: "https://example.test/jwks" }));
  assert.deepEqual([urlOnly.jwks, urlOnly.jwksUrl], [null, "https://example.test/jwks"]);
});

Deno.test("the dev keys are never a fallback for a non-local SUPABASE_URL", () => {
  const hosted = { SUPABASE_URL: "https://abcd.supabase.co" };
  assert.throws(() => loadConfig(envOf(hosted)), /SUPABASE_JWKS is not set/);
  assert.throws(
    () => loadConfig(envOf({ ...hosted, SUPABASE_JWKS: '{"keys":[]}' })),
    /SUPABASE_PUBLISHABLE_KEYS is not set/,
  );
  const c = loadConfig(envOf({
    ...hosted,
    SUPABASE_JWKS: '{"keys":[]}',
    SUPABASE_PUBLISHABLE_KEY: "sb_publishable_p",
    SUPABASE_SECRET_KEY: "sb_secret_s",
  }));
  assert.deepEqual(c.secretKeys, { default: "sb_secret_s" });
});
