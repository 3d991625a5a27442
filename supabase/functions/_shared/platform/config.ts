// Runtime configuration, read only from the environment (docs/ARCHITECTURE.md §8).
//
// The functions never import the committed dev keys (a deploy bundles everything they
// import): `deno task serve`, the demo and the tests hand them in through the environment
// (tools/dev_env.ts) together with SYNC_ALLOW_DEV_KEYS=1. Only then, and only with a loopback
// SUPABASE_URL and database, do the local defaults below apply; anywhere else every setting
// the functions need must be present, and a missing one is an error naming the variable.
import { z } from "zod";

const int = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

/** The local cluster's database (scripts/db/), the default of every tool and test too. */
export const LOCAL_DB_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres";
/** Where `deno task serve` listens by default. */
export const LOCAL_SUPABASE_URL = "http://127.0.0.1:54321";

const Env = z.object({
  SYNC_ALLOW_DEV_KEYS: z.literal("1", { error: "must be 1 or unset" }).optional(),
  SUPABASE_DB_URL: z.string().min(1).optional(),
  SYNC_DB_URL: z.string().min(1).optional(),
  SUPABASE_URL: z.url().optional(),
  ULTRAVOX_API_BASE: z.url().default("https://api.ultravox.ai/api"),
  SYNC_TIME_BUDGET_MS: int(50_000),
  SYNC_MAX_PAGES_PER_RUN: int(100),
  SYNC_PAGE_SIZE: int(100),
  SYNC_MAX_JOBS_PER_RUN: int(4),
  SYNC_MAX_INVOCATIONS: int(4),
  SYNC_SLICES: int(8),
  SYNC_LEASE_SECONDS: int(120),
  SYNC_MAX_ATTEMPTS: int(10),
  SYNC_MAX_PAGE_BYTES: int(16 * 1024 * 1024),
  SYNC_USER_ACTIONS_PER_MINUTE: int(30),
  SYNC_CATCH_UP_OVERLAP_HOURS: int(24, 0),
});

export type EnvReader = (name: string) => string | undefined;

type Settings = Omit<z.infer<typeof Env>, "SYNC_ALLOW_DEV_KEYS">;

export type Config = Settings & {
  SUPABASE_URL: string;
  SUPABASE_DB_URL: string;
  /** SYNC_ALLOW_DEV_KEYS=1 (and a loopback SUPABASE_URL and database). */
  devKeysAllowed: boolean;
  /** JWKS used to verify user JWTs: inline, or null when only a URL is configured. */
  jwks: { keys: JsonWebKey[] } | null;
  jwksUrl: string | null;
  /** Publishable keys; on a project without them, `{default: SUPABASE_ANON_KEY}`. */
  publishableKeys: Record<string, string>;
  /** The project's secret API keys; empty on a legacy project that has none. */
  secretKeys: Record<string, string>;
  /** SUPABASE_SERVICE_ROLE_KEY (legacy), accepted by the processor only without secretKeys. */
  serviceRoleKey: string | null;
};

/** Thrown for any bad or missing setting; the message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const LOCAL_HINT = "Locally, `deno task serve`, the demo and the tests set it from " +
  "supabase/dev-keys.json (tools/dev_env.ts).";

function missing(name: string, what: string, alternatives: string[] = []): ConfigError {
  const nor = alternatives.length ? ` (nor ${alternatives.join(", nor ")})` : "";
  return new ConfigError(`${name} is not set${nor}: set it to ${what}. ${LOCAL_HINT}`);
}

function keyMap(env: EnvReader, mapVar: string, singleVar: string): Record<string, string> {
  const map = env(mapVar);
  if (map) {
    let value: unknown;
    try {
      value = JSON.parse(map);
    } catch {
      value = undefined;
    }
    const parsed = z.record(z.string(), z.string().min(1)).safeParse(value);
    if (!parsed.success) {
      throw new ConfigError(
        `${mapVar} must be a JSON map of key names to keys, e.g. {"default": "…"}`,
      );
    }
    if (Object.keys(parsed.data).length > 0) return parsed.data;
  }
  const single = env(singleVar);
  return single ? { default: single } : {};
}

const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });

function inlineJwks(text: string): Config["jwks"] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const parsed = Jwks.safeParse(value);
  if (!parsed.success) {
    throw new ConfigError('SUPABASE_JWKS must be a JSON Web Key Set: {"keys": [ … ]}');
  }
  return parsed.data as Config["jwks"];
}

/** True for localhost, 127.0.0.0/8 and ::1: traffic that never leaves the machine. */
export function isLoopback(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return false;
  }
  return host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host);
}

/** https, or plain http to a loopback host only (the URL receives keys or serves keys). */
function requireHttpsOrLoopback(name: string, url: string, why: string, example: string) {
  const { protocol } = new URL(url);
  if (protocol === "https:" || (protocol === "http:" && isLoopback(url))) return;
  throw new ConfigError(
    `${name} must be an https URL (plain http only for a loopback host such as 127.0.0.1), ` +
      `since ${why}: set it to ${example}`,
  );
}

