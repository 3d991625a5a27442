// tools/dev_env.ts: the environment serve, the demo and the tests hand the functions
// (docs/ARCHITECTURE.md §8): the dev keys' public parts only, never mixed with your own.
import assert from "node:assert/strict";
import { devEnv } from "../../tools/dev_env.ts";
import devKeys from "../../supabase/dev-keys.json" with { type: "json" };

const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("on an empty environment: the flag, the dev JWKS and the two key maps", () => {
  assert.deepEqual(devEnv(envOf({})), {
    SYNC_ALLOW_DEV_KEYS: "1",
    SUPABASE_JWKS: JSON.stringify(devKeys.jwks),
    SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: devKeys.publishable_key }),
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: devKeys.secret_key }),
  });
});

Deno.test("never the private key nor the legacy JWT secret", () => {
  const text = JSON.stringify(devEnv(envOf({})));
  assert.ok(!text.includes(devKeys.private_jwk.d));
  assert.ok(!text.includes(devKeys.legacy_jwt_secret));
});

Deno.test("a group you set any variable of is left alone, so keys never mix", () => {
  const added = devEnv(envOf({
    SUPABASE_JWKS_URL: "https://example.test/jwks",
    SUPABASE_ANON_KEY: "eyJanon",
    SUPABASE_SERVICE_ROLE_KEY: "eyJservice",
  }));
  assert.deepEqual(added, { SYNC_ALLOW_DEV_KEYS: "1" });
  assert.deepEqual(
    Object.keys(devEnv(envOf({ SUPABASE_SECRET_KEY: "sb_secret_mine", SYNC_ALLOW_DEV_KEYS: "1" }))),
    ["SUPABASE_JWKS", "SUPABASE_PUBLISHABLE_KEYS"],
  );
});

Deno.test("SYNC_ALLOW_DEV_KEYS set to anything but 1 opts out of every dev key", () => {
  assert.deepEqual(devEnv(envOf({ SYNC_ALLOW_DEV_KEYS: "" })), {});
  assert.deepEqual(devEnv(envOf({ SYNC_ALLOW_DEV_KEYS: "0" })), {});
});
