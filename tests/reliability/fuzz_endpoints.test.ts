// Property-based fuzzing of the four functions' handlers (fast-check, pinned in deno.json), as
// the bad-input corpus (bad_input.test.ts) calls them: `makeHandler(deps)` with a real TestDb
// and config, the processor's `process` a recorder. Generated requests: methods (odd ones
// too), header sets, content types (with parameters, and garbage), bodies up to and over
// 64 KiB (declared, sent, streamed), JSON of every shape (deep nesting, arrays, huge numbers,
// wrong types, unknown and repeated fields, valid-looking uuids and dates), and credentials:
// none, garbage, expired, forged, unsigned, another key's, legacy HS256 (checked by the Auth
// stand-in), a member's, an owner's of another agency, the secret key.
//
// For every request (docs/ARCHITECTURE.md §6): never a 500; the CORS headers; a non-2xx reply is
// exactly the envelope {"error": {"code", "message", "details"?}} with a documented code of its
// status; the check order holds where it is decidable from the request alone (preflight,
// method, size, type, credentials, JSON); a 2xx is one of the few the world allows and shows
// only jobs of the caller's agencies. And the database is unchanged: no request here can
// legitimately start or cancel anything (every agency an owner or admin can reach has no
// Ultravox key, or no active job), so a checksum of the test's jobs, leases, calls, members,
// agencies, keys and cron_job_logs rows is compared after every request.
//
//   FUZZ_RUNS=10000 deno test -A tests/reliability/fuzz_endpoints.test.ts   (runs per endpoint)
//   FUZZ_ENDPOINT=cancel-historical-sync FUZZ_SEED=<seed> FUZZ_PATH=<path> deno test -A …
//                                                            replays a reported failure
import assert from "node:assert/strict";
import fc from "fast-check";
import { FUZZ_RUNS, fuzzParameters } from "../support/fuzz.ts";
import postgres from "postgres";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { drainBackground } from "../../supabase/functions/_shared/platform/background.ts";
import { makeHandler as cancelHandler } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { makeHandler as statusHandler } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as processHandler } from "../../supabase/functions/process-historical-sync/index.ts";
import { makeHandler as startHandler } from "../../supabase/functions/start-historical-sync/index.ts";
import type { SyncJobStatus } from "../../supabase/functions/_shared/jobs/view.ts";
import { MAX_BODY_BYTES } from "../../supabase/functions/_shared/http/request.ts";
import { TEST_DB_URL, TestDb } from "../support/db.ts";
import { FUNCTIONS_BASE } from "../support/requests.ts";
import {
  algNoneToken,
  expiredToken,
  forgedLegacyToken,
  forgedToken,
  legacyUserToken,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  tokenFromOtherKey,
  tokenWithoutExp,
  tokenWithUnknownKid,
  userToken,
} from "../support/tokens.ts";
import { authUserHandler } from "../../tools/stand_in_auth.ts";
import { pauseCron } from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

// ── runs, seeds, replay ─────────────────────────────────────────────────────────────

const RUNS = FUZZ_RUNS;
const ONLY = Deno.env.get("FUZZ_ENDPOINT") || undefined;

const START = "start-historical-sync";
const PROCESS = "process-historical-sync";
const CANCEL = "cancel-historical-sync";
const STATUS = "get-sync-status";
type Endpoint = typeof START | typeof PROCESS | typeof CANCEL | typeof STATUS;
const ENDPOINTS: Endpoint[] = [START, CANCEL, STATUS, PROCESS];
/** The checksum follows every request that got past its credentials, and every n-th of the others. */
const SAMPLE_EARLY = 20;

/** The documented codes of each status (docs/ARCHITECTURE.md §6 "Errors"); 500 is never right here. */
const CODES: Record<number, string[]> = {
  400: ["invalid_json", "validation_failed"],
  401: ["unauthorized"],
  403: ["forbidden"],
  404: ["not_found"],
  405: ["method_not_allowed"],
  409: ["sync_already_active", "job_already_finished"],
  413: ["payload_too_large"],
  415: ["unsupported_media_type"],
  422: ["ultravox_key_missing"],
  429: ["rate_limited"],
};

/** What each endpoint may answer in this world once the request passed its credentials. */
const AFTER_CREDENTIALS: Record<Endpoint, number[]> = {
  // No owner or admin can reach an agency with a key and no active job: never a 201.
  [START]: [400, 403, 422, 429],
  // 200 only for the already cancelled job (a no-op); every active job is out of reach.
  [CANCEL]: [200, 400, 403, 404, 409, 429],
  [STATUS]: [200, 400, 403, 404],
  // `process` is a recorder: a run changes nothing.
  [PROCESS]: [200, 202, 400],
};

const METHODS: Record<Endpoint, string[]> = {
  [START]: ["POST"],
  [CANCEL]: ["POST"],
  [STATUS]: ["GET", "POST"],
  [PROCESS]: ["POST"],
};

// ── the world ───────────────────────────────────────────────────────────────────────

/**
 * A: no Ultravox key, no active job; owner, admin, member; a completed, a failed and a
 *    cancelled job (a start is 422, a cancel 409 or an already-cancelled 200).
 * B: a key and an active job leased by a live foreign worker, and a completed job; only its
 *    member's token exists (start and cancel are 403).
 * C: no key, no job; its owner is "an owner of another agency" for A and B.
 */
