// Runtime configuration, read only from the environment (DESIGN.md §8), each with a
// local default so `deno task serve` works with nothing set.
import { z } from "zod";
import devKeys from "../../dev-keys.json" with { type: "json" };

const int = (fallback: number, min = 1) => z.coerce.number().int().min(min).default(fallback);

const Env = z.object({
  SUPABASE_DB_URL: z.string().min(1).default(
    "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
  ),
  SUPABASE_URL: z.url().default("http://127.0.0.1:54321"),
  ULTRAVOX_API_BASE: z.url().default("https://api.ultravox.ai/api"),
  SYNC_TIME_BUDGET_MS: int(50_000),
  SYNC_MAX_PAGES_PER_RUN: int(100),
  SYNC_PAGE_SIZE: int(100),
  SYNC_MAX_JOBS_PER_RUN: int(4),
  SYNC_LEASE_SECONDS: int(120),
  SYNC_MAX_ATTEMPTS: int(10),
});

export type Config = z.infer<typeof Env> & {
  /** JWKS used to verify user JWTs: inline, or null when only a URL is configured. */
  jwks: { keys: JsonWebKey[] } | null;
  jwksUrl: string | null;
  publishableKeys: Record<string, string>;
  secretKeys: Record<string, string>;
};

function keyMap(mapVar: string, singleVar: string, fallback: string): Record<string, string> {
  const map = Deno.env.get(mapVar);
  if (map) {
    const parsed = z.record(z.string(), z.string().min(1)).safeParse(JSON.parse(map));
    if (!parsed.success) throw new Error(`${mapVar} must be a JSON map of key names to keys`);
    return parsed.data;
  }
  return { default: Deno.env.get(singleVar) || fallback };
}

/** Reads and validates the environment; throws a message naming the bad variable. */
export function loadConfig(): Config {
  const raw: Record<string, string> = {};
  for (const name of Object.keys(Env.shape)) {
    const value = Deno.env.get(name);
    if (value !== undefined && value !== "") raw[name] = value;
  }
  const parsed = Env.safeParse(raw);
  if (!parsed.success) {
    const bad = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`Invalid configuration: ${bad}`);
  }
  const jwksText = Deno.env.get("SUPABASE_JWKS");
  const jwksUrl = Deno.env.get("SUPABASE_JWKS_URL") || null;
  return {
    ...parsed.data,
    jwks: jwksText ? JSON.parse(jwksText) : jwksUrl ? null : devKeys.jwks as Config["jwks"],
    jwksUrl: jwksText ? null : jwksUrl,
    publishableKeys: keyMap(
      "SUPABASE_PUBLISHABLE_KEYS",
      "SUPABASE_PUBLISHABLE_KEY",
      devKeys.publishable_key,
    ),
    secretKeys: keyMap("SUPABASE_SECRET_KEYS", "SUPABASE_SECRET_KEY", devKeys.secret_key),
  };
}

let cached: Config | null = null;
export function config(): Config {
  return cached ??= loadConfig();
}
