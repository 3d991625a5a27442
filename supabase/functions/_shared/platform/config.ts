// Runtime configuration, read only from the environment (docs/ARCHITECTURE.md §8), each with
// a local default so `deno task serve` works with nothing set.
import { z } from "zod";
import devKeys from "../../../dev-keys.json" with { type: "json" };

const int = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

/** The local cluster's database (scripts/db/), the default of every tool and test too. */
export const LOCAL_DB_URL = "postgresql://postgres:postgres@127.0.0.1:54322/postgres";

const Env = z.object({
  SUPABASE_DB_URL: z.string().min(1).default(LOCAL_DB_URL),
  SYNC_DB_URL: z.string().min(1).optional(),
  SUPABASE_URL: z.url().default("http://127.0.0.1:54321"),
  ULTRAVOX_API_BASE: z.url().default("https://api.ultravox.ai/api"),
  SYNC_TIME_BUDGET_MS: int(50_000),
  SYNC_MAX_PAGES_PER_RUN: int(100),
  SYNC_PAGE_SIZE: int(100),
  SYNC_MAX_JOBS_PER_RUN: int(4),
  SYNC_LEASE_SECONDS: int(120),
  SYNC_MAX_ATTEMPTS: int(10),
  SYNC_MAX_PAGE_BYTES: int(16 * 1024 * 1024),
});

export type EnvReader = (name: string) => string | undefined;

export type Config = z.infer<typeof Env> & {
  /** JWKS used to verify user JWTs: inline, or null when only a URL is configured. */
  jwks: { keys: JsonWebKey[] } | null;
  jwksUrl: string | null;
  publishableKeys: Record<string, string>;
  secretKeys: Record<string, string>;
};

function keyMap(
  env: EnvReader,
  mapVar: string,
  singleVar: string,
  fallback: () => string,
): Record<string, string> {
  const map = env(mapVar);
  if (map) {
    const parsed = z.record(z.string(), z.string().min(1)).safeParse(JSON.parse(map));
    if (!parsed.success) throw new Error(`${mapVar} must be a JSON map of key names to keys`);
    return parsed.data;
  }
  return { default: env(singleVar) || fallback() };
}

/** Reads and validates the environment; throws a message naming the bad variable. */
export function loadConfig(env: EnvReader = (name) => Deno.env.get(name)): Config {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(Env.shape)) {
    const value = env(name);
    if (value !== undefined && value !== "") raw[name] = value;
  }
  const parsed = Env.safeParse(raw);
  if (!parsed.success) {
    const bad = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`Invalid configuration: ${bad}`);
  }
  const jwksText = env("SUPABASE_JWKS");
  const jwksUrl = env("SUPABASE_JWKS_URL") || null;
  // The committed dev keys are only a fallback for a local stack: anywhere else a missing
  // key is a configuration error, never a silent trust in public keys.
  const devKey = <T>(name: string, value: T): T => {
    if (isLoopback(parsed.data.SUPABASE_URL)) return value;
    throw new Error(
      `${name} is not set, and the local dev keys only serve a loopback SUPABASE_URL`,
    );
  };
  let jwks: Config["jwks"] = null;
  if (jwksText) jwks = JSON.parse(jwksText);
  else if (!jwksUrl) jwks = devKey("SUPABASE_JWKS", devKeys.jwks as Config["jwks"]);
  return {
    ...parsed.data,
    jwks,
    jwksUrl: jwksText ? null : jwksUrl,
    publishableKeys: keyMap(
      env,
      "SUPABASE_PUBLISHABLE_KEYS",
      "SUPABASE_PUBLISHABLE_KEY",
      () => devKey("SUPABASE_PUBLISHABLE_KEYS", devKeys.publishable_key),
    ),
    secretKeys: keyMap(
      env,
      "SUPABASE_SECRET_KEYS",
      "SUPABASE_SECRET_KEY",
      () => devKey("SUPABASE_SECRET_KEYS", devKeys.secret_key),
    ),
  };
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\./.test(host) ||
    host === "host.docker.internal";
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
