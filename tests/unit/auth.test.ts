// requireUser / requireSecretKey against the dev JWKS and keys: what @supabase/server
// verifies, and what we add on top (exp required, sub a uuid, no secret keys on user
// endpoints, apikey-only secret on the processor).
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { requireSecretKey, requireUser } from "../../supabase/functions/_shared/http/auth.ts";
import { ApiError } from "../../supabase/functions/_shared/http/errors.ts";
import {
  algNoneToken,
  DEV_KID,
  expiredToken,
  forgedToken,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  tokenFromOtherKey,
  tokenWithoutExp,
  tokenWithUnknownKid,
  userHeaders,
  userToken,
} from "../support/tokens.ts";

const config = loadConfig();
const USER = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
const OTHER = "1a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";

const req = (headers: Record<string, string>) =>
  new Request("http://127.0.0.1/functions/v1/x", { method: "POST", headers });

async function refusedUser(headers: Record<string, string>): Promise<ApiError> {
  try {
    await requireUser(req(headers), config);
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    return e;
  }
  assert.fail("the request was accepted");
}

async function refusedSecret(headers: Record<string, string>): Promise<ApiError> {
  try {
    await requireSecretKey(req(headers), config);
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${e}`);
    assert.equal(e.status, 401);
    assert.equal(e.code, "unauthorized");
    return e;
  }
  assert.fail("the request was accepted");
}

Deno.test("a valid user token (with the publishable apikey) yields its sub", async () => {
  assert.deepEqual(await requireUser(req(userHeaders(await userToken(USER))), config), {
    userId: USER,
  });
});

Deno.test("a valid user token without any apikey is accepted too", async () => {
  const user = await requireUser(
    req({ authorization: `Bearer ${await userToken(USER)}` }),
    config,
  );
  assert.equal(user.userId, USER);
});

Deno.test("no credentials at all is 401", async () => {
  await refusedUser({});
});

Deno.test("only the publishable apikey is 401", async () => {
  await refusedUser({ apikey: PUBLISHABLE_KEY });
});

Deno.test("a non-Bearer Authorization scheme is 401", async () => {
  await refusedUser({ authorization: `Basic ${btoa("a:b")}` });
});

Deno.test("a malformed token is 401", async () => {
  await refusedUser(userHeaders("not.a.jwt"));
  await refusedUser(userHeaders("garbage"));
});

Deno.test("an expired token is 401 and says so", async () => {
  const e = await refusedUser(userHeaders(await expiredToken(USER)));
  assert.match(e.message, /expired/);
});

Deno.test("a token without exp is 401 (the library alone would accept it)", async () => {
  const e = await refusedUser(userHeaders(await tokenWithoutExp(USER)));
  assert.match(e.message, /no expiry/);
});

Deno.test("a token whose sub is not a uuid is 401", async () => {
  await refusedUser(userHeaders(await userToken("not-a-uuid")));
  await refusedUser(userHeaders(await userToken(USER, { claims: { sub: 42 } })));
});

Deno.test("a token without sub is 401", async () => {
  await refusedUser(userHeaders(await userToken(USER, { claims: { sub: undefined } })));
});

Deno.test("a forged token (payload swapped, signature kept) is 401", async () => {
  await refusedUser(userHeaders(await forgedToken(USER, OTHER)));
});

Deno.test("an alg:none token is 401", async () => {
  await refusedUser(userHeaders(algNoneToken(USER)));
});

Deno.test("a token naming an unknown kid is 401", async () => {
  await refusedUser(userHeaders(await tokenWithUnknownKid(USER)));
});

Deno.test("a token signed by another key pair under the dev kid is 401", async () => {
  await refusedUser(userHeaders(await tokenFromOtherKey(USER)));
});

Deno.test("an HS256 token signed with the publishable key as secret is 401", async () => {
  const { SignJWT } = await import("jose");
  const token = await new SignJWT({ sub: USER, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: "HS256", kid: DEV_KID })
    .sign(new TextEncoder().encode(PUBLISHABLE_KEY));
  await refusedUser(userHeaders(token));
});

Deno.test("a secret key as the bearer token of a user endpoint is 401", async () => {
  await refusedUser({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${SECRET_KEY}` });
});

Deno.test("a secret key in apikey on a user endpoint is 401, even with a valid token", async () => {
  await refusedUser({ apikey: SECRET_KEY, authorization: `Bearer ${await userToken(USER)}` });
});

Deno.test("the processor accepts the secret key in apikey", async () => {
  await requireSecretKey(req({ apikey: SECRET_KEY }), config);
});

Deno.test("the processor refuses a missing, publishable or wrong apikey", async () => {
  await refusedSecret({});
  await refusedSecret({ apikey: PUBLISHABLE_KEY });
  await refusedSecret({ apikey: `${SECRET_KEY}x` });
});

Deno.test("the processor refuses a user JWT, with or without the secret apikey", async () => {
  const token = await userToken(USER);
  await refusedSecret({ authorization: `Bearer ${token}` });
  await refusedSecret({ apikey: SECRET_KEY, authorization: `Bearer ${token}` });
});

Deno.test("the processor refuses the secret key as a bearer token", async () => {
  await refusedSecret({ authorization: `Bearer ${SECRET_KEY}` });
  await refusedSecret({ apikey: SECRET_KEY, authorization: `Bearer ${SECRET_KEY}` });
});
