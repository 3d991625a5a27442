// supabase/config.toml as the Supabase CLI reads it (docs/ARCHITECTURE.md §8): what can be
// checked without Docker. `supabase db push --dry-run` loads and validates the whole config,
// reading the [auth] signing keys file; the rest pins that `supabase start` gets the dev keys
// and that [db.vault] never writes anything unless asked to.
import assert from "node:assert/strict";
import { dbUrl } from "../../scripts/db/local_cluster.ts";
import { SUPABASE_CLI } from "../../scripts/db/reset.ts";
import devKeys from "../../supabase/dev-keys.json" with { type: "json" };

const ROOT = new URL("../../", import.meta.url).pathname;
const CONFIG = await Deno.readTextFile(`${ROOT}supabase/config.toml`);

async function dryRunPush(workdir: string) {
  const out = await new Deno.Command("npx", {
    args: [
      "-y",
      SUPABASE_CLI,
      "db",
      "push",
      "--dry-run",
      "--db-url",
      dbUrl(),
      "--workdir",
      workdir,
    ],
    cwd: workdir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** `key = "value"` of one [table] of config.toml (flat string values only). */
function tableOf(table: string): Record<string, string> {
  const body = CONFIG.split(/^\[/m).find((t) => t.startsWith(`${table}]`)) ?? "";
  return Object.fromEntries(
    [...body.matchAll(/^(\w+)\s*=\s*"([^"]*)"\s*$/gm)].map((m) => [m[1], m[2]]),
  );
}

/** The CLI loads and validates config.toml before it connects; config errors stop it there. */
const CONFIG_ERROR = /failed to (read|decode|parse|load)|invalid config|missing required/i;

Deno.test("the Supabase CLI parses and validates supabase/config.toml (signing keys file included)", async () => {
  const r = await dryRunPush(ROOT);
  // Past validation it reaches the database; what it then finds there (pending migrations
  // of other work in progress) is not this test's business.
  assert.match(r.text, /Connecting to local database/, r.text);
  assert.doesNotMatch(r.text, CONFIG_ERROR);
});

Deno.test("the CLI really reads the signing keys file: a missing one fails the same command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/supabase/migrations`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/supabase/config.toml`,
      CONFIG.replace("./dev-signing-keys.json", "./no-such-keys.json"),
    );
    const r = await dryRunPush(dir);
    assert.notEqual(r.code, 0);
    assert.match(r.text, /failed to read signing keys/);
    assert.doesNotMatch(r.text, /Connecting to/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("[auth] gives `supabase start` the dev keys: signing key, publishable, secret, legacy secret", async () => {
  const auth = tableOf("auth");
  assert.equal(auth.signing_keys_path, "./dev-signing-keys.json");
  assert.equal(auth.publishable_key, devKeys.publishable_key);
  assert.equal(auth.secret_key, devKeys.secret_key);
  assert.equal(auth.jwt_secret, devKeys.legacy_jwt_secret);
  assert.ok(devKeys.legacy_jwt_secret.length >= 40);

  // The CLI's format: a JSON array of JWKs whose first key signs; it is the dev private key,
  // and its public half is the dev JWKS the functions are given.
  const keys = JSON.parse(await Deno.readTextFile(`${ROOT}supabase/dev-signing-keys.json`));
  assert.ok(Array.isArray(keys) && keys.length === 1);
  const [key] = keys;
  const { kty, crv, x, y, d, kid, alg } = devKeys.private_jwk;
  assert.deepEqual({
    kty: key.kty,
    crv: key.crv,
    x: key.x,
    y: key.y,
    d: key.d,
    kid: key.kid,
    alg: key.alg,
  }, {
    kty,
    crv,
    x,
    y,
    d,
    kid,
    alg,
  });
  assert.ok(key.key_ops.includes("sign"));
  const [pub] = devKeys.jwks.keys;
  assert.deepEqual([pub.kid, pub.x, pub.y], [kid, x, y]);
});

Deno.test("[db.vault] writes the dispatcher's two secrets only from the environment", () => {
  // The CLI writes [db.vault] on every `db push` with pending migrations, a hosted project's
  // included; an unset env() reference writes nothing, a literal would overwrite its Vault.
  assert.deepEqual(tableOf("db.vault"), {
    project_url: "env(SYNC_VAULT_PROJECT_URL)",
    functions_secret_key: "env(SYNC_VAULT_FUNCTIONS_SECRET_KEY)",
  });
});