interface World {
  agencies: string[];
  A: string;
  B: string;
  C: string;
  users: { ownerA: string; adminA: string; memberA: string; memberB: string; ownerC: string };
  jobs: Record<"doneA" | "failedA" | "cancelledA" | "activeB" | "doneB", string>;
  cronLogs: string[];
  /** Agencies each user belongs to. */
  memberOf: Map<string, Set<string>>;
}

async function buildWorld(db: TestDb): Promise<World> {
  const key = "Zk3pQ9aB.k2Vf8sLw0qR7tYx1mN4cE6hJ9uP3dG5z";
  const a = await db.createAgency({
    members: { owner: "owner", admin: "admin", member: "member" },
  });
  const b = await db.createAgency({
    members: { owner: "owner", member: "member" },
    ultravoxKey: key,
  });
  const c = await db.createAgency({ members: { owner: "owner" } });
  const finished = (status: SyncJobStatus, date_to: string) => ({
    status,
    date_to,
    started_at: "2026-10-01T00:00:00.000001Z",
    completed_at: "2026-10-01T00:10:00.000001Z",
  });
  const doneA = await db.insertJob(a.id, { ...finished("completed", "2026-09-30T00:00:00Z") });
  const failedA = await db.insertJob(a.id, {
    ...finished("failed", "2026-09-29T00:00:00Z"),
    error_message: "Ultravox rejected the API key (HTTP 401).",
  });
  const cancelledA = await db.insertJob(a.id, { ...finished("cancelled", "2026-09-28T00:00:00Z") });
  const activeB = await db.insertJob(b.id, {
    status: "in_progress",
    started_at: "2026-10-01T00:00:00.000001Z",
    cursor: "cD0yMDI2",
  });
  await db.sql`
    insert into public.historical_sync_job_leases (job_id, holder, expires_at)
    values (${activeB.id}::uuid, gen_random_uuid(), now() + interval '1 day')`;
  const doneB = await db.insertJob(b.id, { ...finished("completed", "2026-09-30T00:00:00Z") });
  for (const job of [doneA, doneB]) {
    await db.sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source,
                                historical_sync_job_id)
      select ${job.agency_id}::uuid, gen_random_uuid(), '2026-09-01T00:00:00.000001Z', '{}',
             'historical_sync', ${job.id}::uuid
        from generate_series(1, 3)`;
  }
  // Closed rows only: a run handed a closed (or unknown) cron_log_id leaves the logs alone.
  const cronLogs = await db.sql<{ id: string }[]>`
    insert into public.cron_job_logs (job_name, status, completed_at, result)
    select ${`reliability:fuzz-${crypto.randomUUID()}`}, s, now(), '{"fuzz": true}'
      from unnest(array['completed', 'failed']) s
    returning id`;
  const users = {
    ownerA: a.users.owner,
    adminA: a.users.admin,
    memberA: a.users.member,
    memberB: b.users.member,
    ownerC: c.users.owner,
  };
  const memberOf = new Map<string, Set<string>>([
    [users.ownerA, new Set([a.id])],
    [users.adminA, new Set([a.id])],
    [users.memberA, new Set([a.id])],
    [users.memberB, new Set([b.id])],
    [users.ownerC, new Set([c.id])],
  ]);
  return {
    agencies: [a.id, b.id, c.id],
    A: a.id,
    B: b.id,
    C: c.id,
    users,
    jobs: {
      doneA: doneA.id,
      failedA: failedA.id,
      cancelledA: cancelledA.id,
      activeB: activeB.id,
      doneB: doneB.id,
    },
    cronLogs: cronLogs.map((r) => r.id),
    memberOf,
  };
}

/**
 * Row counts and md5 of every row of the world. Taken after every request, on a connection of
 * its own that prepares the statement (the functions' connections do not: Supabase's pooler),
 * which makes it about three times cheaper.
 */
async function fingerprint(sql: postgres.Sql, w: World): Promise<string> {
  const agencies = w.agencies;
  const keys = agencies.map((id) => `ultravox_api_key:${id}`);
  const [row] = await sql<{ f: string }[]>`
    select concat_ws(' ',
      (select count(*) || ':' || md5(coalesce(string_agg(t::text, '|' order by t.id), ''))
         from public.historical_sync_jobs t where t.agency_id = any (${agencies}::uuid[])),
      (select count(*) || ':' || md5(coalesce(string_agg(l::text, '|' order by l.job_id), ''))
         from public.historical_sync_job_leases l
         join public.historical_sync_jobs j on j.id = l.job_id
        where j.agency_id = any (${agencies}::uuid[])),
      (select count(*) || ':' || md5(coalesce(string_agg(c::text, '|' order by c.id), ''))
         from public.calls c where c.agency_id = any (${agencies}::uuid[])),
      (select count(*) || ':' || md5(coalesce(string_agg(m::text, '|' order by m.agency_id, m.user_id), ''))
         from public.agency_members m where m.agency_id = any (${agencies}::uuid[])),
      (select count(*) || ':' || md5(coalesce(string_agg(a::text, '|' order by a.id), ''))
         from public.agencies a where a.id = any (${agencies}::uuid[])),
      (select count(*) || ':' || md5(coalesce(string_agg(s.name || '@' || s.updated_at::text, '|'
                                                         order by s.name), ''))
         from vault.secrets s where s.name = any (${keys}::text[])),
      (select count(*) || ':' || md5(coalesce(string_agg(g::text, '|' order by g.id), ''))
         from public.cron_job_logs g where g.id = any (${w.cronLogs}::uuid[]))) as f`;
  return row.f;
}

// ── credentials ─────────────────────────────────────────────────────────────────────

/** A credential and what it is: `user` for a token that is valid for that user. */
interface Credential {
  label: string;
  headers: Record<string, string>;
  /** The user a valid token names (also when presented oddly); null for anything else. */
  user: string | null;
  /** Exactly as supabase-js sends a valid token: publishable apikey + `Bearer <token>`. */
  canonical: boolean;
  /** A secret key is presented somewhere (a user endpoint refuses it whatever else is sent). */
  secret: boolean;
  /** Exactly what the processor takes: the secret key in apikey, no Authorization. */
  processor: boolean;
}

async function credentials(w: World): Promise<Credential[]> {
  const u = w.users;
  const bearer = (token: string) => ({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${token}` });
  const none = { user: null, canonical: false, secret: false, processor: false };
  const valid: [string, string, string][] = [];
  for (const [name, id] of Object.entries(u)) {
    valid.push([`${name}'s token`, id, await userToken(id)]);
    valid.push([`${name}'s legacy token`, id, await legacyUserToken(id)]);
  }
  const out: Credential[] = [];
  for (const [label, user, token] of valid) {
    out.push({ ...none, label, headers: bearer(token), user, canonical: true });
    // The same token presented in other ways: accepted or 401, never anything else.
    out.push({
      ...none,
      label: `${label}, lower-case bearer`,
      headers: { apikey: PUBLISHABLE_KEY, authorization: `bearer ${token}` },
      user,
    });
    out.push({
      ...none,
      label: `${label}, no apikey`,
      headers: { authorization: `Bearer ${token}` },
      user,
    });
    out.push({
      ...none,
      label: `${label}, two spaces`,
      headers: { apikey: PUBLISHABLE_KEY, authorization: `Bearer  ${token}` },
      user,
    });
  }
  const refused: [string, string][] = [
    ["an expired token", await expiredToken(u.ownerA)],
    ["a forged payload", await forgedToken(u.memberB, u.ownerC)],
    ["a token without exp", await tokenWithoutExp(u.ownerA)],
    ["alg none", algNoneToken(u.ownerA)],
    ["another key claiming the dev kid", await tokenFromOtherKey(u.ownerA)],
    ["an unknown kid", await tokenWithUnknownKid(u.ownerA)],
    ["sub not a uuid", await userToken(u.ownerA, { claims: { sub: "admin" } })],
    ["an expired legacy token", await legacyUserToken(u.ownerA, { expiresIn: -60 })],
    ["a forged legacy payload", await forgedLegacyToken(u.memberB, u.ownerC)],
    [
      "a legacy token signed with another secret",
      await legacyUserToken(u.ownerA, { secret: "x".repeat(40) }),
    ],
  ];
  for (const [label, token] of refused) out.push({ ...none, label, headers: bearer(token) });
  const owner = valid[0][2];
  out.push(
    { ...none, label: "no credentials", headers: {} },
    { ...none, label: "the publishable key only", headers: { apikey: PUBLISHABLE_KEY } },
    {
      ...none,
      label: "Basic auth",
      headers: { apikey: PUBLISHABLE_KEY, authorization: `Basic ${btoa("u:p")}` },
    },
    { ...none, label: "the token in apikey only", headers: { apikey: owner } },
    {
      ...none,
      label: "Bearer and nothing",
      headers: { apikey: PUBLISHABLE_KEY, authorization: "Bearer" },
    },
    {
      ...none,
      label: "the secret key",
      headers: { apikey: SECRET_KEY },
      secret: true,
      processor: true,
    },
    {
      ...none,
      label: "the secret key with a valid token",
      headers: { apikey: SECRET_KEY, authorization: `Bearer ${owner}` },
      secret: true,
    },
    {
      ...none,
      label: "the secret key as Bearer",
      headers: { apikey: SECRET_KEY, authorization: `Bearer ${SECRET_KEY}` },
      secret: true,
    },
    {
      ...none,
      label: "the secret key as Bearer only",
      headers: { authorization: `Bearer ${SECRET_KEY}` },
      secret: true,
    },
    {
      ...none,
      label: "a made-up secret key",
      headers: { apikey: "sb_secret_0000000000000000000000" },
      secret: true,
    },
    { ...none, label: "the secret key upper-cased", headers: { apikey: SECRET_KEY.toUpperCase() } },
  );
  return out;
}