/** Reads and validates the environment; throws a ConfigError naming the bad variable. */
export function loadConfig(env: EnvReader = (name) => Deno.env.get(name)): Config {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(Env.shape)) {
    const value = env(name);
    if (value !== undefined && value !== "") raw[name] = value;
  }
  const parsed = Env.safeParse(raw);
  if (!parsed.success) {
    const bad = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`Invalid configuration: ${bad}`);
  }
  const { SYNC_ALLOW_DEV_KEYS, ...settings } = parsed.data;
  const devKeysAllowed = SYNC_ALLOW_DEV_KEYS === "1";

  const supabaseUrl = settings.SUPABASE_URL ?? (devKeysAllowed ? LOCAL_SUPABASE_URL : null);
  if (!supabaseUrl) throw missing("SUPABASE_URL", "the project's URL (https://<ref>.supabase.co)");
  const dbUrl = settings.SUPABASE_DB_URL ?? settings.SYNC_DB_URL ??
    (devKeysAllowed ? LOCAL_DB_URL : null);
  if (!dbUrl) {
    throw missing("SUPABASE_DB_URL", "the project's Postgres connection string", ["SYNC_DB_URL"]);
  }
  if (devKeysAllowed) {
    // The database the functions really use (databaseUrl below): SYNC_DB_URL wins.
    const remote = [
      ["SUPABASE_URL", supabaseUrl],
      settings.SYNC_DB_URL ? ["SYNC_DB_URL", settings.SYNC_DB_URL] : ["SUPABASE_DB_URL", dbUrl],
    ].find(([, url]) => !isLoopback(url));
    if (remote) {
      throw new ConfigError(
        `SYNC_ALLOW_DEV_KEYS=1 is for a local stack only, but ${remote[0]} is not a loopback ` +
          `address (localhost, 127.0.0.1, ::1): unset SYNC_ALLOW_DEV_KEYS and set the project's ` +
          `own keys, or point ${remote[0]} at this machine.`,
      );
    }
  }
  requireHttpsOrLoopback(
    "ULTRAVOX_API_BASE",
    settings.ULTRAVOX_API_BASE,
    "the agencies' Ultravox keys are sent to it",
    "https://api.ultravox.ai/api",
  );

  const jwksText = env("SUPABASE_JWKS");
  // Neither set: the project's Auth publishes its keys at a well-known path (as
  // @supabase/server assumes), so a hosted project works without setting either.
  const jwksUrl = jwksText ? null : env("SUPABASE_JWKS_URL") ||
    `${supabaseUrl.replace(/\/+$/, "")}/auth/v1/.well-known/jwks.json`;
  if (jwksUrl) {
    if (!z.url().safeParse(jwksUrl).success) {
      throw new ConfigError("SUPABASE_JWKS_URL must be a URL");
    }
    requireHttpsOrLoopback(
      "SUPABASE_JWKS_URL",
      jwksUrl,
      "the keys that verify user tokens are fetched from it",
      "https://<ref>.supabase.co/auth/v1/.well-known/jwks.json",
    );
  }

  let publishableKeys = keyMap(env, "SUPABASE_PUBLISHABLE_KEYS", "SUPABASE_PUBLISHABLE_KEY");
  const anonKey = env("SUPABASE_ANON_KEY");
  if (Object.keys(publishableKeys).length === 0 && anonKey) publishableKeys = { default: anonKey };
  if (Object.keys(publishableKeys).length === 0) {
    throw missing("SUPABASE_PUBLISHABLE_KEYS", "the project's publishable key(s)", [
      "SUPABASE_PUBLISHABLE_KEY",
      "the legacy SUPABASE_ANON_KEY",
    ]);
  }
  const secretKeys = keyMap(env, "SUPABASE_SECRET_KEYS", "SUPABASE_SECRET_KEY");
  const serviceRoleKey = env("SUPABASE_SERVICE_ROLE_KEY") || null;
  if (Object.keys(secretKeys).length === 0 && !serviceRoleKey) {
    throw missing(
      "SUPABASE_SECRET_KEYS",
      "the project's secret key(s), which the processor accepts",
      [
        "SUPABASE_SECRET_KEY",
        "a legacy project's SUPABASE_SERVICE_ROLE_KEY",
      ],
    );
  }

  return {
    ...settings,
    SUPABASE_URL: supabaseUrl,
    SUPABASE_DB_URL: dbUrl,
    devKeysAllowed,
    jwks: jwksText ? inlineJwks(jwksText) : null,
    jwksUrl,
    publishableKeys,
    secretKeys,
    serviceRoleKey,
  };
}

/**
 * The keys the processor accepts in `apikey`: every secret key, or on a legacy project
 * without secret keys the service_role key (docs/ARCHITECTURE.md §6).
 */
export function processorKeys(c: Pick<Config, "secretKeys" | "serviceRoleKey">): string[] {
  const keys = Object.values(c.secretKeys);
  if (keys.length > 0) return keys;
  return c.serviceRoleKey ? [c.serviceRoleKey] : [];
}

/** The key cron dispatches with (Vault `functions_secret_key`): the default secret key. */
export function dispatchKey(c: Pick<Config, "secretKeys" | "serviceRoleKey">): string {
  return c.secretKeys.default ?? processorKeys(c)[0];
}

/**
 * The URL the functions connect to: SYNC_DB_URL wins, since hosted SUPABASE_DB_URL is the
 * direct connection and names starting SUPABASE_ are reserved (docs/OPERATIONS.md).
 */
export function databaseUrl(c: Pick<Config, "SYNC_DB_URL" | "SUPABASE_DB_URL">): string {
  return c.SYNC_DB_URL ?? c.SUPABASE_DB_URL;
}

let cached: Config | null = null;
export function config(): Config {
  return cached ??= loadConfig();
}
