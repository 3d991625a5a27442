// Credentials (docs/ARCHITECTURE.md §6): user endpoints take the caller's Supabase JWT in
// `Authorization: Bearer`, verified by @supabase/server against the JWKS of our config;
// the processor takes the secret API key in the `apikey` header only. Every failure is a
// 401 `unauthorized` in our envelope; a server misconfiguration (no JWKS, JWKS
// unreachable) is a 500.
import { verifyAuth } from "@supabase/server/core";
import type { Config } from "../platform/config.ts";
import { ApiError } from "./errors.ts";

export interface AuthUser {
  /** `sub` of the verified token: the auth.users id. */
  userId: string;
}

type LibraryEnv = NonNullable<Parameters<typeof verifyAuth>[1]>["env"];

/** Our configuration, handed to the library explicitly (it never reads process env). */
export function supabaseEnv(config: Config): LibraryEnv {
  const jwks = config.jwks ?? (config.jwksUrl ? new URL(config.jwksUrl) : null);
  return {
    url: config.SUPABASE_URL,
    publishableKeys: config.publishableKeys,
    secretKeys: config.secretKeys,
    jwks: jwks as NonNullable<LibraryEnv>["jwks"],
  };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function unauthorized(message: string) {
  return new ApiError(401, "unauthorized", message);
}

const SEND_USER_TOKEN = "Send the signed-in user's access token as Authorization: Bearer <token>.";

/**
 * The verified caller of a user endpoint. Refuses (401) a missing, malformed, forged or
 * expired token, a token without `exp` or whose `sub` is not a uuid, and any secret key
 * (in `apikey` or `Authorization`): a user endpoint never runs with backend credentials.
 */
export async function requireUser(req: Request, config: Config): Promise<AuthUser> {
  const apikey = req.headers.get("apikey");
  if (apikey !== null && await isSecretKey(apikey, config)) {
    throw unauthorized(`This endpoint acts for a user and refuses secret keys. ${SEND_USER_TOKEN}`);
  }
  const { data, error } = await verifyAuth(req, { auth: "user", env: supabaseEnv(config) });
  if (error) {
    if (error.status !== 401) throw error; // misconfiguration: logged, answered as a 500
    if (error.code === "INVALID_JWT") {
      const reason = /verification: (.*?)\.?$/.exec(error.message)?.[1] ?? "it is invalid";
      throw unauthorized(`The access token was refused: ${reason}.`);
    }
    throw unauthorized(SEND_USER_TOKEN);
  }
  const claims: Record<string, unknown> = data.jwtClaims ?? {};
  // jose checks `exp` only when present; docs/ARCHITECTURE.md §6 requires it.
  if (typeof claims.exp !== "number") {
    throw unauthorized("The access token was refused: it has no expiry (exp).");
  }
  if (typeof claims.sub !== "string" || !GUID.test(claims.sub)) {
    throw unauthorized("The access token was refused: its subject (sub) is not a user id.");
  }
  return { userId: claims.sub.toLowerCase() };
}

/**
 * The processor's caller: one of the project's secret keys in the `apikey` header, and no
 * Authorization header at all (neither a user JWT nor a secret key as a bearer token).
 */
export async function requireSecretKey(req: Request, config: Config): Promise<void> {
  if (req.headers.has("authorization")) {
    throw unauthorized(
      "This endpoint takes the secret API key in the apikey header only, without an Authorization header.",
    );
  }
  const { error } = await verifyAuth(req, { auth: "secret:*", env: supabaseEnv(config) });
  if (error) {
    if (error.status !== 401) throw error;
    throw unauthorized("Send the project's secret API key in the apikey header.");
  }
}

async function isSecretKey(value: string, config: Config): Promise<boolean> {
  if (value.startsWith("sb_secret_")) return true;
  let match = false;
  for (const key of Object.values(config.secretKeys)) {
    if (await timingSafeEqual(value, key)) match = true;
  }
  return match;
}

/** Constant-time string comparison (HMAC both sides with a fresh key, compare digests). */
async function timingSafeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    crypto.getRandomValues(new Uint8Array(32)),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const [x, y] = await Promise.all([
    crypto.subtle.sign("HMAC", key, enc.encode(a)),
    crypto.subtle.sign("HMAC", key, enc.encode(b)),
  ]);
  const va = new Uint8Array(x);
  const vb = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < va.length; i++) diff |= va[i] ^ vb[i];
  return diff === 0;
}
