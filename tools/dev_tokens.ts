// The one minter of local-only user tokens, shaped as Supabase Auth shapes them: ES256 JWTs
// signed with the committed dev key (supabase/dev-keys.json, LOCAL ONLY), which `deno task
// serve` trusts. Never valid on a hosted project, whose JWKS does not contain this key.
//
//   deno run -A tools/dev_tokens.ts [user_id]
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

if (import.meta.main) {
  const userId = Deno.args[0] ?? "22222222-2222-4222-8222-222222222222";
  console.log(await userToken(userId));
}
