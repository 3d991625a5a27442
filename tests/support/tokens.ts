// User access tokens for tests: the dev minter's (tools/dev_tokens.ts), plus the broken
// variants the endpoints must refuse.
import { base64url, exportJWK, generateKeyPair } from "jose";
import { DEV_KID, devKeys, userToken } from "../../tools/dev_tokens.ts";

export { DEV_KID, devKeys, userToken };
export type { TokenOptions } from "../../tools/dev_tokens.ts";

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

/** Headers supabase-js sends for a signed-in user: publishable apikey + Bearer token. */
export function userHeaders(token: string): Record<string, string> {
  return { apikey: PUBLISHABLE_KEY, authorization: `Bearer ${token}` };
}

/** Headers of the backend calling the processor (pg_net's dispatch): apikey only. */
export function secretKeyHeaders(): Record<string, string> {
  return { apikey: SECRET_KEY };
}