/** Garbage in the credential headers (printable ASCII and Latin-1, as a header may carry). */
const headerText = fc.string({
  unit: fc.oneof(
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 1 }),
    fc.constantFrom(".", "-", "_", "=", "é", "\u00ff", "\t"),
  ),
  maxLength: 200,
});
const garbageCredential = fc.oneof(
  headerText.map((t) => ({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${t}` })),
  headerText.map((t) => ({ authorization: t })),
  headerText.map((t) => ({ apikey: t })),
  fc.tuple(
    fc.base64String({ maxLength: 60 }),
    fc.base64String({ maxLength: 60 }),
    fc.base64String({ maxLength: 60 }),
  )
    .map(([a, b, c]) => ({ apikey: PUBLISHABLE_KEY, authorization: `Bearer ${a}.${b}.${c}` })),
  // A header claiming HS256 sends the token to the Auth stand-in, which refuses it.
  fc.base64String({ maxLength: 80 }).map((s) => ({
    apikey: PUBLISHABLE_KEY,
    authorization: `Bearer ${btoa('{"alg":"HS256","typ":"JWT"}').replaceAll("=", "")}.${
      btoa(`{"sub":"${crypto.randomUUID()}","exp":${Math.floor(Date.now() / 1000) + 600}}`)
        .replaceAll("=", "")
    }.${s.replaceAll("=", "")}`,
  })),
).map((headers): Credential => ({
  label: "garbage",
  headers,
  user: null,
  canonical: false,
  // "sb_secret_…" anywhere is refused as a secret key; printable garbage rarely starts so.
  secret: Object.values(headers).some((v) => /^(Bearer +)?sb_secret_/i.test(v.trim())),
  processor: false,
}));

// ── requests ────────────────────────────────────────────────────────────────────────

/** A JSON value, or raw JSON text (numbers JSON.stringify cannot write, deep nesting). */
type Json =
  | { raw: string }
  | { entries: [string, Json][] }
  | Json[]
  | string
  | number
  | boolean
  | null;

function serialize(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(serialize).join(",")}]`;
  if (v !== null && typeof v === "object") {
    if ("raw" in v) return v.raw;
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${serialize(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

function ids(w: World) {
  const known = [...w.agencies, ...Object.values(w.jobs), ...w.cronLogs];
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...known) },
    { weight: 1, arbitrary: fc.constantFrom(...known).map((id) => id.toUpperCase()) },
    { weight: 2, arbitrary: fc.uuid() },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        `{${w.A}}`,
        w.A.replaceAll("-", ""),
        `${w.A} `,
        `${w.A}\u0000`,
        "' or 1=1 --",
        "",
      ),
    },
  );
}

const dates = fc.oneof(
  fc.date({ min: new Date("2000-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.date({ min: new Date("2000-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 10)),
  fc.constantFrom(
    "2026-09-01",
    "2026-11-01T12:00:00Z",
    "2026-11-01t12:00:00.123456789+05:30",
    "2026-11-01T12:00,5Z",
    "2026-02-30",
    "2026-13-01",
    "2026-10-01T24:00:00Z",
    "2026-10-01T10:00:00+25:00",
    "2026-10-01T12:00:00",
    "0000-01-01",
    "10000-01-01T00:00:00Z",
    "2999-01-01",
    "yesterday",
    "２０２６-10-01",
  ),
);

const hugeNumber = fc.constantFrom<Json>(
  { raw: "1e309" },
  { raw: "-1e309" },
  { raw: "9007199254740993" },
  { raw: "1000000.0" },
  { raw: "1E2" },
  { raw: "-0" },
  { raw: "0.0000000000000000000000001" },
  { raw: "123456789012345678901234567890" },
);

function values(w: World): fc.Arbitrary<Json> {
  const leaf: fc.Arbitrary<Json> = fc.oneof(
    { weight: 4, arbitrary: ids(w) },
    { weight: 3, arbitrary: dates },
    {
      weight: 3,
      arbitrary: fc.oneof(
        fc.integer({ min: -2, max: 1_000_002 }),
        fc.constantFrom(1, 5, 20, 100, 101, 1_000_000),
      ),
    },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
    { weight: 1, arbitrary: hugeNumber },
    { weight: 2, arbitrary: fc.constantFrom<Json>(null, true, false, "", "100", "true") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  );
  const { value } = fc.letrec<{ value: Json }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", maxDepth: 3 },
      { weight: 6, arbitrary: leaf },
      { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 3 }) },
      {
        weight: 1,
        arbitrary: fc.array(fc.tuple(fc.string({ maxLength: 8 }), tie("value")), { maxLength: 3 })
          .map((entries) => ({ entries })),
      },
    ),
  }));
  return value;
}

