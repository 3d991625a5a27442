// The environment the functions run with locally (docs/ARCHITECTURE.md §8): the committed
// dev keys of supabase/dev-keys.json (LOCAL ONLY) handed in as the variables a Supabase
// project sets, plus SYNC_ALLOW_DEV_KEYS=1. `deno task serve`, the demo and the tests use it;
// the functions themselves never import the keys file.
//
// Only public halves and API keys go in: never `private_jwk` nor `legacy_jwt_secret`, which
// only sign tokens (tools/dev_tokens.ts) and answer /auth/v1/user (tools/stand_in_auth.ts).
import devKeys from "../supabase/dev-keys.json" with { type: "json" };

type EnvReader = (name: string) => string | undefined;

/** Each value is set only when none of the variables of its group is (so they never mix). */
const GROUPS: { names: string[]; value: string }[] = [
  { names: ["SYNC_ALLOW_DEV_KEYS"], value: "1" },
  { names: ["SUPABASE_JWKS", "SUPABASE_JWKS_URL"], value: JSON.stringify(devKeys.jwks) },
  {
    names: ["SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_ANON_KEY"],
    value: JSON.stringify({ default: devKeys.publishable_key }),
  },
  {
    names: ["SUPABASE_SECRET_KEYS", "SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"],
    value: JSON.stringify({ default: devKeys.secret_key }),
  },
];

/**
 * The variables to add to `env` for a local run: for each group none of whose variables is
 * set, its first variable with the dev value. Empty when SYNC_ALLOW_DEV_KEYS is set to
 * anything but 1 (e.g. `SYNC_ALLOW_DEV_KEYS=` to run only with keys of your own).
 */
export function devEnv(env: EnvReader = (name) => Deno.env.get(name)): Record<string, string> {
  const flag = env("SYNC_ALLOW_DEV_KEYS");
  if (flag !== undefined && flag !== "1") return {};
  const added: Record<string, string> = {};
  for (const { names, value } of GROUPS) {
    if (names.every((name) => env(name) === undefined)) added[names[0]] = value;
  }
  return added;
}

/** Sets `devEnv()` on this process (children inherit it); returns what it set. */
export function applyDevEnv(): Record<string, string> {
  const added = devEnv();
  for (const [name, value] of Object.entries(added)) Deno.env.set(name, value);
  return added;
}
