// Case 4 — source faults. The stand-in answers with long 429 storms, 5xx bursts, dropped
// connections, time-outs, cut and mangled bodies, invalid call objects, a rejected cursor, and
// a key revoked mid-walk. The job either completes with every call once and exact counters, or
// fails with the documented message after its bounded attempts (SYNC_MAX_ATTEMPTS attempts in
// a row without a page landing, an attempt counted at each claim) with exactly the pages
// before the failure imported. `sleep` is injected and records each wait, so Retry-After and
// backoff never wait for real; a Retry-After too long to wait releases the job with
// not_before, and where a scenario says so the test moves the clock past it between
// invocations (docs/ARCHITECTURE.md §5 "Errors").
import assert from "node:assert/strict";
import type { Config } from "../../supabase/functions/_shared/platform/config.ts";
import { TestDb } from "../support/db.ts";
import {
  type FakeCall,
  type FakeUltravox,
  type FaultSpec,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";
import {
  checkJob,
  createJob,
  dbSql,
  type Expectation,
  freshAccount,
  pauseCron,
  runUntilDone,
  syncConfig,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const PAGE = 10;
const LEASE_SECONDS = 1;
const KEY_REJECTED_403 = "Ultravox rejected the API key (HTTP 403). " +
  "Set a valid key for this agency with set_agency_ultravox_api_key.";

interface Scenario {
  test: string;
  calls: number;
  faults?: FaultSpec[];
  config?: Partial<Config>;
  /** Wraps the processor's fetch (e.g. to revoke the key at a given request). */
  wrapFetch?: (fake: FakeUltravox) => typeof fetch;
  /** Faults injected besides the queued ones (a revoked key). */
  extraFaults?: number;
  expect: (calls: FakeCall[]) => Omit<Expectation, "pagesRecorded">;
  /** Edits the account before the stand-in serves it; returns what it serves. */
  prepare?: (calls: FakeCall[]) => FakeCall[];
  /**
   * Between invocations, a job released with not_before (a Retry-After too long to wait) is
   * recorded in `releases` and then made claimable, as the clock passing not_before would.
   */
  passRetryAfter?: boolean;
  /** Extra assertions on what happened. */
  verify?: (ctx: {
    fake: FakeUltravox;
    waits: number[];
    invocations: number;
    releases: Release[];
  }) => void;
}

/** The engine state after an invocation that released its job until a Retry-After. */
interface Release {
  not_before: string;
  /** not_before − the database clock when the test looked, in seconds. */
  left_s: number;
  holder: string | null;
  failed_attempts: number;
  /** sync_job_is_claimable now, and at not_before. */
  claimable_now: boolean;
  claimable_at_not_before: boolean;
  /** Jobs a claim at not_before − 1 ms took (must be none). */
  claimed_early: number;
  /** Requests the stand-in had received by then. */
  requests: number;
}

async function sourceFaults(s: Scenario) {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(s.calls);
  await using fake = await startFakeUltravox({ calls: s.prepare?.(calls) ?? calls });
  const procSql = dbSql(3);
  try {
    if (s.faults) fake.faults.push(...s.faults);
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, {
      SYNC_PAGE_SIZE: PAGE,
      SYNC_LEASE_SECONDS: LEASE_SECONDS,
      ...s.config,
    });
    const waits: number[] = [];
    const releases: Release[] = [];
    const passRetryAfter = async () => {
      const [state] = await db.sql<Omit<Release, "claimed_early" | "requests">[]>`
        select l.not_before, l.holder::text as holder, l.failed_attempts,
               extract(epoch from l.not_before - clock_timestamp())::float8 as left_s,
               public.sync_job_is_claimable(j, l, clock_timestamp()) as claimable_now,
               public.sync_job_is_claimable(j, l, l.not_before) as claimable_at_not_before
          from public.historical_sync_job_leases l
          join public.historical_sync_jobs j on j.id = l.job_id
         where l.job_id = ${jobId}::uuid`;
      if (state?.not_before == null) return;
      const early = await db.sql`
        select id from public.claim_sync_jobs(gen_random_uuid(), 1, 60, ${jobId}::uuid,
                                              ${state.not_before}::timestamptz - interval '1 millisecond')`;
      releases.push({ ...state, claimed_early: early.length, requests: fake.requests.length });
      // The clock passes not_before.
      await db.sql`
        update public.historical_sync_job_leases set not_before = now()
         where job_id = ${jobId}::uuid`;
    };
    const log = await runUntilDone(
      {
        sql: procSql,
        config,
        fetch: s.wrapFetch?.(fake),
        sleep: (ms) => {
          waits.push(ms);
          return Promise.resolve();
        },
      },
      jobId,
      s.passRetryAfter ? { between: passRetryAfter } : {},
    );
    const exp = s.expect(calls);
    const check = await checkJob(db.sql, jobId, { ...exp, pagesRecorded: log.pages });
    const injected = fake.requests.filter((r) => r.fault !== null && r.fault !== "pass").length +
      (s.extraFaults ?? 0);
    const leaseMs = config.SYNC_LEASE_SECONDS * 1000;
    const tooLong = waits.filter((w) => w > leaseMs).length;
    if (tooLong > 0) check.mismatches.push(`${tooLong} wait(s) longer than the lease`);
    await recordFigures({
      suite: "source",
      test: s.test,
      cases: 1,
      faults: injected,
      calls_expected: exp.seen.length,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length,
      notes: {
        status: check.job.status,
        invocations: log.invocations,
        requests: fake.requests.length,
        waits: waits.length,
        longest_wait_ms: Math.max(0, ...waits),
        ...(check.job.status === "failed" ? { error_message: check.job.error_message } : {}),
      },
    }, started);
    assert.equal(check.lost, 0, "calls lost");
    assert.equal(check.duplicated, 0, "calls duplicated");
    assert.deepEqual(check.mismatches, []);
    s.verify?.({ fake, waits, invocations: log.invocations, releases });
  } finally {
    await procSql.end();
    await restoreCron();
  }
}

const completes = (invalid = 0) => (calls: FakeCall[]) => ({
  seen: calls,
  invalid,
  total: calls.length,
  pages: calls.length / PAGE,
});

// A lease long enough that a Retry-After of a few seconds fits in one wait: the client waits
// at most min(20 s, lease/4) at a time, and hands a longer Retry-After to the engine.
const RA_LEASE_SECONDS = 60;
const WAIT_CAP_MS = Math.min(20_000, (RA_LEASE_SECONDS * 1000) / 4); // 15 s

/** Every release: the lease dropped, no attempt counted, and no claim before not_before. */
function assertReleasedUntil(releases: Release[]) {
  for (const [i, r] of releases.entries()) {
    assert.equal(r.holder, null, `release ${i}: lease dropped`);
    assert.equal(r.failed_attempts, 0, `release ${i}: waiting for Retry-After is no attempt`);
    assert.equal(r.claimable_now, false, `release ${i}: not claimable before not_before`);
    assert.equal(r.claimable_at_not_before, true, `release ${i}: claimable from not_before`);
    assert.equal(r.claimed_early, 0, `release ${i}: a claim 1 ms early takes nothing`);
  }
}

Deno.test("a long 429 storm: a Retry-After that fits is waited out in the invocation, a longer one releases the job until then without counting an attempt, and the job completes exactly", async () => {
  await sourceFaults({
    test: "429 storm: 4 × Retry-After: 2, then 23 × Retry-After: 30",
    calls: 60,
    // Fewer attempts than the storm has invocations: waiting out Retry-After never counts.
    config: { SYNC_LEASE_SECONDS: RA_LEASE_SECONDS, SYNC_MAX_ATTEMPTS: 3 },
    faults: [
      { kind: "pass", times: 2 },
      { kind: "status", status: 429, retryAfter: "2", times: 4 },
      { kind: "pass", times: 2 },
      { kind: "status", status: 429, retryAfter: "30", times: 23 },
    ],
    passRetryAfter: true,
    expect: completes(),
    verify: ({ fake, waits, invocations, releases }) => {
      // 2 s fits: waited exactly, four times, by the first invocation (page 3's 5th request
      // gets through); 30 s does not fit and is never waited in capped steps.
      assert.ok(2_000 < WAIT_CAP_MS && 30_000 > WAIT_CAP_MS);
      assert.deepEqual(waits, [2_000, 2_000, 2_000, 2_000]);
      // The first invocation lands pages 1–4 and is released at page 5's 429; each of the
      // next 22 asks once and is released again; the 24th lands pages 5 and 6.
      assert.equal(invocations, 24);
      assert.equal(releases.length, 23);
      assertReleasedUntil(releases);
      for (const [i, r] of releases.entries()) {
        assert.ok(
          r.left_s > 29 && r.left_s <= 30,
          `release ${i}: not_before ≈ now + 30 s (${r.left_s})`,
        );
        // One request per released invocation: a long Retry-After is not retried in place.
        assert.equal(r.requests, 9 + i, `release ${i}: requests so far`);
      }
      assert.equal(fake.requests.length, 2 + 5 + 1 + 23 + 2);
      assert.equal(fake.requests.filter((r) => r.status === 429).length, 4 + 23);
      // Every released invocation asked for page 5 again from the same cursor.
      const page5 = fake.requests.slice(8).map((r) => r.query.cursor);
      assert.equal(new Set(page5).size, 2, "page 5 from one cursor, then page 6");
    },
  });
});

Deno.test("503s with an HTTP-date Retry-After: a date that fits is waited out in the invocation, a later one releases the job until that date", async () => {
  const soon = new Date(Date.now() + 10_000).toUTCString(); // whole seconds: 9–10 s ahead
  const later = new Date(Date.now() + 90_000).toUTCString();
  await sourceFaults({
    test: "503 burst with HTTP-date Retry-After (10 s, then 90 s)",
    calls: 40,
    config: { SYNC_LEASE_SECONDS: RA_LEASE_SECONDS },
    faults: [
      { kind: "pass" },
      { kind: "status", status: 503, retryAfter: soon, times: 2 },
      { kind: "pass", times: 2 },
      { kind: "status", status: 503, retryAfter: later, times: 4 },
    ],
    passRetryAfter: true,
    expect: completes(),
    verify: ({ fake, waits, invocations, releases }) => {
      assert.equal(waits.length, 2, "the near date waited twice, within the first invocation");
      for (const w of waits) assert.ok(w > 8_000 && w <= 10_000 && w <= WAIT_CAP_MS, `wait ${w}`);
      // The first invocation lands pages 1–3 and is released at page 4's first 503 with the
      // far date; three more are released likewise; the fifth lands page 4.
      assert.equal(invocations, 5);
      assert.equal(releases.length, 4);
      assertReleasedUntil(releases);
      for (const [i, r] of releases.entries()) {
        const at = Date.parse(r.not_before) - Date.parse(later);
        assert.ok(at >= 0 && at < 1_000, `release ${i}: not_before is the date asked (+${at} ms)`);
        assert.equal(r.requests, 6 + i, `release ${i}: requests so far`);
      }
      assert.equal(fake.requests.length, 1 + 2 + 2 + 4 + 1);
    },
  });
});

Deno.test("bursts of 500, 502 and 504 are retried with backoff and the job completes exactly", async () => {
  await sourceFaults({
    test: "5xx bursts (500, 502, 504)",
    calls: 60,
    faults: [
      { kind: "pass" },
      { kind: "status", status: 500, times: 2 },
      { kind: "pass" },
      { kind: "status", status: 502, times: 3 },
      { kind: "pass", times: 2 },
      { kind: "status", status: 504, times: 4 },
    ],
    expect: completes(),
    verify: ({ invocations }) => assert.equal(invocations, 1),
  });
});

Deno.test("dropped connections, before and inside the body, are retried", async () => {
  await sourceFaults({
    test: "connection resets (before and inside the body)",
    calls: 50,
    faults: [
      { kind: "reset", times: 2 },
      { kind: "pass" },
      { kind: "reset", afterBytes: 300, times: 3 },
      { kind: "pass" },
      { kind: "reset", afterBytes: 2000 },
    ],
    expect: completes(),
  });
});

Deno.test("requests that time out are retried", async () => {
  await sourceFaults({
    test: "time-outs (an answer slower than the request time-out)",
    calls: 40,
    faults: [{ kind: "pass" }, { kind: "latency", ms: 600, times: 2 }],
    expect: completes(),
  });
});

Deno.test("truncated and malformed bodies are retried, never imported", async () => {
  await sourceFaults({
    test: "truncated and malformed bodies",
    calls: 60,
    faults: [
      { kind: "truncated", times: 2 },
      { kind: "pass" },
      { kind: "malformed", times: 2 },
      { kind: "pass" },
      {
        kind: "malformed",
        body: '{"results": "nope", "next": null}',
        contentType: "application/json",
      },
      { kind: "malformed", body: '{"results": [], "next": 17}', contentType: "application/json" },
    ],
    expect: completes(),
  });
});

Deno.test("invalid call objects are counted as failed, the rest of their pages imports, and the job completes", async () => {
  await sourceFaults({
    test: "pages with invalid call objects",
    calls: 60,
    faults: [
      { kind: "pass" },
      { kind: "invalidCalls", count: 3 },
      { kind: "pass" },
      { kind: "invalidCalls", count: 4 },
    ],
    expect: (calls) => ({
      ...completes(7)(calls),
      errorMessage: /^7 call\(s\) failed validation and were not imported \(latest: .+\)$/,
    }),
  });
});

Deno.test("call objects with text Postgres cannot store are counted as failed, not a poison pill for their page", async () => {
  // U+0000 and lone surrogates are valid JSON and can pass the call schema, but neither
  // text nor jsonb holds them: one such string fails the page step's statement as a whole,
  // on every retry. Whether the object passes the schema or not, whether the text is a
  // value, a key, or the callId echoed back in the failure, it must end up a `failed` call
  // like any invalid object, and the rest of its page and of the walk must import.
  let poisoned: Set<string> = new Set();
  await sourceFaults({
    test: "call objects holding NUL characters or lone surrogates",
    calls: 40,
    extraFaults: 6,
    config: { SYNC_MAX_ATTEMPTS: 3 },
    prepare: (calls) => {
      // Valid for the schema, unstorable: a value, an unknown field, a metadata key.
      calls[12] = { ...calls[12], summary: "The caller said \u0000 nothing." };
      calls[20] = { ...calls[20], metadata: { "cam\u0000paign": "spring" } };
      calls[27] = { ...calls[27], systemPrompt: "You are a helpful\u0000 assistant." };
      poisoned = new Set([calls[12].callId, calls[20].callId, calls[27].callId]);
      return [
        ...calls,
        // Invalid for the schema, and the failure would echo the text back.
        { callId: "not-a-uuid-\u0000", created: calls[33].created },
        { callId: `${"x".repeat(63)}\u{1F642}`, created: calls[35].created },
        {
          callId: crypto.randomUUID(),
          created: calls[5].created,
          metadata: { "k\u0000": 5 },
        } as unknown as FakeCall,
      ];
    },
    expect: (calls) => ({
      seen: calls.filter((c) => !poisoned.has(c.callId)),
      invalid: 6,
      total: calls.length + 3,
      pages: Math.ceil((calls.length + 3) / PAGE),
      errorMessage: /^6 call\(s\) failed validation and were not imported/,
    }),
  });
});

Deno.test("a key revoked in the middle of a walk fails the job at once with the documented message", async () => {
  await sourceFaults({
    test: "key revoked mid-walk (403)",
    calls: 60,
    extraFaults: 1,
    wrapFetch: (fake) => {
      let n = 0;
      return (input, init) => {
        if (++n === 3) fake.setKey(null);
        return fetch(input, init);
      };
    },
    expect: (calls) => ({
      seen: calls.slice(0, 2 * PAGE),
      status: "failed",
      total: calls.length,
      pages: 2,
      errorMessage: KEY_REJECTED_403,
    }),
    verify: ({ fake, invocations }) => {
      assert.equal(invocations, 1);
      assert.equal(fake.requests.length, 3, "a rejected key is not retried");
      assert.equal(fake.requests[2].status, 403);
    },
  });
});

Deno.test("a source that keeps failing fails the job after SYNC_MAX_ATTEMPTS invocations with the documented message", async () => {
  await sourceFaults({
    test: "persistent 500s, SYNC_MAX_ATTEMPTS = 3",
    calls: 50,
    config: { SYNC_MAX_ATTEMPTS: 3 },
    faults: [{ kind: "pass" }, { kind: "status", status: 500, times: 1000 }],
    expect: (calls) => ({
      seen: calls.slice(0, PAGE),
      status: "failed",
      total: calls.length,
      pages: 1,
      errorMessage: "Ultravox kept failing (HTTP 500) after 5 attempts (gave up after 3 attempts)",
    }),
    verify: ({ fake, invocations }) => {
      // Attempts are counted at claim and reset by a page that lands: the first invocation
      // lands page 1 (its claim's attempt wiped) before page 2 fails; invocations 2–4 are the
      // 3 attempts in a row without a page landing, and record_sync_error gives up at the 3rd.
      assert.equal(invocations, 4);
      assert.equal(fake.requests.length, 1 + 4 * 5, "5 requests per invocation, 4 invocations");
    },
  });
});

for (
  const [status, message] of [
    [
      400,
      'Ultravox rejected the request (HTTP 400): {"detail": "bad"}',
    ],
    [
      401,
      "Ultravox rejected the API key (HTTP 401). Set a valid key for this agency with set_agency_ultravox_api_key.",
    ],
  ] as const
) {
  Deno.test(`an HTTP ${status} mid-walk fails the job at once with the documented message`, async () => {
    await sourceFaults({
      test: `HTTP ${status} mid-walk`,
      calls: 40,
      faults: [{ kind: "pass" }, { kind: "status", status, body: '{"detail": "bad"}' }],
      expect: (calls) => ({
        seen: calls.slice(0, PAGE),
        status: "failed",
        total: calls.length,
        pages: 1,
        errorMessage: message,
      }),
      verify: ({ fake, invocations }) => {
        assert.equal(invocations, 1);
        assert.equal(fake.requests.length, 2);
      },
    });
  });
}

const NO_CALLS_404 =
  "Ultravox has no /calls (HTTP 404). Check ULTRAVOX_API_BASE: it must be the API root, ending with /api.";

Deno.test("an HTTP 404 on the first page (no cursor) fails the job at once with the documented message", async () => {
  await sourceFaults({
    test: "HTTP 404 on the first page",
    calls: 40,
    faults: [{ kind: "status", status: 404, body: '{"detail": "Not found."}' }],
    expect: () => ({
      seen: [],
      status: "failed",
      total: null,
      pages: 0,
      errorMessage: NO_CALLS_404,
    }),
    verify: ({ fake, invocations }) => {
      assert.equal(invocations, 1);
      assert.equal(fake.requests.length, 1, "not retried, not resumed");
      assert.equal(fake.requests[0].query.cursor, undefined);
    },
  });
});

Deno.test("an HTTP 404 on a page with a cursor (a rejected cursor) resumes by time and completes exactly once", async () => {
  let served: FakeCall[] = [];
  await sourceFaults({
    test: "HTTP 404 on a cursor mid-walk: resumed by time",
    calls: 40,
    prepare: (calls) => (served = calls),
    faults: [{ kind: "pass" }, {
      kind: "status",
      status: 404,
      body: '{"detail": "Invalid cursor"}',
    }],
    // Page 1, then the walk again from page 1's oldest call: 9 new calls (that one is not
    // counted twice), 10, 10 and 1.
    expect: (calls) => ({ seen: calls, total: calls.length, pages: 5 }),
    verify: ({ fake, invocations }) => {
      assert.equal(invocations, 1, "a rejected cursor costs one request, not the job");
      assert.equal(fake.requests.length, 1 + 1 + 4);
      const [first, rejected, resumed] = fake.requests;
      assert.equal(first.query.cursor, undefined);
      assert.ok(rejected.query.cursor, "the 404 answered a request with a cursor");
      assert.equal(rejected.status, 404);
      // Resumed without a cursor, up to the oldest call counted (page 1's last), inclusive.
      assert.equal(resumed.query.cursor, undefined);
      assert.equal(resumed.query.toDate, served[PAGE - 1].created);
      assert.equal(resumed.query.toDate === first.query.toDate, false);
      assert.equal(resumed.query.fromDate, first.query.fromDate);
      assert.ok(fake.requests.slice(3).every((r) => r.query.toDate === served[PAGE - 1].created));
    },
  });
});

Deno.test("a long walk under a seeded mix of every transient fault completes exactly", async () => {
  const rand = mulberry32(7);
  const kinds: FaultSpec[] = [
    { kind: "status", status: 429, retryAfter: "2" },
    { kind: "status", status: 503, retryAfter: "1" },
    { kind: "status", status: 500 },
    { kind: "status", status: 502 },
    { kind: "reset" },
    { kind: "reset", afterBytes: 500 },
    { kind: "truncated" },
    { kind: "malformed" },
  ];
  const faults: FaultSpec[] = [];
  for (let i = 0; i < 400; i++) {
    faults.push(rand() < 0.4 ? kinds[Math.floor(rand() * kinds.length)] : { kind: "pass" });
  }
  await sourceFaults({
    test: "seeded mix of transient faults (40% of requests), 30 pages",
    calls: 300,
    faults,
    // With a 1 s lease no Retry-After fits in one wait (250 ms at most): every 429 and 503
    // releases the job until then, and the test's clock passes it instead of real time.
    passRetryAfter: true,
    expect: completes(),
    verify: ({ fake, releases }) => {
      assert.equal(
        releases.length,
        fake.requests.filter((r) => r.status === 429 || r.status === 503).length,
      );
      assertReleasedUntil(releases);
    },
  });
});