/** Deeply nested arrays or objects, as raw JSON text. */
const deepJson = fc.tuple(fc.integer({ min: 100, max: 20_000 }), fc.boolean()).map(
  ([n, arrays]): Json => ({
    raw: arrays ? "[".repeat(n) + "]".repeat(n) : '{"a":'.repeat(n) + "1" + "}".repeat(n),
  }),
);

const FIELDS: Record<Endpoint, string[]> = {
  [START]: ["agency_id", "date_from", "date_to", "max_calls"],
  [CANCEL]: ["job_id"],
  [STATUS]: ["job_id", "agency_id", "limit"],
  [PROCESS]: ["cron_log_id", "job_id", "wait"],
};

/** A body the endpoint's schema accepts, its values drawn from the world and its neighbours. */
function wellFormed(w: World, endpoint: Endpoint): fc.Arbitrary<[string, Json][]> {
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);
  const id = (known: string[]) =>
    fc.oneof({ weight: 4, arbitrary: pick(known) }, { weight: 1, arbitrary: fc.uuid() });
  const jobIds = Object.values(w.jobs);
  const opt = <T>(name: string, arb: fc.Arbitrary<T>) =>
    fc.option(arb.map((v): [string, Json] => [name, v as Json]), { freq: 2 });
  const present = (xs: ([string, Json] | null)[]) =>
    xs.filter((x): x is [string, Json] => x !== null);
  const validDate = fc.date({
    min: new Date("2024-01-01"),
    max: new Date("2026-11-30"),
    noInvalidDate: true,
  });
  switch (endpoint) {
    case START:
      return fc.tuple(
        id(w.agencies).map((v): [string, Json] => ["agency_id", v]),
        opt(
          "date_from",
          fc.oneof(validDate.map((d) => d.toISOString().slice(0, 10)), fc.constant(null)),
        ),
        opt("date_to", validDate.map((d) => d.toISOString())),
        opt("max_calls", fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.constant(null))),
      ).map(([a, ...rest]) => [a, ...present(rest)]);
    case CANCEL:
      return id(jobIds).map((v) => [["job_id", v]]);
    case STATUS:
      return fc.oneof(
        id(jobIds).map((v): [string, Json][] => [["job_id", v]]),
        fc.tuple(id(w.agencies), fc.option(fc.integer({ min: 1, max: 100 }), { freq: 2 }))
          .map(([a, limit]): [string, Json][] =>
            limit === null ? [["agency_id", a]] : [["agency_id", a], ["limit", limit]]
          ),
      );
    case PROCESS:
      return fc.tuple(
        opt("cron_log_id", id(w.cronLogs)),
        opt("job_id", id(jobIds)),
        opt("wait", fc.boolean()),
      ).map(present);
  }
}

