// User access tokens for tests, minted with the dev signing key (supabase/dev-keys.json,
// ES256, LOCAL ONLY) the way Supabase Auth shapes them, plus the broken variants the
// endpoints must refuse.
import { base64url, exportJWK, generateKeyPair, importJWK, SignJWT } from "jose";
import devKeys from "../../supabase/dev-keys.json" with { type: "json" };

export { devKeys };

export const DEV_KID: string = devKeys.private_jwk.kid;
export const PUBLISHABLE_KEY: string = devKeys.publishable_key;
export const SECRET_KEY: string = devKeys.secret_key;
const SUPABASE_URL = Deno.env.get("SUPABASE_URL") || "http://127.0.0.1:54321";

export interface TokenOptions {
  /** Seconds from now until `exp` (negative: already expired). Default 3600. */
  expiresIn?: number;
  /** Leave `exp` out. */
  noExp?: boolean;
  /** Header kid (default: the dev key's). */
  kid?: string;
  /** Extra or overriding claims. */
  claims?: Record<string, unknown>;
  /** Sign with this key instead of the dev key. */
  key?: CryptoKey;
}

let devKey: Promise<CryptoKey> | null = null;
function devSigningKey(): Promise<CryptoKey> {
  return devKey ??= importJWK(devKeys.private_jwk, "ES256") as Promise<CryptoKey>;
}

/** A valid access token for `userId`, as Supabase Auth would issue it. */
export async function userToken(userId: string, opts: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: `${SUPABASE_URL}/auth/v1`,
    aud: "authenticated",
    role: "authenticated",
    sub: userId,
    email: `${userId}@example.test`,
    aal: "aal1",
    session_id: crypto.randomUUID(),
    is_anonymous: false,
    iat: now,
    ...(opts.noExp ? {} : { exp: now + (opts.expiresIn ?? 3600) }),
    ...opts.claims,
  };
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: "ES256", kid: opts.kid ?? DEV_KID, typ: "JWT" })
    .sign(opts.key ?? await devSigningKey());
}

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
