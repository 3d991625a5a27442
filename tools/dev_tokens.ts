// Local-only user tokens: ES256 JWTs signed with the committed dev key
// (supabase/dev-keys.json), which `deno task serve` trusts by default. Never valid on a
// hosted project, whose JWKS does not contain this key.
import { importJWK, SignJWT } from "jose";
import devKeys from "../supabase/dev-keys.json" with { type: "json" };

export async function mintDevUserToken(
  userId: string,
  opts: { email?: string; expiresInSeconds?: number } = {},
): Promise<string> {
  const key = await importJWK(devKeys.private_jwk, "ES256");
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({
    role: "authenticated",
    aud: "authenticated",
    email: opts.email,
    session_id: crypto.randomUUID(),
  })
    .setProtectedHeader({ alg: "ES256", kid: devKeys.private_jwk.kid, typ: "JWT" })
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expiresInSeconds ?? 3600))
    .setIssuer("http://127.0.0.1:54321/auth/v1")
    .sign(key);
}

// `deno run -A scripts/local/dev_tokens.ts [user_id]` prints a token (default: the seed's
// demo admin), for trying the functions with curl against `deno task serve`.
if (import.meta.main) {
  const userId = Deno.args[0] ?? "22222222-2222-4222-8222-222222222222";
  console.log(await mintDevUserToken(userId));
}
