// Case 4 — source faults. The stand-in answers with long 429 storms, 5xx bursts, dropped
// connections, time-outs, cut and mangled bodies, invalid call objects, and a key revoked
// mid-walk. The job either completes with every call once and exact counters, or fails with
// the documented message after its bounded attempts (SYNC_MAX_ATTEMPTS consecutive failed
// invocations) with exactly the pages before the failure imported. `sleep` is injected and
// records each wait, so Retry-After and backoff never wait for real.
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
  /** Extra assertions on what happened. */
  verify?: (ctx: { fake: FakeUltravox; waits: number[]; invocations: number }) => void;
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
    const log = await runUntilDone({
      sql: procSql,
      config,
      fetch: s.wrapFetch?.(fake),
      sleep: (ms) => {
        waits.push(ms);
        return Promise.resolve();
      },
    }, jobId);
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
    s.verify?.({ fake, waits, invocations: log.invocations });
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

Deno.test("a long 429 storm with Retry-After is waited out in capped waits over several invocations, and the job completes exactly", async () => {
  await sourceFaults({
    test: "429 storm: 23 × 429 Retry-After: 30",
    calls: 60,
    faults: [{ kind: "pass", times: 2 }, {
      kind: "status",
      status: 429,
      retryAfter: "30",
      times: 23,
    }],
    expect: completes(),
    verify: ({ waits, invocations }) => {
      assert.equal(invocations, 5, "4 invocations spend their 5 attempts, the 5th gets through");
      // 30 s asked for, capped at a quarter of the lease so the lease never runs out meanwhile.
      assert.ok(waits.length >= 19 && waits.every((w) => w === (LEASE_SECONDS * 1000) / 4));
    },
  });
});

Deno.test("503s with an HTTP-date Retry-After are retried within the invocation", async () => {
  await sourceFaults({
    test: "503 burst with HTTP-date Retry-After",
    calls: 40,
    faults: [
      { kind: "pass" },
      {
        kind: "status",
        status: 503,
        retryAfter: new Date(Date.now() + 90_000).toUTCString(),
        times: 4,
      },
    ],
    expect: completes(),
    verify: ({ invocations }) => assert.equal(invocations, 1),
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
      assert.equal(invocations, 3);
      assert.equal(fake.requests.length, 1 + 3 * 5, "5 attempts per invocation, 3 invocations");
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
    [
      404,
      "Ultravox has no /calls (HTTP 404). Check ULTRAVOX_API_BASE: it must be the API root, ending with /api.",
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
    expect: completes(),
  });
});
