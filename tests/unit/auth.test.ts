// requireUser / requireSecretKey (docs/ARCHITECTURE.md §6), on both kinds of project:
// - a project on JWT signing keys and the new API keys (the dev keys): ES256 tokens with
//   `kid` are verified against the JWKS, the processor takes a secret key;
// - a legacy project: user tokens are HS256 without `kid`, checked by the project's Auth
//   server (the stand-in of tools/stand_in_auth.ts), and the processor takes the
//   service_role key when no secret key exists.
// What @supabase/server verifies, and what we add on top (exp required, sub a uuid, no
// secret keys on user endpoints, apikey-only keys on the processor).
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { requireSecretKey, requireUser } from "../../supabase/functions/_shared/http/auth.ts";
import { ApiError } from "../../supabase/functions/_shared/http/errors.ts";
import { devEnv } from "../../tools/dev_env.ts";
import { type StandInAuth, startStandInAuth } from "../../tools/stand_in_auth.ts";
import {
  algNoneToken,
  DEV_KID,
  expiredToken,
  forgedLegacyToken,
  forgedToken,
  legacyServiceRoleKey,
  legacyUserToken,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  tokenFromOtherKey,
  tokenWithoutExp,
  tokenWithUnknownKid,
  userHeaders,
  userToken,
} from "../support/tokens.ts";

const USER = "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
const OTHER = "1a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d";
const envOf = (vars: Record<string, string>) => (name: string) => vars[name];

/** The dev keys' project (signing keys, new API keys), its Auth server at `authUrl`. */
function newKeysProject(authUrl = "http://127.0.0.1:9"): Config {
  return loadConfig(envOf({ ...devEnv(envOf({})), SUPABASE_URL: authUrl }));
}

const LEGACY_ANON_KEY = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.legacy-anon";

/** A legacy project: empty JWKS, the anon and service_role JWTs, no new API keys. */
async function legacyProject(authUrl: string, extra: Record<string, string> = {}) {
  const serviceRoleKey = await legacyServiceRoleKey();
  const config = loadConfig(envOf({
    SYNC_ALLOW_DEV_KEYS: "1",
    SUPABASE_URL: authUrl,
    SUPABASE_JWKS: '{"keys":[]}',
    SUPABASE_ANON_KEY: LEGACY_ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
    ...extra,
  }));
  return { config, serviceRoleKey };
}

/** The stand-in Auth, also letting the legacy anon key through its gateway. */
function authServer(): Promise<StandInAuth> {
  return startStandInAuth({ apiKeys: [PUBLISHABLE_KEY, LEGACY_ANON_KEY] });
}

const req = (headers: Record<string, string>) =>
  new Request("http://127.0.0.1/functions/v1/x", { method: "POST", headers });

async function refused(
  check: Promise<unknown>,
  status = 401,
  code = status === 401 ? "unauthorized" : "internal_error",
): Promise<ApiError> {
  try {
    await check;
  } catch (e) {
    assert.ok(e instanceof ApiError, `expected ApiError, got ${e}`);
    assert.equal(e.status, status);
    assert.equal(e.code, code);
    return e;
  }
  assert.fail("the request was accepted");
}

const refusedUser = (headers: Record<string, string>, config = newKeysProject()) =>
  refused(requireUser(req(headers), config));
const refusedSecret = (headers: Record<string, string>, config = newKeysProject()) =>
  refused(requireSecretKey(req(headers), config));

/** console.error lines written while `fn` runs (logUnexpected writes there). */
async function capturingErrors<T>(fn: () => Promise<T>): Promise<{ result: T; logs: string }> {
  const original = console.error;
  const lines: string[] = [];
  console.error = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  try {
    return { result: await fn(), logs: lines.join("\n") };
  } finally {
    console.error = original;
  }
}

// ── a project on signing keys: ES256 tokens through the JWKS ─────────────────────────────

Deno.test("signing keys: a valid user token (with the publishable apikey) yields its sub", async () => {
  assert.deepEqual(await requireUser(req(userHeaders(await userToken(USER))), newKeysProject()), {
    userId: USER,
  });
});

Deno.test("signing keys: a valid user token without any apikey is accepted too", async () => {
  const user = await requireUser(
    req({ authorization: `Bearer ${await userToken(USER)}` }),
    newKeysProject(),
  );
  assert.equal(user.userId, USER);
});

Deno.test("no credentials, only the publishable apikey, or a non-Bearer scheme is 401", async () => {
  await refusedUser({});
  await refusedUser({ apikey: PUBLISHABLE_KEY });
  await refusedUser({ authorization: `Basic ${btoa("a:b")}` });
});

