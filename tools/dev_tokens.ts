// The one minter of local-only user tokens, shaped as Supabase Auth shapes them: ES256 JWTs
// signed with the committed dev key (supabase/dev-keys.json, LOCAL ONLY), which `deno task
// serve` trusts, and legacy-style HS256 tokens without `kid`, signed with the dev
// `legacy_jwt_secret`, which serve's /auth/v1/user accepts (docs/ARCHITECTURE.md §6). Never
// valid on a hosted project, whose keys are its own.
//
//   deno run -A tools/dev_tokens.ts [user_id] [--legacy]
//
// prints a token (default: the seed's demo admin), for trying the functions with curl.
import { importJWK, SignJWT } from "jose";
import devKeys from "../supabase/dev-keys.json" with { type: "json" };

export { devKeys };

export const DEV_KID: string = devKeys.private_jwk.kid;
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

function userClaims(userId: string, opts: TokenOptions): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
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
}

/** A valid access token for `userId`, as Supabase Auth would issue it. */
export async function userToken(userId: string, opts: TokenOptions = {}): Promise<string> {
  return await new SignJWT(userClaims(userId, opts))
    .setProtectedHeader({ alg: "ES256", kid: opts.kid ?? DEV_KID, typ: "JWT" })
    .sign(opts.key ?? await devSigningKey());
}

export interface LegacyTokenOptions extends Pick<TokenOptions, "expiresIn" | "noExp" | "claims"> {
  /** Sign with this HS256 secret instead of the dev `legacy_jwt_secret`. */
  secret?: string;
}

/**
 * A valid access token for `userId` as a project still on the legacy JWT secret issues it:
 * HS256, no `kid`.
 */
export async function legacyUserToken(
  userId: string,
  opts: LegacyTokenOptions = {},
): Promise<string> {
  return await new SignJWT(userClaims(userId, opts))
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(new TextEncoder().encode(opts.secret ?? devKeys.legacy_jwt_secret));
}

if (import.meta.main) {
  const legacy = Deno.args.includes("--legacy");
  const userId = Deno.args.find((a) => a !== "--legacy") ?? "22222222-2222-4222-8222-222222222222";
  console.log(legacy ? await legacyUserToken(userId) : await userToken(userId));
}