/** A JSON object body: a well-formed one, one with a defect, or the endpoint's fields at random. */
function bodyObject(w: World, endpoint: Endpoint): fc.Arbitrary<Json> {
  const known = fc.constantFrom(...FIELDS[endpoint]);
  const name = fc.oneof(
    { weight: 8, arbitrary: known },
    {
      weight: 1,
      arbitrary: fc.constantFrom("__proto__", "constructor", "force", "agency_id ", "\u202eid", ""),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  );
  const value = fc.oneof({ weight: 12, arbitrary: values(w) }, { weight: 1, arbitrary: deepJson });
  const entry = fc.tuple(name, value);
  return fc.oneof(
    { weight: 6, arbitrary: wellFormed(w, endpoint) },
    {
      // One defect: a field added, replaced or repeated (the last of a repeated key wins).
      weight: 3,
      arbitrary: fc.tuple(
        wellFormed(w, endpoint),
        entry,
        fc.nat(),
        fc.constantFrom("add", "replace", "repeat"),
      )
        .map(([entries, [k, v], at, how]): [string, Json][] => {
          if (entries.length === 0 || how === "add") return [...entries, [k, v]];
          const i = at % entries.length;
          if (how === "replace") return entries.map((e, j) => j === i ? [e[0], v] : e);
          return [[entries[i][0], v], ...entries];
        }),
    },
    { weight: 2, arbitrary: fc.array(entry, { maxLength: 5 }) },
  ).map((entries) => ({ entries }));
}

/** The body text: an object, another JSON value, or not JSON at all. */
function bodyText(w: World, endpoint: Endpoint): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 14, arbitrary: bodyObject(w, endpoint).map(serialize) },
    { weight: 1, arbitrary: values(w).map(serialize) },
    { weight: 1, arbitrary: deepJson.map(serialize) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "",
        " ",
        "{",
        "}",
        "null",
        "[]",
        "{}",
        "{,}",
        '{"a":1,}',
        "\ufeff{}",
        "{'a':1}",
        "NaN",
        '{"a":1}{"b":2}',
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 50 }) },
  );
}

/** Whitespace padding to a size near the limit (JSON stays valid), or none. */
const padding = fc.oneof(
  { weight: 6, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 80_000 }) },
  { weight: 2, arbitrary: fc.integer({ min: -40, max: 40 }).map((d) => -(MAX_BODY_BYTES + d)) },
);

interface Draft {
  method: string;
  credential: Credential;
  contentType: string | null;
  contentLength: string | null;
  extraHeaders: [string, string][];
  /** The bytes sent, and how. */
  body: Uint8Array | null;
  delivery: "bytes" | "string" | "stream";
  query: string;
}