Deno.test("a malformed token is 401", async () => {
  await refusedUser(userHeaders("not.a.jwt"));
  await refusedUser(userHeaders("garbage"));
});

Deno.test("signing keys: an expired token is 401 and says so", async () => {
  const e = await refusedUser(userHeaders(await expiredToken(USER)));
  assert.match(e.message, /expired/);
});

Deno.test("signing keys: a token without exp is 401 (the library alone would accept it)", async () => {
  const e = await refusedUser(userHeaders(await tokenWithoutExp(USER)));
  assert.match(e.message, /no expiry/);
});

Deno.test("a token whose sub is not a uuid, or without sub, is 401", async () => {
  await refusedUser(userHeaders(await userToken("not-a-uuid")));
  await refusedUser(userHeaders(await userToken(USER, { claims: { sub: 42 } })));
  await refusedUser(userHeaders(await userToken(USER, { claims: { sub: undefined } })));
});

Deno.test("signing keys: a forged token (payload swapped, signature kept) is 401", async () => {
  await refusedUser(userHeaders(await forgedToken(USER, OTHER)));
});

Deno.test("an alg:none token is 401", async () => {
  await refusedUser(userHeaders(algNoneToken(USER)));
});

Deno.test("signing keys: a token naming an unknown kid is 401", async () => {
  await refusedUser(userHeaders(await tokenWithUnknownKid(USER)));
});

Deno.test("signing keys: a token signed by another key pair under the dev kid is 401", async () => {
  await refusedUser(userHeaders(await tokenFromOtherKey(USER)));
});

