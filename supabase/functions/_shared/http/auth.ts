// Credentials (docs/ARCHITECTURE.md §6).
//
// User endpoints take the caller's Supabase JWT in `Authorization: Bearer`:
// - a token signed with the project's signing keys (ES256/RS256, with `kid`) is verified by
//   @supabase/server against the JWKS of our config;
// - a token signed with the legacy JWT secret (HS256, no `kid`; with one too) is never
//   verified here, since the functions hold no shared secret: we ask the project's Auth
//   server, `GET <SUPABASE_URL>/auth/v1/user`, as supabase-js `auth.getUser` does. 200 → its
//   `id` (a uuid) is the user; 401/403 → 401. Anything else (unreachable, time-out, another
//   status, a body without an id) is a 500 `internal_error`: the token may well be valid, so
//   the caller must not be told to sign in again. A token without `exp`, or expired, is
//   refused before asking. Nothing is cached: each request with a legacy token costs one
//   Auth call.
// The processor takes one of the project's secret keys (on a legacy project without them,
// the service_role key) in the `apikey` header only, compared in constant time.
// Every credential failure is a 401 `unauthorized` in our envelope; a server
// misconfiguration (no JWKS, JWKS unreachable) is a 500.
import { verifyAuth } from "@supabase/server/core";
import { z } from "zod";
import { type Config, processorKeys } from "../platform/config.ts";
import { ApiError, logUnexpected } from "./errors.ts";

export interface AuthUser {
  /** The auth.users id: `sub` of a verified token, or `id` from the Auth server. */
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

/** How long the Auth server may take to answer for a legacy token. */
export const AUTH_SERVER_TIMEOUT_MS = 5_000;

function unauthorized(message: string) {
  return new ApiError(401, "unauthorized", message);
}

const SEND_USER_TOKEN = "Send the signed-in user's access token as Authorization: Bearer <token>.";

/**
 * The verified caller of a user endpoint. Refuses (401) a missing, malformed, forged or
 * expired token, a token without `exp` or whose user id is not a uuid, and any secret key
 * (in `apikey` or `Authorization`): a user endpoint never runs with backend credentials.
 */
export async function requireUser(req: Request, config: Config): Promise<AuthUser> {
  const apikey = req.headers.get("apikey");
  if (apikey !== null && await isSecretKey(apikey, config)) {
    throw unauthorized(`This endpoint acts for a user and refuses secret keys. ${SEND_USER_TOKEN}`);
  }
  const token = /^Bearer +(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
  if (token !== undefined && await isSecretKey(token, config)) {
    throw unauthorized(`This endpoint acts for a user and refuses secret keys. ${SEND_USER_TOKEN}`);
  }
  if (token !== undefined && decodeSegment(token, 0)?.alg === "HS256") {
    return await legacyUser(token, config);
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
  requireExpiry(claims);
  return { userId: userIdOf(claims.sub) };
}

/** Every accepted token carries `exp` (jose checks it only when present) in the future. */
function requireExpiry(claims: Record<string, unknown>) {
  if (typeof claims.exp !== "number") {
    throw unauthorized("The access token was refused: it has no expiry (exp).");
  }
  if (claims.exp <= Date.now() / 1000) {
    throw unauthorized("The access token was refused: it has expired.");
  }
}

function userIdOf(value: unknown): string {
  if (typeof value !== "string" || !GUID.test(value)) {
    throw unauthorized("The access token was refused: its subject (sub) is not a user id.");
  }
  return value.toLowerCase();
}

/** The JSON of a token's header (0) or payload (1), or null when it is not a JWT. */
function decodeSegment(token: string, index: 0 | 1): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[index].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : null;
  } catch {
    return null;
  }
}

/** GoTrue's user object; we need only its id. */
const AuthServerUser = z.object({ id: z.string() });

/**
 * A legacy HS256 token, verified by the project's Auth server. Its unverified claims may
 * only refuse it early (no `exp`, already expired), never accept it.
 */
async function legacyUser(token: string, config: Config): Promise<AuthUser> {
  const claims = decodeSegment(token, 1);
  if (!claims) throw unauthorized("The access token was refused: it is not a valid JWT.");
  requireExpiry(claims);
  const url = `${config.SUPABASE_URL.replace(/\/+$/, "")}/auth/v1/user`;
  const apikey = config.publishableKeys.default ?? Object.values(config.publishableKeys)[0];
  let res: Response;
  try {
    res = await fetch(url, {
      headers: { authorization: `Bearer ${token}`, apikey, accept: "application/json" },
      redirect: "error",
      signal: AbortSignal.timeout(AUTH_SERVER_TIMEOUT_MS),
    });
  } catch (e) {
    throw authServerFailed(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    throw unauthorized(
      "The access token was refused by the project's Auth server: it is invalid or revoked. " +
        "Sign in again.",
    );
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw authServerFailed(`answered HTTP ${res.status}`);
  }
  const user = AuthServerUser.safeParse(await res.json().catch(() => null));
  if (!user.success) throw authServerFailed("answered 200 without a user id");
  return { userId: userIdOf(user.data.id) };
}

/** Logged (redacted, no token) and answered as a 500: retrying later may well succeed. */
function authServerFailed(reason: string): ApiError {
  logUnexpected(new Error(`Auth server check of a legacy token failed: ${reason}`), "auth_server");
  return new ApiError(
    500,
    "internal_error",
    "The access token could not be checked with the project's Auth server right now. " +
      "Please try again shortly.",
  );
}

/**
 * The processor's caller: one of the processor's keys (config.ts `processorKeys`) in the
 * `apikey` header, and no Authorization header at all (neither a user JWT nor a key as a
 * bearer token).
 */
export async function requireSecretKey(req: Request, config: Config): Promise<void> {
  if (req.headers.has("authorization")) {
    throw unauthorized(
      "This endpoint takes the secret API key in the apikey header only, without an Authorization header.",
    );
  }
  const apikey = req.headers.get("apikey");
  if (apikey === null || !await matchesAny(apikey, processorKeys(config))) {
    throw unauthorized("Send the project's secret API key in the apikey header.");
  }
}

/** Any secret key (or the legacy service_role key), wherever it is presented. */
async function isSecretKey(value: string, config: Config): Promise<boolean> {
  if (value.startsWith("sb_secret_")) return true;
  const keys = Object.values(config.secretKeys);
  if (config.serviceRoleKey) keys.push(config.serviceRoleKey);
  return await matchesAny(value, keys);
}

/** Compares against every key, each in constant time, without stopping at a match. */
async function matchesAny(value: string, keys: string[]): Promise<boolean> {
  let match = false;
  for (const key of keys) {
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