function drafts(w: World, endpoint: Endpoint, creds: Credential[]): fc.Arbitrary<Draft> {
  const allowed = METHODS[endpoint];
  const method = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...allowed) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "patch",
        "PROPFIND",
        "M-SEARCH",
        "QUERY",
        "X",
      ),
    },
  );
  const contentType = fc.oneof(
    { weight: 10, arbitrary: fc.constant("application/json") },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        null,
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;",
        " application/json ; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonp",
        "application/json-patch+json",
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
        ";",
        "application/json, text/plain",
      ),
    },
    { weight: 1, arbitrary: headerText },
  );
  const contentLength = fc.oneof(
    { weight: 10, arbitrary: fc.constant(null) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "0",
        "2",
        "-1",
        "abc",
        "65536",
        "65537",
        "1e6",
        "0x20000",
        " 70000",
        "100000000",
        "99999999999999999999",
      ),
    },
  );
  const extra = fc.array(
    fc.tuple(
      fc.constantFrom(
        "origin",
        "x-client-info",
        "x-forwarded-for",
        "cookie",
        "accept",
        "x-api-key",
        "prefer",
        "range",
      ),
      headerText,
    ),
    { maxLength: 3 },
  );
  const query = fc.oneof(
    { weight: 2, arbitrary: fc.constant("") },
    {
      weight: 5,
      arbitrary: fc.array(
        fc.tuple(
          fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...FIELDS[STATUS]) }, {
            weight: 1,
            arbitrary: fc.string({ maxLength: 6 }),
          }),
          fc.oneof(
            ids(w),
            fc.constantFrom("0", "1", "20", "100", "101", "1.5", "-1", "ten", "", "1e2"),
          ),
        ),
        { maxLength: 4 },
      ).map((pairs) =>
        pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map(encodeURI) },
  );
  const canonical = creds.filter((c) => c.canonical);
  const odd = creds.filter((c) => c.user !== null && !c.canonical);
  const refused = creds.filter((c) => c.user === null);
  const processorKey = creds.filter((c) => c.processor);
  const credential = fc.oneof(
    { weight: endpoint === PROCESS ? 1 : 6, arbitrary: fc.constantFrom(...canonical) },
    { weight: endpoint === PROCESS ? 6 : 0, arbitrary: fc.constantFrom(...processorKey) },
    { weight: 1, arbitrary: fc.constantFrom(...odd) },
    { weight: 2, arbitrary: fc.constantFrom(...refused) },
    { weight: 1, arbitrary: garbageCredential },
  );
  const bytes = fc.oneof(
    {
      weight: 12,
      arbitrary: fc.tuple(bodyText(w, endpoint), padding).map(([text, pad]) =>
        encodeBody(text, pad)
      ),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }, // invalid UTF-8, mostly
    {
      weight: 1,
      arbitrary: fc.integer({ min: MAX_BODY_BYTES - 2, max: MAX_BODY_BYTES + 2 }).map((n) =>
        new Uint8Array(n).fill(0x20)
      ),
    },
  );
  return fc.record({
    method,
    credential,
    contentType,
    contentLength,
    extraHeaders: extra,
    body: fc.option(bytes, { freq: 12 }),
    delivery: fc.constantFrom("bytes", "string", "stream"),
    query,
  }).map((d) => ({ ...d, delivery: d.delivery as Draft["delivery"] }));
}

/** The text as UTF-8; `pad` > 0 adds that many spaces, < 0 pads to exactly -pad bytes. */
function encodeBody(text: string, pad: number): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  const target = pad < 0 ? -pad : bytes.length + pad;
  if (target <= bytes.length) return bytes;
  // Spaces before the text: JSON allows them, and invalid JSON stays invalid.
  const out = new Uint8Array(target).fill(0x20);
  out.set(bytes, target - bytes.length);
  return out;
}

function toRequest(endpoint: Endpoint, d: Draft): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(d.credential.headers)) headers.set(k, v);
  for (const [k, v] of d.extraHeaders) headers.append(k, v);
  if (d.contentType !== null) headers.set("content-type", d.contentType);
  if (d.contentLength !== null) headers.set("content-length", d.contentLength);
  const canHaveBody = d.method !== "GET" && d.method !== "HEAD";
  let body: BodyInit | undefined;
  if (canHaveBody && d.body !== null) {
    const bytes = d.body;
    body = d.delivery === "bytes"
      ? bytes as BodyInit
      : d.delivery === "string"
      ? new TextDecoder().decode(bytes) // lossy for invalid UTF-8; the oracle reads what is sent
      : new ReadableStream({
        start(controller) {
          for (let i = 0; i < bytes.length; i += 16_384) {
            controller.enqueue(bytes.slice(i, i + 16_384));
          }
          controller.close();
        },
      });
  }
  const url = `${FUNCTIONS_BASE}/${endpoint}${d.query ? `?${d.query}` : ""}`;
  return new Request(url, { method: d.method, headers, body });
}

// ── the oracle: what the contract decides from the request alone ────────────────────

/** The status the check order forces before any lookup, or null when the request gets further. */
function forced(
  endpoint: Endpoint,
  req: Request,
  sent: Uint8Array | null,
  cred: Credential,
): { status: number; code?: string } | "passes-credentials" | null {
  if (req.method === "OPTIONS") return { status: 204 };
  if (!METHODS[endpoint].includes(req.method)) return { status: 405, code: "method_not_allowed" };
  const readsBody = req.method === "POST";
  if (readsBody) {
    const declared = req.headers.get("content-length");
    if (declared !== null && Number(declared) > MAX_BODY_BYTES) {
      return { status: 413, code: "payload_too_large" };
    }
    if ((sent?.length ?? 0) > MAX_BODY_BYTES) return { status: 413, code: "payload_too_large" };
    const type = req.headers.get("content-type");
    if (type !== null && type.split(";")[0].trim().toLowerCase() !== "application/json") {
      return { status: 415, code: "unsupported_media_type" };
    }
  }
  if (endpoint === PROCESS) {
    if (!cred.processor || cred.headers.authorization !== undefined) {
      return { status: 401, code: "unauthorized" };
    }
  } else {
    if (cred.secret || cred.user === null) return { status: 401, code: "unauthorized" };
    if (!cred.canonical) return null; // the same valid token, presented oddly: 401 or further
  }
  if (readsBody && !isJsonObject(sent, endpoint === PROCESS)) {
    return { status: 400, code: "invalid_json" };
  }
  return "passes-credentials";
}

