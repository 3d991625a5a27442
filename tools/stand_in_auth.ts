// `GET /auth/v1/user` as Supabase Auth (GoTrue behind the API gateway) answers it, for the
// legacy-token path of docs/ARCHITECTURE.md §6: `deno task serve` routes it here, and tests
// run it on a port of their own. LOCAL ONLY: it trusts the committed dev secrets.
//
// - no apikey header:                 401 {"message": "No API key found in request"} (gateway)
// - an apikey that is not the project's: 401 {"message": "Invalid API key"}
// - no `Authorization: Bearer`:       401 {"code":401,"error_code":"no_authorization",…}
// - a token that does not verify (signature, alg, expired, sub not a uuid):
//                                     401 {"code":401,"error_code":"bad_jwt","msg":"invalid JWT: …"}
// - otherwise 200 with the user, built from the verified claims: {id, aud, role, email, …}.
//
// Like GoTrue it verifies HS256 with the legacy JWT secret and asymmetric tokens with the
// signing keys' JWKS, and does not itself require `exp` (the functions do). Unlike GoTrue it
// does not look the user up in auth.users.
import { createLocalJWKSet, type JWTPayload, jwtVerify } from "jose";
import devKeys from "../supabase/dev-keys.json" with { type: "json" };

export interface StandInAuthOptions {
  /** HS256 secret of legacy tokens (default: the dev `legacy_jwt_secret`). */
  legacySecret?: string;
  /** Public keys of asymmetric tokens (default: the dev JWKS). */
  jwks?: { keys: JsonWebKey[] };
  /** API keys the gateway lets through (default: the dev publishable and secret keys). */
  apiKeys?: string[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function authUserHandler(opts: StandInAuthOptions = {}) {
  const secret = new TextEncoder().encode(opts.legacySecret ?? devKeys.legacy_jwt_secret);
  const jwks = createLocalJWKSet(opts.jwks ?? devKeys.jwks as { keys: JsonWebKey[] });
  const apiKeys = opts.apiKeys ?? [devKeys.publishable_key, devKeys.secret_key];
  const badJwt = (reason: string) =>
    Response.json({ code: 401, error_code: "bad_jwt", msg: `invalid JWT: ${reason}` }, {
      status: 401,
    });

  return async (req: Request): Promise<Response> => {
    if (req.method !== "GET") {
      return Response.json({ code: 405, error_code: "method_not_allowed", msg: "Use GET" }, {
        status: 405,
      });
    }
    const apikey = req.headers.get("apikey");
    if (!apikey) return Response.json({ message: "No API key found in request" }, { status: 401 });
    if (!apiKeys.includes(apikey)) {
      return Response.json({ message: "Invalid API key" }, { status: 401 });
    }
    const token = /^Bearer +(\S+)$/i.exec(req.headers.get("authorization") ?? "")?.[1];
    if (!token) {
      return Response.json({
        code: 401,
        error_code: "no_authorization",
        msg: "This endpoint requires a valid Bearer token",
      }, { status: 401 });
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(
        token,
        (header, jws) => header.alg === "HS256" ? secret : jwks(header, jws),
        { algorithms: ["HS256", "ES256", "RS256"] },
      ));
    } catch (e) {
      const reason = (e as { code?: string }).code === "ERR_JWT_EXPIRED"
        ? "token has invalid claims: token is expired"
        : "unable to parse or verify signature";
      return badJwt(reason);
    }
    if (typeof claims.sub !== "string" || !GUID.test(claims.sub)) {
      return badJwt("invalid claim: sub claim must be a UUID");
    }
    const now = new Date().toISOString();
    return Response.json({
      id: claims.sub,
      aud: claims.aud ?? "authenticated",
      role: claims.role ?? "authenticated",
      email: claims.email ?? "",
      phone: claims.phone ?? "",
      app_metadata: claims.app_metadata ?? { provider: "email", providers: ["email"] },
      user_metadata: claims.user_metadata ?? {},
      identities: [],
      created_at: now,
      updated_at: now,
      is_anonymous: claims.is_anonymous ?? false,
    });
  };
}

export interface StandInAuth extends AsyncDisposable {
  /** Base URL, as SUPABASE_URL: http://127.0.0.1:<port> */
  url: string;
  /** The credentials of each /auth/v1/user request, in order (tests assert on them). */
  requests: { authorization: string | null; apikey: string | null }[];
  close(): Promise<void>;
}

/** The stand-in alone on a free loopback port (tests). Anything but /auth/v1/user is 404. */
export async function startStandInAuth(opts: StandInAuthOptions = {}): Promise<StandInAuth> {
  const handler = authUserHandler(opts);
  const requests: StandInAuth["requests"] = [];
  const { promise, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (addr) => resolve(addr as Deno.NetAddr) },
    (req) => {
      if (new URL(req.url).pathname !== "/auth/v1/user") {
        return Response.json({ message: "no Route matched with those values" }, { status: 404 });
      }
      requests.push({
        authorization: req.headers.get("authorization"),
        apikey: req.headers.get("apikey"),
      });
      return handler(req);
    },
  );
  const { port } = await promise;
  const close = () => server.shutdown();
  return { url: `http://127.0.0.1:${port}`, requests, close, [Symbol.asyncDispose]: close };
}
