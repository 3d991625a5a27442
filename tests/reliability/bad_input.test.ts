// Case 7 — bad input and the auth matrix, through the four functions' handlers
// (`makeHandler(deps)` of each index.ts, called directly as Supabase's examples test them).
// Every malformed or unauthorized request gets its documented status and error code
// (docs/ARCHITECTURE.md §6) in the error envelope with the CORS headers, the processor is never run, no job
// is kicked, and the database is unchanged: row counts and an md5 checksum of every row the
// test's agencies own (jobs, leases, calls, members, agencies, their Vault keys) and of the
// test's cron_job_logs row, taken before and after.
import assert from "node:assert/strict";
import { loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import { makeHandler as cancelHandler } from "../../supabase/functions/cancel-historical-sync/index.ts";
import { makeHandler as statusHandler } from "../../supabase/functions/get-sync-status/index.ts";
import { makeHandler as processHandler } from "../../supabase/functions/process-historical-sync/index.ts";
import { makeHandler as startHandler } from "../../supabase/functions/start-historical-sync/index.ts";
import { TestDb } from "../support/db.ts";
import { functionRequest, FUNCTIONS_BASE } from "../support/requests.ts";
import {
  algNoneToken,
  expiredToken,
  forgedToken,
  otherKeyPair,
  PUBLISHABLE_KEY,
  SECRET_KEY,
  secretKeyHeaders,
  tokenFromOtherKey,
  tokenWithoutExp,
  tokenWithUnknownKid,
  userHeaders,
  userToken,
} from "../support/tokens.ts";
import { pauseCron, type Sql } from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const START = "start-historical-sync";
const PROCESS = "process-historical-sync";
const CANCEL = "cancel-historical-sync";
const STATUS = "get-sync-status";
type Endpoint = typeof START | typeof PROCESS | typeof CANCEL | typeof STATUS;

interface Case {
  name: string;
  endpoint: Endpoint;
  request: () => Request | Promise<Request>;
  status: number;
  code: string | null;
  /** A field `details` must name (validation_failed). */
  path?: string;
  /** A control: a request that is allowed (it must still change nothing). */
  control?: boolean;
}

interface World {
  db: TestDb;
  ids: { agencies: string[]; cronLog: string };
  A: { id: string; owner: string; admin: string; member: string; job: string; done: string };
  B: { id: string; owner: string; member: string; job: string };
  C: { id: string; owner: string };
  D: { id: string; owner: string; member: string };
}

/** Agencies: A (active + completed job, calls), B (active job), C (no key), D (key, idle). */
async function world(db: TestDb): Promise<World> {
  const key = "Zk3pQ9aB.k2Vf8sLw0qR7tYx1mN4cE6hJ9uP3dG5z";
  const a = await db.createAgency({
    members: { owner: "owner", admin: "admin", member: "member" },
    ultravoxKey: key,
  });
  const aJob = await db.insertJob(a.id, { status: "pending", date_to: "2026-10-31T00:00:00Z" });
  const aDone = await db.insertJob(a.id, {
    status: "completed",
    date_to: "2026-09-30T00:00:00Z",
    started_at: "2026-10-01T00:00:00.000001Z",
    completed_at: "2026-10-01T00:10:00.000001Z",
    processed_calls: 3,
    imported_calls: 3,
  });
  for (let i = 0; i < 3; i++) {
    await db.sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source,
                                historical_sync_job_id)
      values (${a.id}::uuid, gen_random_uuid(), '2026-09-01T00:00:00.000001Z', '{}',
              'historical_sync', ${aDone.id}::uuid)`;
  }
  const b = await db.createAgency({
    members: { owner: "owner", member: "member" },
    ultravoxKey: key,
  });
  const bJob = await db.insertJob(b.id, {
    status: "in_progress",
    started_at: "2026-10-01T00:00:00.000001Z",
    cursor: "c1",
  });
  await db.sql`
    insert into public.historical_sync_job_leases (job_id, holder, expires_at)
    values (${bJob.id}::uuid, gen_random_uuid(), now() + interval '1 hour')`;
  const c = await db.createAgency({ members: { owner: "owner" } });
  const d = await db.createAgency({
    members: { owner: "owner", member: "member" },
    ultravoxKey: key,
  });
  const [{ id: cronLog }] = await db.sql<{ id: string }[]>`
    insert into public.cron_job_logs (job_name, status)
    values (${`reliability:bad-input-${crypto.randomUUID()}`}, 'running') returning id`;
  return {
    db,
    ids: { agencies: [a.id, b.id, c.id, d.id], cronLog },
    A: { id: a.id, ...a.users, job: aJob.id, done: aDone.id } as World["A"],
    B: { id: b.id, ...b.users, job: bJob.id } as World["B"],
    C: { id: c.id, ...c.users } as World["C"],
    D: { id: d.id, ...d.users } as World["D"],
  };
}

/** Row counts and md5 of every row the test owns. */
async function fingerprint(sql: Sql, w: World): Promise<Record<string, string>> {
  const agencies = w.ids.agencies;
  const keys = agencies.map((id) => `ultravox_api_key:${id}`);
  const [row] = await sql<Record<string, string>[]>`
    select
      (select count(*) || ':' || md5(coalesce(string_agg(t::text, '|' order by t.id), ''))
         from public.historical_sync_jobs t where t.agency_id = any (${agencies}::uuid[])) as jobs,
      (select count(*) || ':' || md5(coalesce(string_agg(l::text, '|' order by l.job_id), ''))
         from public.historical_sync_job_leases l
         join public.historical_sync_jobs j on j.id = l.job_id
        where j.agency_id = any (${agencies}::uuid[])) as leases,
      (select count(*) || ':' || md5(coalesce(string_agg(c::text, '|' order by c.id), ''))
         from public.calls c where c.agency_id = any (${agencies}::uuid[])) as calls,
      (select count(*) || ':' || md5(coalesce(string_agg(m::text, '|' order by m.agency_id, m.user_id), ''))
         from public.agency_members m where m.agency_id = any (${agencies}::uuid[])) as members,
      (select count(*) || ':' || md5(coalesce(string_agg(a::text, '|' order by a.id), ''))
         from public.agencies a where a.id = any (${agencies}::uuid[])) as agencies,
      (select count(*) || ':' || md5(coalesce(string_agg(s.name || '=' || s.decrypted_secret
                                                           || '@' || s.updated_at::text, '|'
                                                         order by s.name), ''))
         from vault.decrypted_secrets s where s.name = any (${keys}::text[])) as keys,
      (select count(*) || ':' || md5(coalesce(string_agg(g::text, '|'), ''))
         from public.cron_job_logs g where g.id = ${w.ids.cronLog}::uuid) as cron_job_logs`;
  return row;
}

function handlers(db: TestDb) {
  const config = loadConfig();
  const now = () => new Date();
  const ran: unknown[] = [];
  const kicked: string[] = [];
  const byName: Record<Endpoint, (req: Request) => Promise<Response>> = {
    [START]: startHandler({ sql: db.sql, config, now, kick: (id) => void kicked.push(id) }),
    [PROCESS]: processHandler({
      sql: db.sql,
      config,
      process: (opts) => {
        ran.push(opts);
        return Promise.resolve({ jobs: [], duration_ms: 0 });
      },
    }),
    [CANCEL]: cancelHandler({ sql: db.sql, config, now }),
    [STATUS]: statusHandler({ sql: db.sql, config, now }),
  };
  return { byName, ran, kicked };
}

/** Runs every case; returns what went against the contract. */
async function runCases(db: TestDb, w: World, cases: Case[]) {
  const { byName, ran, kicked } = handlers(db);
  const before = await fingerprint(db.sql, w);
  const wrong: string[] = [];
  for (const c of cases) {
    const res = await byName[c.endpoint](await c.request());
    const text = await res.text();
    let body: { error?: { code?: unknown; message?: unknown; details?: unknown } } | null = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      wrong.push(`${c.endpoint} ${c.name}: the reply is not JSON`);
      continue;
    }
    const got = `${res.status} ${body?.error?.code ?? "-"}`;
    const want = `${c.status} ${c.code ?? "-"}`;
    if (got !== want) wrong.push(`${c.endpoint} ${c.name}: ${got} (expected ${want})`);
    if (res.headers.get("access-control-allow-origin") !== "*") {
      wrong.push(`${c.endpoint} ${c.name}: no CORS headers`);
    }
    if (c.code !== null) {
      const e = body?.error;
      const keys = Object.keys(body ?? {});
      if (keys.length !== 1 || typeof e?.message !== "string" || e.message === "") {
        wrong.push(`${c.endpoint} ${c.name}: not the error envelope: ${text.slice(0, 120)}`);
      }
      if (c.path !== undefined) {
        const details = Array.isArray(e?.details) ? e.details as { path: string }[] : [];
        if (!details.some((d) => d.path === c.path)) {
          wrong.push(`${c.endpoint} ${c.name}: details do not name ${c.path}: ${text}`);
        }
      }
      if (/sql|postgres|stack|select |relation /i.test(String(e?.message))) {
        wrong.push(`${c.endpoint} ${c.name}: the message says something internal`);
      }
    }
  }
  const after = await fingerprint(db.sql, w);
  const changed = Object.keys(before).filter((k) => before[k] !== after[k]);
  return { wrong, changed, ran: ran.length, kicked: kicked.length };
}

async function corpus(test: string, build: (w: World) => Promise<Case[]>) {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  let w: World | null = null;
  try {
    w = await world(db);
    const cases = await build(w);
    const outcome = await runCases(db, w, cases);
    const faults = cases.filter((c) => !c.control).length;
    await recordFigures({
      suite: "input",
      test,
      cases: cases.length,
      faults,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: outcome.wrong.length + outcome.changed.length + outcome.ran +
        outcome.kicked,
      notes: {
        unexpected_answers: outcome.wrong.length,
        tables_changed: outcome.changed,
        processor_runs: outcome.ran,
        kicks: outcome.kicked,
        by_endpoint: Object.fromEntries(
          [START, PROCESS, CANCEL, STATUS].map((
            e,
          ) => [e, cases.filter((c) => c.endpoint === e).length]),
        ),
      },
    }, started);
    assert.deepEqual(outcome.wrong, [], "every request gets its documented status and code");
    assert.deepEqual(outcome.changed, [], "the database is unchanged");
    assert.equal(outcome.ran, 0, "the processor never ran");
    assert.equal(outcome.kicked, 0, "no job was kicked");
  } finally {
    await db.sql`delete from public.cron_job_logs where id = ${w?.ids.cronLog ?? null}::uuid`;
    await restoreCron();
  }
}

const HUGE = "x".repeat(70_000);

Deno.test("sixty-odd malformed requests across the four functions get their documented errors and change nothing", async () => {
  await corpus(
    "malformed requests (types, fields, dates, ranges, sizes, methods, media types)",
    async (w) => {
      const owner = userHeaders(await userToken(w.A.owner));
      const secret = secretKeyHeaders();
      const post = (endpoint: Endpoint, headers: Record<string, string>) =>
      (
        name: string,
        body: unknown,
        status: number,
        code: string,
        path?: string,
        extra: Record<string, string> = {},
      ): Case => ({
        name,
        endpoint,
        request: () => functionRequest(endpoint, body, { headers: { ...headers, ...extra } }),
        status,
        code,
        path,
      });
      const start = post(START, owner);
      const cancel = post(CANCEL, owner);
      const statusPost = post(STATUS, owner);
      const proc = post(PROCESS, secret);
      const get = (
        name: string,
        query: string,
        status: number,
        code: string,
        path?: string,
      ): Case => ({
        name,
        endpoint: STATUS,
        request: () => functionRequest(STATUS, undefined, { method: "GET", headers: owner, query }),
        status,
        code,
        path,
      });
      const method = (endpoint: Endpoint, m: string, headers = owner): Case => ({
        name: `method ${m}`,
        endpoint,
        request: () =>
          functionRequest(endpoint, m === "GET" || m === "HEAD" ? undefined : { x: 1 }, {
            method: m,
            headers,
          }),
        status: 405,
        code: "method_not_allowed",
      });
      const A = w.A.id;
      const V = "validation_failed";
      const J = "invalid_json";
      return [
        // start-historical-sync: bodies that are not JSON objects
        start("not JSON", "{agency_id:", 400, J),
        start("a JSON array", "[]", 400, J),
        start("a JSON string", '"start"', 400, J),
        start("JSON null", "null", 400, J),
        start("a JSON number", "42", 400, J),
        start("an empty body", "", 400, J),
        start("invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 400, J, undefined, {
          "content-type": "application/json",
        }),
        // fields: missing, unknown, wrong type
        start("no agency_id", {}, 400, V, "agency_id"),
        start("agency_id a number", { agency_id: 123 }, 400, V, "agency_id"),
        start("agency_id null", { agency_id: null }, 400, V, "agency_id"),
        start("agency_id an array", { agency_id: [A] }, 400, V, "agency_id"),
        start("agency_id not a uuid", { agency_id: "agency-1" }, 400, V, "agency_id"),
        start("an unknown field", { agency_id: A, force: true }, 400, V, "force"),
        start(
          "__proto__ smuggled",
          `{"agency_id":"${A}","__proto__":{"admin":true}}`,
          400,
          V,
          "__proto__",
        ),
        start(
          "deeply nested junk",
          `{"agency_id":"${A}","x":${"[".repeat(5000)}${"]".repeat(5000)}}`,
          400,
          V,
          "x",
        ),
        // dates
        start("date_from a word", { agency_id: A, date_from: "yesterday" }, 400, V, "date_from"),
        start("date_from a number", { agency_id: A, date_from: 20261001 }, 400, V, "date_from"),
        start("date_from Feb 30", { agency_id: A, date_from: "2026-02-30" }, 400, V, "date_from"),
        start("date_to month 13", { agency_id: A, date_to: "2026-13-01" }, 400, V, "date_to"),
        start(
          "date_to without offset",
          { agency_id: A, date_to: "2026-10-01T12:00:00" },
          400,
          V,
          "date_to",
        ),
        start(
          "date_to hour 24",
          { agency_id: A, date_to: "2026-10-01T24:00:00Z" },
          400,
          V,
          "date_to",
        ),
        start(
          "date_to offset +25:00",
          { agency_id: A, date_to: "2026-10-01T10:00:00+25:00" },
          400,
          V,
          "date_to",
        ),
        start("date_to null", { agency_id: A, date_to: null }, 400, V, "date_to"),
        start(
          "reversed range",
          { agency_id: A, date_from: "2026-10-02", date_to: "2026-10-01" },
          400,
          V,
          "date_from",
        ),
        start(
          "empty range",
          { agency_id: A, date_from: "2026-10-01T00:00:00Z", date_to: "2026-10-01T00:00:00Z" },
          400,
          V,
          "date_from",
        ),
        start(
          "date_from in the future",
          { agency_id: A, date_from: "2999-01-01" },
          400,
          V,
          "date_from",
        ),
        start("year 0", { agency_id: A, date_from: "0000-01-01" }, 400, V, "date_from"),
        start("year 10000", { agency_id: A, date_to: "10000-01-01T00:00:00Z" }, 400, V, "date_to"),
        start("fullwidth digits", { agency_id: A, date_to: "２０２６-10-01" }, 400, V, "date_to"),
        start(
          "SQL in a date",
          { agency_id: A, date_from: "2026-10-01'; delete from public.calls; --" },
          400,
          V,
          "date_from",
        ),
        // numbers out of range
        start("max_calls 0", { agency_id: A, max_calls: 0 }, 400, V, "max_calls"),
        start("max_calls negative", { agency_id: A, max_calls: -5 }, 400, V, "max_calls"),
        start("max_calls 1,000,001", { agency_id: A, max_calls: 1_000_001 }, 400, V, "max_calls"),
        start("max_calls 1.5", { agency_id: A, max_calls: 1.5 }, 400, V, "max_calls"),
        start("max_calls a string", { agency_id: A, max_calls: "100" }, 400, V, "max_calls"),
        start("max_calls 1e309", `{"agency_id":"${A}","max_calls":1e309}`, 400, V, "max_calls"),
        start(
          "max_calls 2^53+1",
          `{"agency_id":"${A}","max_calls":9007199254740993}`,
          400,
          V,
          "max_calls",
        ),
        // strings: SQL-looking, unicode
        start(
          "SQL as agency_id",
          { agency_id: "'; drop table public.calls; --" },
          400,
          V,
          "agency_id",
        ),
        start("unicode as agency_id", { agency_id: "ａｇｅｎｃｙ-🙂-\u0000" }, 400, V, "agency_id"),
        start("RTL override in a field", { agency_id: A, "\u202enote": "x" }, 400, V, "\u202enote"),
        // size and type
        start("a 70 KB body", { agency_id: A, pad: HUGE }, 413, "payload_too_large"),
        {
          name: "a 70 KB streamed body (no Content-Length)",
          endpoint: START,
          request: () =>
            new Request(`${FUNCTIONS_BASE}/${START}`, {
              method: "POST",
              headers: { ...owner, "content-type": "application/json" },
              body: new Blob([`{"pad":"${HUGE}"}`]).stream(),
            }),
          status: 413,
          code: "payload_too_large",
        },
        start("a Content-Length of 100 MB", "{}", 413, "payload_too_large", undefined, {
          "content-length": "100000000",
        }),
        start(
          "text/plain",
          JSON.stringify({ agency_id: A }),
          415,
          "unsupported_media_type",
          undefined,
          {
            "content-type": "text/plain",
          },
        ),
        start("form-encoded", `agency_id=${A}`, 415, "unsupported_media_type", undefined, {
          "content-type": "application/x-www-form-urlencoded",
        }),
        start("multipart", "--x--", 415, "unsupported_media_type", undefined, {
          "content-type": "multipart/form-data; boundary=x",
        }),
        start("application/jsonp", "{}", 415, "unsupported_media_type", undefined, {
          "content-type": "application/jsonp",
        }),
        method(START, "GET"),
        method(START, "PUT"),
        method(START, "DELETE"),
        method(START, "PATCH"),
        // state: documented refusals that change nothing
        start("a second active job", { agency_id: A }, 409, "sync_already_active"),
        start(
          "duplicate keys, last wins",
          `{"agency_id":"not-a-uuid","agency_id":"${A}"}`,
          409,
          "sync_already_active",
        ),
        post(START, userHeaders(await userToken(w.C.owner)))(
          "no Ultravox key",
          { agency_id: w.C.id },
          422,
          "ultravox_key_missing",
        ),
        // cancel-historical-sync
        cancel("no job_id", {}, 400, V, "job_id"),
        cancel("job_id not a uuid", { job_id: "job-1" }, 400, V, "job_id"),
        cancel("job_id a number", { job_id: 1 }, 400, V, "job_id"),
        cancel("job_id SQL", { job_id: "' or 1=1 --" }, 400, V, "job_id"),
        cancel("an unknown field", { job_id: w.A.job, force: true }, 400, V, "force"),
        cancel("a JSON array", "[]", 400, J),
        cancel("not JSON", "job_id=1", 400, J),
        cancel("a 70 KB body", { job_id: w.A.job, pad: HUGE }, 413, "payload_too_large"),
        cancel(
          "text/plain",
          JSON.stringify({ job_id: w.A.job }),
          415,
          "unsupported_media_type",
          undefined,
          {
            "content-type": "text/plain",
          },
        ),
        method(CANCEL, "GET"),
        method(CANCEL, "PUT"),
        cancel("no such job", { job_id: crypto.randomUUID() }, 404, "not_found"),
        cancel(
          "the nil uuid",
          { job_id: "00000000-0000-0000-0000-000000000000" },
          404,
          "not_found",
        ),
        cancel("a finished job", { job_id: w.A.done }, 409, "job_already_finished"),
        // get-sync-status, GET and POST
        get("no parameters", "", 400, V, "job_id"),
        get("job_id not a uuid", "job_id=x", 400, V, "job_id"),
        get("both ids", `job_id=${w.A.job}&agency_id=${A}`, 400, V, "agency_id"),
        get("limit 0", `agency_id=${A}&limit=0`, 400, V, "limit"),
        get("limit 101", `agency_id=${A}&limit=101`, 400, V, "limit"),
        get("limit a word", `agency_id=${A}&limit=ten`, 400, V, "limit"),
        get("limit 1.5", `agency_id=${A}&limit=1.5`, 400, V, "limit"),
        get("limit with job_id", `job_id=${w.A.job}&limit=5`, 400, V, "limit"),
        get("agency_id repeated", `agency_id=${A}&agency_id=${w.B.id}`, 400, V, "agency_id"),
        get("an unknown parameter", `agency_id=${A}&debug=1`, 400, V, "debug"),
        get(
          "SQL in job_id",
          `job_id=${encodeURIComponent("1' union select * from vault.secrets--")}`,
          400,
          V,
          "job_id",
        ),
        get("an emoji agency_id", `agency_id=${encodeURIComponent("🙂")}`, 400, V, "agency_id"),
        statusPost("POST {}", {}, 400, V, "job_id"),
        statusPost("POST not JSON", "nope", 400, J),
        statusPost("POST limit a string", { agency_id: A, limit: "5" }, 400, V, "limit"),
        statusPost("POST 70 KB", { agency_id: A, pad: HUGE }, 413, "payload_too_large"),
        statusPost("POST text/plain", "{}", 415, "unsupported_media_type", undefined, {
          "content-type": "text/plain",
        }),
        method(STATUS, "PUT"),
        method(STATUS, "DELETE"),
        get("no such job", `job_id=${crypto.randomUUID()}`, 404, "not_found"),
        // process-historical-sync, with the secret key
        proc("cron_log_id not a uuid", { cron_log_id: "x" }, 400, V, "cron_log_id"),
        proc("job_id a number", { job_id: 5 }, 400, V, "job_id"),
        proc("an unknown field", { cron_log_id: w.ids.cronLog, all: true }, 400, V, "all"),
        proc("a JSON array", "[1,2]", 400, J),
        proc("not JSON", "{", 400, J),
        proc("a 70 KB body", { pad: HUGE }, 413, "payload_too_large"),
        proc("text/plain", "{}", 415, "unsupported_media_type", undefined, {
          "content-type": "text/plain",
        }),
        method(PROCESS, "GET", secret),
        method(PROCESS, "PUT", secret),
        // preflight: always 204, no auth (controls)
        ...[START, PROCESS, CANCEL, STATUS].map((endpoint): Case => ({
          name: "OPTIONS preflight",
          endpoint: endpoint as Endpoint,
          request: () => new Request(`${FUNCTIONS_BASE}/${endpoint}`, { method: "OPTIONS" }),
          status: 204,
          code: null,
          control: true,
        })),
      ];
    },
  );
});

Deno.test("the auth matrix: every credential that is missing, broken or of the wrong kind is 401, and roles and tenants are enforced", async () => {
  await corpus("auth matrix (tokens, keys, roles, tenants)", async (w) => {
    const otherProject = await otherKeyPair("another-project-key");
    type Headers = () => Record<string, string> | Promise<Record<string, string>>;
    const tokens: [string, Headers][] = [
      ["no credentials", () => Promise.resolve({})],
      ["publishable key only", () => Promise.resolve({ apikey: PUBLISHABLE_KEY })],
      ["Bearer garbage", () => Promise.resolve(userHeaders("not-a-jwt"))],
      [
        "Basic auth",
        () => ({ apikey: PUBLISHABLE_KEY, authorization: `Basic ${btoa("u:p")}` }),
      ],
      [
        "a forged payload (D's owner's claims, A's owner's signature)",
        async () => userHeaders(await forgedToken(w.A.owner, w.D.owner)),
      ],
      ["an expired token", async () => userHeaders(await expiredToken(w.D.owner))],
      ["a token without exp", async () => userHeaders(await tokenWithoutExp(w.D.owner))],
      ["alg none", () => userHeaders(algNoneToken(w.D.owner))],
      [
        "another key claiming the dev kid",
        async () => userHeaders(await tokenFromOtherKey(w.D.owner)),
      ],
      [
        "another project's key and kid",
        async () =>
          userHeaders(
            await userToken(w.D.owner, {
              key: otherProject.privateKey,
              kid: "another-project-key",
            }),
          ),
      ],
      ["an unknown kid", async () => userHeaders(await tokenWithUnknownKid(w.D.owner))],
      [
        "sub not a uuid",
        async () => userHeaders(await userToken(w.D.owner, { claims: { sub: "admin" } })),
      ],
      ["the secret key as apikey with a valid token", async () => ({
        ...userHeaders(await userToken(w.D.owner)),
        apikey: SECRET_KEY,
      })],
      [
        "the secret key as Bearer",
        () => ({ apikey: SECRET_KEY, authorization: `Bearer ${SECRET_KEY}` }),
      ],
      ["the token in apikey only", async () => ({ apikey: await userToken(w.D.owner) })],
    ];
    const cases: Case[] = [];
    // Bodies that would change the database if the credentials were wrongly accepted.
    const userRequests: [Endpoint, unknown, string?][] = [
      [START, { agency_id: w.D.id, max_calls: 5 }],
      [CANCEL, { job_id: w.B.job }],
      [STATUS, undefined, `agency_id=${w.D.id}`],
    ];
    for (const [label, headers] of tokens) {
      for (const [endpoint, body, query] of userRequests) {
        cases.push({
          name: label,
          endpoint,
          request: async () =>
            functionRequest(endpoint, body, {
              method: body === undefined ? "GET" : "POST",
              headers: await headers(),
              query,
            }),
          status: 401,
          code: "unauthorized",
        });
      }
    }
    // The processor takes the secret key in apikey only.
    const processorCreds: [string, Headers][] = [
      ["no credentials", () => Promise.resolve({})],
      ["a user JWT", async () => userHeaders(await userToken(w.A.owner))],
      ["a user JWT as apikey", async () => ({ apikey: await userToken(w.A.owner) })],
      ["the publishable key", () => Promise.resolve({ apikey: PUBLISHABLE_KEY })],
      ["a wrong secret key", () => Promise.resolve({ apikey: "sb_secret_wrongwrongwrongwrong" })],
      [
        "the secret key as Bearer only",
        () => Promise.resolve({ authorization: `Bearer ${SECRET_KEY}` }),
      ],
      ["the secret key plus an Authorization header", async () => ({
        apikey: SECRET_KEY,
        authorization: `Bearer ${await userToken(w.A.owner)}`,
      })],
      [
        "the secret key in another case",
        () => Promise.resolve({ apikey: SECRET_KEY.toUpperCase() }),
      ],
    ];
    for (const [label, headers] of processorCreds) {
      cases.push({
        name: label,
        endpoint: PROCESS,
        request: async () =>
          functionRequest(PROCESS, { job_id: w.B.job }, { headers: await headers() }),
        status: 401,
        code: "unauthorized",
      });
    }
    // Authenticated, but not allowed: roles and tenants.
    const as = async (user: string) => userHeaders(await userToken(user));
    const authz: [string, Endpoint, string, unknown, string | undefined, number, string | null][] =
      [
        ["a member starts", START, w.D.member, { agency_id: w.D.id }, undefined, 403, "forbidden"],
        ["a member cancels", CANCEL, w.B.member, { job_id: w.B.job }, undefined, 403, "forbidden"],
        [
          "another agency's owner starts",
          START,
          w.A.owner,
          { agency_id: w.D.id },
          undefined,
          403,
          "forbidden",
        ],
        [
          "an unknown agency",
          START,
          w.A.owner,
          { agency_id: crypto.randomUUID() },
          undefined,
          403,
          "forbidden",
        ],
        [
          "another agency's owner cancels",
          CANCEL,
          w.A.owner,
          { job_id: w.B.job },
          undefined,
          404,
          "not_found",
        ],
        [
          "another agency's job status",
          STATUS,
          w.A.owner,
          undefined,
          `job_id=${w.B.job}`,
          404,
          "not_found",
        ],
        [
          "another agency's job list",
          STATUS,
          w.A.owner,
          undefined,
          `agency_id=${w.B.id}`,
          403,
          "forbidden",
        ],
        [
          "another agency's job list (POST)",
          STATUS,
          w.D.owner,
          { agency_id: w.A.id },
          undefined,
          403,
          "forbidden",
        ],
        [
          "an admin of A cancels B's job",
          CANCEL,
          w.A.admin,
          { job_id: w.B.job },
          undefined,
          404,
          "not_found",
        ],
        // controls: allowed reads change nothing either
        [
          "a member reads its agency",
          STATUS,
          w.D.member,
          undefined,
          `agency_id=${w.D.id}`,
          200,
          null,
        ],
        ["a member reads its job", STATUS, w.A.member, undefined, `job_id=${w.A.job}`, 200, null],
      ];
    for (const [name, endpoint, user, body, query, status, code] of authz) {
      cases.push({
        name,
        endpoint,
        request: async () =>
          functionRequest(endpoint, body, {
            method: body === undefined ? "GET" : "POST",
            headers: await as(user),
            query,
          }),
        status,
        code,
        control: status === 200,
      });
    }
    return cases;
  });
});