function isJsonObject(bytes: Uint8Array | null, emptyIsObject: boolean): boolean {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes ?? new Uint8Array());
  } catch {
    return false;
  }
  if (emptyIsObject && text.trim() === "") return true;
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** The bytes a Request really carries (a string body is re-encoded, a lossy one included). */
async function sentBytes(req: Request): Promise<Uint8Array | null> {
  if (req.body === null) return null;
  return new Uint8Array(await req.clone().arrayBuffer());
}

/** Agency ids a 2xx body shows (job, jobs, active_job). */
function shownAgencies(body: unknown): string[] {
  const b = body as {
    job?: { agency_id?: string };
    jobs?: { agency_id?: string }[];
    active_job?: { agency_id?: string } | null;
  };
  return [b.job, ...(b.jobs ?? []), b.active_job].flatMap((j) => j?.agency_id ? [j.agency_id] : []);
}

// ── the run ─────────────────────────────────────────────────────────────────────────

interface Tally {
  requests: number;
  byStatus: Record<string, number>;
  processorRuns: number;
  kicks: number;
}

async function fuzzEndpoint(
  endpoint: Endpoint,
  handler: (req: Request) => Promise<Response>,
  w: World,
  fp: postgres.Sql,
  baseline: { value: string },
  creds: Credential[],
  tally: Tally,
  counters: { ran: () => number; kicked: () => number },
) {
  const property = fc.asyncProperty(drafts(w, endpoint, creds), async (draft) => {
    const req = toRequest(endpoint, draft);
    const sent = await sentBytes(req);
    const expect = forced(endpoint, req, sent, draft.credential);
    const where =
      `${draft.method} ${endpoint}${draft.query ? "?" + draft.query.slice(0, 80) : ""}, ` +
      `${draft.credential.label}, content-type ${
        JSON.stringify(req.headers.get("content-type"))
      }, ` +
      `${sent?.length ?? "no"} body bytes`;
    const ranBefore = counters.ran();
    const res = await handler(req);
    const text = await res.text();
    if (endpoint === PROCESS) await drainBackground(5_000);
    tally.requests++;
    tally.byStatus[res.status] = (tally.byStatus[res.status] ?? 0) + 1;

    assert.notEqual(res.status, 500, `${where}: 500 ${text.slice(0, 300)}`);
    assert.equal(res.headers.get("access-control-allow-origin"), "*", `${where}: no CORS headers`);
    assert.ok(
      res.headers.get("access-control-allow-headers")?.includes("authorization"),
      `${where}: CORS allow-headers`,
    );
    if (expect !== null && expect !== "passes-credentials") {
      assert.equal(
        res.status,
        expect.status,
        `${where}: ${res.status} ${text.slice(0, 200)} (the check order says ${expect.status})`,
      );
    } else if (expect === "passes-credentials") {
      assert.ok(
        AFTER_CREDENTIALS[endpoint].includes(res.status),
        `${where}: ${res.status} ${text.slice(0, 200)}`,
      );
    } else {
      assert.ok(
        [401, ...AFTER_CREDENTIALS[endpoint]].includes(res.status),
        `${where}: ${res.status} ${text.slice(0, 200)}`,
      );
    }

    if (res.status === 204) {
      assert.equal(text, "", `${where}: a preflight has no body`);
    } else {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        assert.fail(`${where}: the reply is not JSON: ${text.slice(0, 200)}`);
      }
      if (res.status >= 400) {
        assert.deepEqual(
          Object.keys(body as object),
          ["error"],
          `${where}: the envelope has one key: ${text.slice(0, 200)}`,
        );
        const e = (body as { error: Record<string, unknown> }).error;
        const keys = Object.keys(e).sort();
        assert.ok(
          keys.join() === "code,message" || keys.join() === "code,details,message",
          `${where}: error has code, message, details?: ${text.slice(0, 200)}`,
        );
        assert.ok(
          CODES[res.status]?.includes(e.code as string),
          `${where}: ${res.status} with code ${e.code}`,
        );
        if (expect !== null && expect !== "passes-credentials" && expect.code) {
          assert.equal(e.code, expect.code, `${where}: code`);
        }
        assert.ok(typeof e.message === "string" && e.message.length > 0, `${where}: a message`);
        assert.doesNotMatch(
          e.message as string,
          /postgres|sql|stack|relation |syntax error/i,
          `${where}: an internal message`,
        );
        if (res.status === 405) assert.ok(res.headers.get("allow"), `${where}: 405 without Allow`);
        if (res.status === 429) {
          assert.ok(res.headers.get("retry-after"), `${where}: 429 without Retry-After`);
        }
      } else {
        // What a 2xx may be here, and that it shows nothing of another tenant.
        const user = draft.credential.user;
        const mine = user === null ? new Set<string>() : w.memberOf.get(user)!;
        for (const agency of shownAgencies(body)) {
          assert.ok(mine.has(agency), `${where}: showed a job of agency ${agency} to a non-member`);
        }
        if (endpoint === CANCEL) {
          const job = (body as { job: { id: string; status: string } }).job;
          assert.equal(job.id, w.jobs.cancelledA, `${where}: cancelled a job it should not reach`);
          assert.equal(job.status, "cancelled");
        }
        if (endpoint === PROCESS) {
          assert.equal(
            counters.ran(),
            ranBefore + 1,
            `${where}: a ${res.status} without a processor run`,
          );
        }
      }
    }
    if (res.status !== 200 && res.status !== 202) {
      assert.equal(counters.ran(), ranBefore, `${where}: the processor ran for a refused request`);
    }
    assert.equal(counters.kicked(), 0, `${where}: a job was kicked`);
    // A request the check order refused before its credentials were accepted never reaches a
    // query (and got exactly the forced answer, asserted above): its checksum is sampled.
    const refusedEarly = expect !== null && expect !== "passes-credentials";
    if (!refusedEarly || tally.requests % SAMPLE_EARLY === 0) {
      const now = await fingerprint(fp, w);
      if (now !== baseline.value) {
        // The new state is the baseline from now on, so shrinking finds the smallest request
        // that changes the database again (and not just any request after this one).
        baseline.value = now;
        assert.fail(
          `${where}: the database changed (by this request, or by one of the ${SAMPLE_EARLY} ` +
            "before it that the check order refused before their credentials)",
        );
      }
    }
  });
  const details = await fc.check(property, {
    ...fuzzParameters(),
  });
  if (details.failed) {
    const error = details.errorInstance instanceof Error
      ? details.errorInstance.message
      : String(details.errorInstance);
    const report = fc.defaultReportMessage(details) ?? "";
    assert.fail(
      `${endpoint}: failed with seed ${details.seed}, path ${details.counterexamplePath}; replay with ` +
        `FUZZ_ENDPOINT=${endpoint} FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath} ` +
        `deno test -A tests/reliability/fuzz_endpoints.test.ts\n${error.slice(0, 2000)}\n` +
        (report.length > 3000 ? report.slice(0, 3000) + "… (cut)" : report),
    );
  }
  assert.equal(
    await fingerprint(fp, w),
    baseline.value,
    `${endpoint}: the database changed during the run`,
  );
}

