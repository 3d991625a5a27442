// User access tokens for tests: the dev minter's (tools/dev_tokens.ts), ES256 with kid and
// legacy-style HS256 without, plus the broken variants the endpoints must refuse.
import "./dev_env.ts";
import { base64url, exportJWK, generateKeyPair, SignJWT } from "jose";
import { DEV_KID, devKeys, legacyUserToken, userToken } from "../../tools/dev_tokens.ts";

export { DEV_KID, devKeys, legacyUserToken, userToken };
export type { LegacyTokenOptions, TokenOptions } from "../../tools/dev_tokens.ts";

export const PUBLISHABLE_KEY: string = devKeys.publishable_key;
export const SECRET_KEY: string = devKeys.secret_key;

/** Expired a minute ago. */
export function expiredToken(userId: string): Promise<string> {
  return userToken(userId, { expiresIn: -60 });
}

/** Properly signed, but without `exp`. */
export function tokenWithoutExp(userId: string): Promise<string> {
  return userToken(userId, { noExp: true });
}

/** Signed by another ES256 key pair that claims the dev key's kid. */
export async function tokenFromOtherKey(userId: string): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return await userToken(userId, { key: privateKey });
}

/** Signed with the dev key but naming a kid the JWKS does not have. */
export function tokenWithUnknownKid(userId: string): Promise<string> {
  return userToken(userId, { kid: "not-a-known-kid" });
}

/** A valid token whose payload was swapped for another user's, signature kept. */
export async function forgedToken(userId: string, asUserId: string): Promise<string> {
  const [header, , signature] = (await userToken(userId)).split(".");
  const [, payload] = (await userToken(asUserId)).split(".");
  return `${header}.${payload}.${signature}`;
}

/** An unsigned token (`alg: none`) carrying the dev kid. */
export function algNoneToken(userId: string): string {
  const now = Math.floor(Date.now() / 1000);
  const enc = (v: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(v)));
  const header = enc({ alg: "none", typ: "JWT", kid: DEV_KID });
  const payload = enc({
    sub: userId,
    role: "authenticated",
    aud: "authenticated",
    exp: now + 3600,
  });
  return `${header}.${payload}.`;
}

/** The public half of a fresh key pair, for tests that want a second JWKS entry. */
export async function otherKeyPair(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  return { privateKey, publicJwk: { ...await exportJWK(publicKey), kid, alg: "ES256" } };
}

/** A legacy token whose payload was swapped for another user's, signature kept. */
export async function forgedLegacyToken(userId: string, asUserId: string): Promise<string> {
  const [header, , signature] = (await legacyUserToken(userId)).split(".");
  const [, payload] = (await legacyUserToken(asUserId)).split(".");
  return `${header}.${payload}.${signature}`;
}

/**
 * A legacy project's API key, `anon` or `service_role`: an HS256 JWT without `sub`, signed
 * with the legacy secret, as `supabase status` prints them (iss "supabase-demo", ten years).
 */
export async function legacyApiKey(
  role: "anon" | "service_role",
  secret = devKeys.legacy_jwt_secret,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ iss: "supabase-demo", role, iat: now })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setExpirationTime(now + 10 * 365 * 86_400)
    .sign(new TextEncoder().encode(secret));
}

/** A legacy project's service_role key (see legacyApiKey). */
export function legacyServiceRoleKey(secret?: string): Promise<string> {
  return legacyApiKey("service_role", secret);
}

/** Headers supabase-js sends for a signed-in user: publishable apikey + Bearer token. */
export function userHeaders(token: string): Record<string, string> {
  return { apikey: PUBLISHABLE_KEY, authorization: `Bearer ${token}` };
}

/** Headers of the backend calling the processor (pg_net's dispatch): apikey only. */
export function secretKeyHeaders(): Record<string, string> {
  return { apikey: SECRET_KEY };
}