Deno.test("a secret key as the bearer token of a user endpoint is 401", async () => {
  await refusedUser({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${SECRET_KEY}` });
});

Deno.test("a secret key in apikey on a user endpoint is 401, even with a valid token", async () => {
  await refusedUser({ apikey: SECRET_KEY, authorization: `Bearer ${await userToken(USER)}` });
});

// ── legacy tokens: HS256 without kid, checked by the project's Auth server ───────────────

Deno.test("legacy: a valid HS256 token is accepted by asking the Auth server, once", async () => {
  await using auth = await authServer();
  const token = await legacyUserToken(USER);
  const user = await requireUser(req(userHeaders(token)), newKeysProject(auth.url));
  assert.deepEqual(user, { userId: USER });
  assert.deepEqual(auth.requests, [{ authorization: `Bearer ${token}`, apikey: PUBLISHABLE_KEY }]);
});

Deno.test("legacy project: a valid token with the anon apikey is accepted; the anon key goes to Auth", async () => {
  await using auth = await authServer();
  const { config } = await legacyProject(auth.url);
  const token = await legacyUserToken(USER);
  const user = await requireUser(
    req({ apikey: LEGACY_ANON_KEY, authorization: `Bearer ${token}` }),
    config,
  );
  assert.equal(user.userId, USER);
  assert.equal(auth.requests[0].apikey, LEGACY_ANON_KEY);
});

Deno.test("legacy: a forged token (payload swapped) is refused by the Auth server: 401", async () => {
  await using auth = await authServer();
  const e = await refusedUser(
    userHeaders(await forgedLegacyToken(USER, OTHER)),
    newKeysProject(auth.url),
  );
  assert.match(e.message, /refused by the project's Auth server/);
  assert.equal(auth.requests.length, 1);
});

Deno.test("legacy: a token signed with another secret is 401", async () => {
  await using auth = await authServer();
  const config = newKeysProject(auth.url);
  await refusedUser(userHeaders(await legacyUserToken(USER, { secret: "x".repeat(40) })), config);
  // HS256 with a kid is never verified locally either (here: the publishable key as secret).
  const { SignJWT } = await import("jose");
  const withKid = await new SignJWT({ sub: USER, exp: Math.floor(Date.now() / 1000) + 60 })
    .setProtectedHeader({ alg: "HS256", kid: DEV_KID })
    .sign(new TextEncoder().encode(PUBLISHABLE_KEY));
  await refusedUser(userHeaders(withKid), config);
  assert.equal(auth.requests.length, 2);
});

Deno.test("legacy: an expired token, or one without exp, is 401 without asking the Auth server", async () => {
  await using auth = await authServer();
  const config = newKeysProject(auth.url);
  const expired = await refusedUser(
    userHeaders(await legacyUserToken(USER, { expiresIn: -60 })),
    config,
  );
  assert.match(expired.message, /expired/);
  const noExp = await refusedUser(
    userHeaders(await legacyUserToken(USER, { noExp: true })),
    config,
  );
  assert.match(noExp.message, /no expiry/);
  assert.equal(auth.requests.length, 0);
});

Deno.test("legacy: a sub that is not a uuid is 401", async () => {
  await using auth = await authServer();
  await refusedUser(userHeaders(await legacyUserToken("not-a-uuid")), newKeysProject(auth.url));
});

Deno.test("legacy: the Auth server down is a 500 internal_error, logged without the token", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const token = await legacyUserToken(USER);
  const { result: e, logs } = await capturingErrors(() =>
    refused(
      requireUser(req(userHeaders(token)), newKeysProject(`http://127.0.0.1:${closedPort}`)),
      500,
    )
  );
  assert.match(e.message, /could not be checked with the project's Auth server.*try again/);
  assert.match(logs, /auth_server/);
  assert.ok(!logs.includes(token) && !e.message.includes(token));
});

Deno.test("legacy: an Auth server answering 5xx or a body without a user id is a 500", async () => {
  const answers = [
    new Response("upstream down", { status: 502 }),
    new Response("{}", { status: 200, headers: { "content-type": "application/json" } }),
    new Response("<html>", { status: 200 }),
    new Response(null, { status: 302, headers: { location: "http://example.com/" } }),
  ];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => answers.shift()!,
  );
  try {
    const config = newKeysProject(`http://127.0.0.1:${server.addr.port}`);
    const token = await legacyUserToken(USER);
    await capturingErrors(async () => {
      for (let i = 0; i < 4; i++) await refused(requireUser(req(userHeaders(token)), config), 500);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("legacy: an Auth server naming a non-uuid user id is 401", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ id: "admin", aud: "authenticated" }),
  );
  try {
    const config = newKeysProject(`http://127.0.0.1:${server.addr.port}`);
    await refusedUser(userHeaders(await legacyUserToken(USER)), config);
  } finally {
    await server.shutdown();
  }
});

Deno.test("legacy project: the service_role key on a user endpoint is 401 (apikey or bearer), never sent to Auth", async () => {
  await using auth = await authServer();
  const { config, serviceRoleKey } = await legacyProject(auth.url);
  const token = await legacyUserToken(USER);
  await refusedUser({ apikey: serviceRoleKey, authorization: `Bearer ${token}` }, config);
  await refusedUser({ apikey: LEGACY_ANON_KEY, authorization: `Bearer ${serviceRoleKey}` }, config);
  assert.equal(auth.requests.length, 0);
});

// ── the processor ─────────────────────────────────────────────────────────────────────────

Deno.test("the processor accepts the secret key in apikey", async () => {
  await requireSecretKey(req({ apikey: SECRET_KEY }), newKeysProject());
});

Deno.test("the processor refuses a missing, publishable or wrong apikey", async () => {
  await refusedSecret({});
  await refusedSecret({ apikey: PUBLISHABLE_KEY });
  await refusedSecret({ apikey: `${SECRET_KEY}x` });
});

Deno.test("the processor refuses a user JWT (signing keys or legacy), with or without the secret apikey", async () => {
  for (const token of [await userToken(USER), await legacyUserToken(USER)]) {
    await refusedSecret({ authorization: `Bearer ${token}` });
    await refusedSecret({ apikey: SECRET_KEY, authorization: `Bearer ${token}` });
    await refusedSecret({ apikey: token });
  }
});

Deno.test("the processor refuses the secret key as a bearer token", async () => {
  await refusedSecret({ authorization: `Bearer ${SECRET_KEY}` });
  await refusedSecret({ apikey: SECRET_KEY, authorization: `Bearer ${SECRET_KEY}` });
});

Deno.test("legacy project without secret keys: the processor accepts the service_role key in apikey", async () => {
  const { config, serviceRoleKey } = await legacyProject("http://127.0.0.1:9");
  await requireSecretKey(req({ apikey: serviceRoleKey }), config);
  await refusedSecret({ authorization: `Bearer ${serviceRoleKey}` }, config);
  await refusedSecret({ apikey: LEGACY_ANON_KEY }, config);
  await refusedSecret({ apikey: SECRET_KEY }, config);
  await refusedSecret(
    { apikey: await legacyServiceRoleKey("another-legacy-secret-".repeat(2)) },
    config,
  );
});

Deno.test("with the new secret keys present, the service_role key is refused by the processor", async () => {
  const { config, serviceRoleKey } = await legacyProject("http://127.0.0.1:9", {
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: SECRET_KEY }),
  });
  await refusedSecret({ apikey: serviceRoleKey }, config);
  await requireSecretKey(req({ apikey: SECRET_KEY }), config);
});