Deno.test(`fuzzing the four functions (${RUNS} generated requests each): never a 500, always the documented envelope and CORS, the database unchanged`, async (t) => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  // The Auth server legacy HS256 tokens are checked with (docs/ARCHITECTURE.md §6).
  const auth = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, authUserHandler());
  const fp = postgres(TEST_DB_URL, { max: 1, prepare: true, onnotice: () => {} });
  const tally: Tally = { requests: 0, byStatus: {}, processorRuns: 0, kicks: 0 };
  const failures: string[] = [];
  let w: World | null = null;
  try {
    w = await buildWorld(db);
    const creds = await credentials(w);
    const config = {
      ...loadConfig(),
      SUPABASE_URL: `http://127.0.0.1:${auth.addr.port}`,
      // The limiter would answer 429 long before 10,000 requests; 429 stays an allowed answer.
      SYNC_USER_ACTIONS_PER_MINUTE: 1_000_000,
    };
    const now = () => new Date();
    let ran = 0;
    let kicked = 0;
    const handlers: Record<Endpoint, (req: Request) => Promise<Response>> = {
      [START]: startHandler({ sql: db.sql, config, now, kick: () => void kicked++ }),
      [CANCEL]: cancelHandler({ sql: db.sql, config, now }),
      [STATUS]: statusHandler({ sql: db.sql, config, now }),
      [PROCESS]: processHandler({
        sql: db.sql,
        config,
        process: () => {
          ran++;
          return Promise.resolve({ jobs: [], duration_ms: 0 });
        },
      }),
    };
    const counters = { ran: () => ran, kicked: () => kicked };
    const baseline = { value: await fingerprint(fp, w) };
    for (const endpoint of ENDPOINTS) {
      if (ONLY !== undefined && ONLY !== endpoint) continue;
      const ok = await t.step(`${endpoint}: ${RUNS} requests`, async () => {
        await fuzzEndpoint(endpoint, handlers[endpoint], w!, fp, baseline, creds, tally, counters);
      });
      if (!ok) failures.push(endpoint);
    }
    tally.processorRuns = ran;
    tally.kicks = kicked;
  } finally {
    await recordFigures({
      suite: "input",
      test: "fuzzing the four functions (fast-check)",
      cases: tally.requests,
      faults: tally.requests - (tally.byStatus[200] ?? 0) - (tally.byStatus[202] ?? 0) -
        (tally.byStatus[204] ?? 0),
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: failures.length,
      notes: {
        runs_per_endpoint: RUNS,
        by_status: tally.byStatus,
        processor_runs: tally.processorRuns,
        failed_endpoints: failures,
      },
    }, started).catch(() => {});
    await db.sql`delete from public.cron_job_logs where id = any (${w?.cronLogs ?? []}::uuid[])`;
    await fp.end({ timeout: 5 });
    await auth.shutdown();
    await restoreCron();
  }
});
