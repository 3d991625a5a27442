// The Ultravox client against the stand-in server: what it asks for, what it retries, how long
// it waits, what it hands back to the engine (a rejected cursor, a Retry-After too long to wait,
// a page too large), and what it gives up on. Waits go through a recording sleep, so nothing
// really waits except the time-out tests (tens of milliseconds).

import assert from "node:assert/strict";
import {
  createUltravoxClient,
  cursorFromNext,
  type ListCallsParams,
  parseRetryAfter,
  type UltravoxClientOptions,
} from "../../supabase/functions/_shared/ultravox/client.ts";
import {
  formatBytes,
  UltravoxError,
  withoutKeyPrefixAtEnd,
} from "../../supabase/functions/_shared/ultravox/errors.ts";
import { startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";

const FIRST_PAGE: ListCallsParams = {
  fromDate: "2026-10-01T00:00:00Z",
  toDate: "2026-11-01T00:00:00Z",
  pageSize: 10,
  cursor: null,
};

const ACCOUNT = generateAccount({ seed: 1, count: 25, days: 20 });

/** Where tests that script their own fetch point the client; nothing is ever sent there. */
const NOWHERE = { baseUrl: "http://ultravox.invalid/api", apiKey: "Ab12Cd34.scripted" };

/** A client for `fake` whose sleeps are recorded in `waits` instead of waited out. */
function clientFor(
  fake: { baseUrl: string; apiKey: string | null },
  extra: Partial<UltravoxClientOptions> = {},
) {
  const waits: number[] = [];
  const client = createUltravoxClient({
    baseUrl: fake.baseUrl,
    apiKey: fake.apiKey!,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    random: () => 0,
    ...extra,
  });
  return { client, waits };
}

/** A fetch that answers with `bodies` in turn, for shapes the stand-in never sends. */
function scripted(...bodies: string[]): typeof fetch {
  return () => Promise.resolve(new Response(bodies.shift(), { status: 200 }));
}

async function rejection(promise: Promise<unknown>): Promise<UltravoxError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof UltravoxError, `expected an UltravoxError, got ${err}`);
    return err;
  }
  assert.fail("expected the promise to reject");
}

// ---- what it asks for ---------------------------------------------------------------------

Deno.test("the first page asks for fromDate, toDate, sort=-created and pageSize, with the key", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client } = clientFor(fake);
  await client.listCalls(FIRST_PAGE);
  assert.equal(fake.requests.length, 1);
  assert.equal(fake.requests[0].path, "/api/calls");
  assert.deepEqual(fake.requests[0].query, {
    fromDate: "2026-10-01T00:00:00Z",
    toDate: "2026-11-01T00:00:00Z",
    sort: "-created",
    pageSize: "10",
  });
  assert.equal(fake.requests[0].keyOk, true);
});

Deno.test("a null fromDate is left out of the query", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client } = clientFor(fake);
  await client.listCalls({ ...FIRST_PAGE, fromDate: null });
  assert.deepEqual(fake.requests[0].query, {
    toDate: "2026-11-01T00:00:00Z",
    sort: "-created",
    pageSize: "10",
  });
});

Deno.test("a trailing slash on the base URL is tolerated", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client } = clientFor(fake, { baseUrl: fake.baseUrl + "/" });
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(fake.requests[0].path, "/api/calls");
  assert.equal(page.results.length, 10);
});

Deno.test("later pages resend the same parameters plus the cursor, never the next URL itself", async () => {
  // next points at a host that does not exist: a client following it would never reach the fake.
  await using fake = await startFakeUltravox({
    calls: ACCOUNT,
    linkBase: "http://elsewhere.invalid/api",
  });
  const { client } = clientFor(fake);
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await client.listCalls({ ...FIRST_PAGE, fromDate: null, cursor });
    ids.push(...page.results.map((c) => (c as { callId: string }).callId));
    cursor = page.nextCursor;
  } while (cursor !== null);

  assert.deepEqual(ids, ACCOUNT.map((c) => c.callId));
  assert.equal(fake.requests.length, 3);
  const [first, second, third] = fake.requests.map((r) => r.query);
  assert.deepEqual(first, { toDate: "2026-11-01T00:00:00Z", sort: "-created", pageSize: "10" });
  assert.deepEqual(Object.keys(second).sort(), ["cursor", "pageSize", "sort", "toDate"]);
  assert.deepEqual({ ...second, cursor: undefined }, { ...first, cursor: undefined });
  assert.deepEqual({ ...third, cursor: undefined }, { ...first, cursor: undefined });
  assert.notEqual(second.cursor, third.cursor);
  assert.ok(fake.requests.every((r) => r.keyOk && r.path === "/api/calls"));
});

Deno.test("the last page has a null nextCursor", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT.slice(0, 3) });
  const { client } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.results.length, 3);
  assert.equal(page.nextCursor, null);
  assert.equal(page.requests, 1);
});

Deno.test('next "" ends the walk like null', async () => {
  const { client } = clientFor(NOWHERE, {
    fetch: scripted(JSON.stringify({ next: "", previous: null, results: [{}] })),
  });
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.nextCursor, null);
  assert.equal(page.results.length, 1);
});

Deno.test("total is reported when present and null when absent", async () => {
  await using withTotal = await startFakeUltravox({ calls: ACCOUNT });
  assert.equal((await clientFor(withTotal).client.listCalls(FIRST_PAGE)).total, 25);
  await using withoutTotal = await startFakeUltravox({ calls: ACCOUNT, includeTotal: false });
  assert.equal((await clientFor(withoutTotal).client.listCalls(FIRST_PAGE)).total, null);
});

Deno.test("a total that is not a non-negative integer is reported as null", async () => {
  for (const total of [-1, 2.5, "57", null, 2_147_483_648, 2 ** 53, 1e20]) {
    const { client } = clientFor(NOWHERE, {
      fetch: scripted(JSON.stringify({ next: null, total, results: [] })),
    });
    assert.equal((await client.listCalls(FIRST_PAGE)).total, null, `total ${total}`);
  }
});

Deno.test("a total up to the Postgres integer maximum is kept", async () => {
  const { client } = clientFor(NOWHERE, {
    fetch: scripted(JSON.stringify({ next: null, total: 2_147_483_647, results: [] })),
  });
  assert.equal((await client.listCalls(FIRST_PAGE)).total, 2_147_483_647);
});

Deno.test("a pageSize that is not a positive integer is refused before any request", async () => {
  await using fake = await startFakeUltravox();
  const { client } = clientFor(fake);
  await assert.rejects(client.listCalls({ ...FIRST_PAGE, pageSize: 0 }), RangeError);
  assert.equal(fake.requests.length, 0);
});

// ---- Retry-After --------------------------------------------------------------------------

Deno.test("a 429 with Retry-After: 2 waits exactly 2000 ms, then gets the page", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429, retryAfter: "2" });
  const { client, waits } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [2000]);
  assert.equal(page.requests, 2);
  assert.equal(page.results.length, 10);
});

Deno.test("a 429 with an HTTP-date Retry-After waits until that date", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429, retryAfter: "Sun, 01 Nov 2026 00:00:03 GMT" });
  const { client, waits } = clientFor(fake, { now: () => Date.parse("2026-11-01T00:00:00Z") });
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [3000]);
});

Deno.test("an HTTP-date Retry-After already past waits 0 ms", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429, retryAfter: "Sat, 31 Oct 2026 23:59:00 GMT" });
  const { client, waits } = clientFor(fake, { now: () => Date.parse("2026-11-01T00:00:00Z") });
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [0]);
});

Deno.test("a 503 with Retry-After: 1 waits exactly 1000 ms", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 503, retryAfter: "1" });
  const { client, waits } = clientFor(fake);
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [1000]);
});

Deno.test("a Retry-After longer than maxDelayMs is not waited nor retried: rate_limited with what was asked", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429, retryAfter: "120", times: 2 });
  const { client, waits } = clientFor(fake, { maxDelayMs: 20_000 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.retryAfterMs, 120_000);
  assert.equal(err.status, 429);
  assert.equal(err.attempts, 1);
  assert.equal(err.bodyExcerpt, '{"detail":"Request was throttled."}');
  assert.equal(
    err.message,
    "Ultravox is rate limiting this API key (HTTP 429) and asked to wait 2 min (Retry-After); " +
      "the import continues after that.",
  );
  assert.deepEqual(waits, []);
  assert.equal(fake.requests.length, 1);
});

Deno.test("a Retry-After of exactly maxDelayMs is waited out", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429, retryAfter: "20" });
  const { client, waits } = clientFor(fake, { maxDelayMs: 20_000 });
  const page = await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [20_000]);
  assert.equal(page.requests, 2);
});

Deno.test("a 503 with a long HTTP-date Retry-After is rate_limited too, in ms from now", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 503, retryAfter: "Sun, 01 Nov 2026 00:01:30 GMT" });
  const { client, waits } = clientFor(fake, { now: () => Date.parse("2026-11-01T00:00:00Z") });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.retryAfterMs, 90_000);
  assert.equal(err.status, 503);
  assert.match(err.message, /^Ultravox is unavailable \(HTTP 503\) and asked to wait 90 s/);
  assert.deepEqual(waits, []);
});

Deno.test("a rate limit after waits that fitted reports how many requests the page took", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push(
    { kind: "status", status: 429, retryAfter: "2" },
    { kind: "status", status: 429, retryAfter: "600" },
  );
  const { client, waits } = clientFor(fake);
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.retryAfterMs, 600_000);
  assert.equal(err.attempts, 2);
  assert.deepEqual(waits, [2000]);
});

Deno.test("a 429 without Retry-After backs off like a 5xx", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 429 });
  const { client, waits } = clientFor(fake, { random: () => 0.5 });
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [375]); // 250 + 0.5 × 250
});

// ---- backoff ------------------------------------------------------------------------------

Deno.test("a burst of 500/502/503 backs off exponentially from the lower jitter bound", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push(
    { kind: "status", status: 500 },
    { kind: "status", status: 502 },
    { kind: "status", status: 503 },
    { kind: "status", status: 500 },
  );
  const { client, waits } = clientFor(fake, { random: () => 0 });
  const page = await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [250, 500, 1000, 2000]);
  assert.equal(page.requests, 5);
});

Deno.test("the same burst with the jitter at its top stays just under each step", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 500, times: 4 });
  const { client, waits } = clientFor(fake, { random: () => 0.999999 });
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [499, 999, 1999, 3999]);
});

Deno.test("backoff steps stop growing at maxDelayMs", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 500, times: 4 });
  const { client, waits } = clientFor(fake, { random: () => 0, maxDelayMs: 1500 });
  await client.listCalls(FIRST_PAGE);
  assert.deepEqual(waits, [250, 500, 750, 750]);
});

Deno.test("five 503s in a row give up with a transient error after exactly 5 requests", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 503, times: 5 });
  const { client, waits } = clientFor(fake);
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.equal(err.status, 503);
  assert.equal(err.attempts, 5);
  assert.equal(err.message, "Ultravox kept failing (HTTP 503) after 5 attempts");
  assert.equal(fake.requests.length, 5);
  assert.equal(waits.length, 4);
});

Deno.test("the transient error keeps the last Retry-After and a short body excerpt", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  // Short waits that fit, but the attempts run out: an ordinary transient error.
  fake.faults.push({ kind: "status", status: 429, retryAfter: "1", times: 3 });
  const { client } = clientFor(fake, { maxAttempts: 3, maxDelayMs: 1000 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.equal(err.retryAfterMs, 1000);
  assert.equal(err.bodyExcerpt, '{"detail":"Request was throttled."}');
  assert.equal(fake.requests.length, 3);
});

// ---- broken connections and bodies ----------------------------------------------------------

Deno.test("a connection dropped before the body is retried", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "reset" });
  const { client, waits } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.requests, 2);
  assert.equal(page.results.length, 10);
  assert.deepEqual(waits, [250]);
});

Deno.test("a connection dropped halfway through the body is retried", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "reset", afterBytes: 100 });
  const { client } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.requests, 2);
});

Deno.test("connections that keep dropping give up naming a network error", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "reset", times: 2 });
  const { client } = clientFor(fake, { maxAttempts: 2 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.match(err.message, /^Ultravox kept failing \(network error: .+\) after 2 attempts$/);
  assert.equal(err.status, 200); // the headers had arrived
  assert.equal(fake.requests.length, 2);
});

Deno.test("a refused connection is a network error, retried up to maxAttempts", async () => {
  const fake = await startFakeUltravox();
  await fake.close(); // nobody listens on that port any more
  let requests = 0;
  const { client, waits } = clientFor(fake, {
    maxAttempts: 3,
    fetch: (input, init) => {
      requests++;
      return fetch(input, init);
    },
  });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.equal(err.status, null);
  assert.match(err.message, /^Ultravox kept failing \(network error: .+\) after 3 attempts$/);
  assert.equal(requests, 3);
  assert.deepEqual(waits, [250, 500]);
});

Deno.test("a request slower than timeoutMs is abandoned and retried", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "latency", ms: 5_000 });
  const { client, waits } = clientFor(fake, { timeoutMs: 50 });
  const started = performance.now();
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.requests, 2);
  assert.deepEqual(waits, [250]);
  assert.ok(performance.now() - started < 2_000, "did not wait for the slow answer");
});

Deno.test("requests that keep timing out give up naming the time-out", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "latency", ms: 5_000, times: 2 });
  const { client } = clientFor(fake, { timeoutMs: 30, maxAttempts: 2 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.message, "Ultravox kept failing (timed out after 30 ms) after 2 attempts");
  assert.equal(err.status, null);
  assert.equal(fake.requests.length, 2);
});

Deno.test("a body cut in half is retried", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "truncated" });
  const { client } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.requests, 2);
  assert.equal(page.results.length, 10);
});

Deno.test("bodies that keep arriving cut in half give up naming invalid JSON", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "truncated", times: 2 });
  const { client } = clientFor(fake, { maxAttempts: 2 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.message, "Ultravox kept failing (invalid JSON body) after 2 attempts");
  assert.equal(err.status, 200);
});

Deno.test("an HTML page with status 200 is retried", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "malformed" });
  const { client } = clientFor(fake);
  const page = await client.listCalls(FIRST_PAGE);
  assert.equal(page.requests, 2);
});

Deno.test("JSON that is not a calls page is retried", async () => {
  for (
    const body of [
      '{"detail": "ok"}',
      '{"results": null, "next": null}',
      "[]",
      '{"results": [], "next": 5}',
      '{"results": [], "next": "https://api.ultravox.ai/api/calls?pageSize=10"}',
    ]
  ) {
    await using fake = await startFakeUltravox({ calls: ACCOUNT });
    fake.faults.push({ kind: "malformed", body, contentType: "application/json" });
    const { client } = clientFor(fake);
    const page = await client.listCalls(FIRST_PAGE);
    assert.equal(page.requests, 2, body);
  }
});

// ---- permanent errors -----------------------------------------------------------------------

Deno.test("a revoked key (403) fails at once, after exactly 1 request", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client, waits } = clientFor(fake);
  fake.setKey("Qq1Ww2Ee.rotated-key-the-client-does-not-know");
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "permanent");
  assert.equal(err.status, 403);
  assert.equal(
    err.message,
    "Ultravox rejected the API key (HTTP 403). " +
      "Set a valid key for this agency with set_agency_ultravox_api_key.",
  );
  assert.equal(fake.requests.length, 1);
  assert.deepEqual(waits, []);
});

Deno.test("a 401 fails at once, after exactly 1 request", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 401, body: '{"detail": "Invalid token."}' });
  const { client } = clientFor(fake);
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "permanent");
  assert.equal(
    err.message,
    "Ultravox rejected the API key (HTTP 401). " +
      "Set a valid key for this agency with set_agency_ultravox_api_key.",
  );
  assert.equal(fake.requests.length, 1);
});

Deno.test("a 400 fails at once and quotes the body", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 400, body: '{"detail":"Invalid cursor"}' });
  const { client } = clientFor(fake);
  const err = await rejection(client.listCalls({ ...FIRST_PAGE, cursor: "not-a-cursor" }));
  assert.equal(err.kind, "permanent");
  assert.equal(err.status, 400);
  assert.equal(
    err.message,
    'Ultravox rejected the request (HTTP 400): {"detail":"Invalid cursor"}',
  );
  assert.equal(fake.requests.length, 1);
});

Deno.test("a 404 fails at once and points at ULTRAVOX_API_BASE", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client } = clientFor(fake, { baseUrl: fake.baseUrl.replace(/\/api$/, "") });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "permanent");
  assert.equal(err.status, 404);
  assert.equal(
    err.message,
    "Ultravox has no /calls (HTTP 404). " +
      "Check ULTRAVOX_API_BASE: it must be the API root, ending with /api.",
  );
  assert.equal(fake.requests.length, 1);
});

Deno.test("a 404 on a request with a cursor is cursor_rejected, after exactly 1 request", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 404, body: '{"detail":"Invalid cursor"}' });
  const { client, waits } = clientFor(fake);
  const err = await rejection(client.listCalls({ ...FIRST_PAGE, cursor: "cD0yMDI2" }));
  assert.equal(err.kind, "cursor_rejected");
  assert.equal(err.status, 404);
  assert.equal(err.attempts, 1);
  assert.equal(err.bodyExcerpt, '{"detail":"Invalid cursor"}');
  assert.equal(
    err.message,
    'Ultravox no longer accepts the saved page cursor (HTTP 404: {"detail":"Invalid cursor"}); ' +
      "the import continues from the oldest call it has counted.",
  );
  assert.equal(fake.requests.length, 1);
  assert.deepEqual(waits, []);
});

Deno.test("the stand-in's own answer to a cursor it cannot decode is cursor_rejected", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client } = clientFor(fake);
  const err = await rejection(client.listCalls({ ...FIRST_PAGE, cursor: "not-a-cursor" }));
  assert.equal(err.kind, "cursor_rejected");
  assert.equal(err.status, 404);
});

Deno.test("the same 404 without a cursor stays permanent", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 404, body: '{"detail":"Invalid cursor"}' });
  const err = await rejection(clientFor(fake).client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "permanent");
  assert.match(err.message, /^Ultravox has no \/calls \(HTTP 404\)/);
});

Deno.test("other 4xx fail at once too", async () => {
  for (const status of [405, 409, 422]) {
    await using fake = await startFakeUltravox({ calls: ACCOUNT });
    fake.faults.push({ kind: "status", status, body: "nope" });
    const err = await rejection(clientFor(fake).client.listCalls(FIRST_PAGE));
    assert.equal(err.kind, "permanent");
    assert.equal(err.message, `Ultravox refused the request (HTTP ${status}): nope`);
    assert.equal(fake.requests.length, 1);
  }
});

Deno.test("a redirect is not followed: the key stays with the base URL", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const elsewhere = `${fake.baseUrl.replace(/\/api$/, "")}/collect-keys`;
  fake.faults.push({ kind: "status", status: 302, body: "", headers: { Location: elsewhere } });
  const err = await rejection(clientFor(fake).client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "permanent");
  assert.equal(err.status, 302);
  assert.deepEqual(fake.requests.map((r) => r.path), ["/api/calls"]);
});

// ---- the key never leaks --------------------------------------------------------------------

Deno.test("the key never appears in a message, excerpt or stack, even when Ultravox echoes it", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const key = fake.apiKey!;
  const echo = `{"detail": "key ${key} is not allowed", "key": "${key}"}`;
  fake.faults.push(
    { kind: "status", status: 400, body: echo },
    { kind: "status", status: 503, body: echo, times: 2 },
    { kind: "status", status: 403, body: echo },
  );
  const { client } = clientFor(fake, { maxAttempts: 2 });
  const errors = [
    await rejection(client.listCalls(FIRST_PAGE)),
    await rejection(client.listCalls(FIRST_PAGE)),
    await rejection(client.listCalls(FIRST_PAGE)),
  ];
  assert.deepEqual(errors.map((e) => e.status), [400, 503, 403]);
  for (const err of errors) {
    const seen = [err.message, err.bodyExcerpt, err.stack ?? "", String(err), JSON.stringify(err)];
    for (const text of seen) assert.ok(!text.includes(key), `key leaked into: ${text}`);
    assert.ok(!err.bodyExcerpt.includes(key.slice(0, 12)), "not even its start");
  }
  assert.equal(
    errors[0].message,
    'Ultravox rejected the request (HTTP 400): {"detail": "key [redacted] is not allowed", ' +
      '"key": "[redacted]"}',
  );
});

Deno.test("a long error body is cut to 200 characters", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  fake.faults.push({ kind: "status", status: 400, body: "x".repeat(5_000) });
  const err = await rejection(clientFor(fake).client.listCalls(FIRST_PAGE));
  assert.equal(err.bodyExcerpt.length, 200);
});

// ---- small pure parts -----------------------------------------------------------------------

Deno.test("cursorFromNext takes the cursor out of an absolute next URL", () => {
  assert.equal(
    cursorFromNext("https://api.ultravox.ai/api/calls?cursor=cD0yMDI1%3D&pageSize=2&sort=-created"),
    "cD0yMDI1=",
  );
});

Deno.test('cursorFromNext reads null, undefined and "" as the end of the walk', () => {
  assert.equal(cursorFromNext(null), null);
  assert.equal(cursorFromNext(undefined), null);
  assert.equal(cursorFromNext(""), null);
});

Deno.test("cursorFromNext refuses a next without a cursor rather than restart the walk", () => {
  assert.throws(() => cursorFromNext("https://api.ultravox.ai/api/calls?pageSize=2"), TypeError);
  assert.throws(() => cursorFromNext("https://api.ultravox.ai/api/calls?cursor="), TypeError);
  assert.throws(() => cursorFromNext(42), TypeError);
});

Deno.test("parseRetryAfter gives null for a number of seconds no wait could honour", () => {
  const now = Date.parse("2026-11-01T00:00:00Z");
  assert.equal(parseRetryAfter("9".repeat(400), now), null);
  assert.equal(parseRetryAfter("9007199254740993", now), null);
  assert.equal(parseRetryAfter("86400", now), 86_400_000);
});

Deno.test("parseRetryAfter reads seconds and HTTP-dates and nothing else", () => {
  const now = Date.parse("2026-11-01T00:00:00Z");
  assert.equal(parseRetryAfter("2", now), 2000);
  assert.equal(parseRetryAfter(" 0 ", now), 0);
  assert.equal(parseRetryAfter("Sun, 01 Nov 2026 00:00:09 GMT", now), 9000);
  assert.equal(parseRetryAfter("Sun, 01 Nov 2026 00:00:00 GMT", now), 0);
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter("1.5", now), null);
  assert.equal(parseRetryAfter("-3", now), null);
  assert.equal(parseRetryAfter("soon", now), null);
});

Deno.test("a next that repeats the cursor just sent is retried, then fails transiently", async () => {
  const looping = JSON.stringify({
    next: "https://api.ultravox.ai/api/calls?cursor=c2&pageSize=2",
    results: [],
  });
  const { client, waits } = clientFor(NOWHERE, {
    fetch: scripted(looping, looping, looping),
    maxAttempts: 3,
  });
  const err = await rejection(client.listCalls({ ...FIRST_PAGE, cursor: "c2" }));
  assert.equal(err.kind, "transient");
  assert.equal(err.attempts, 3);
  assert.match(err.message, /next repeats the cursor sent/);
  assert.equal(waits.length, 2);
  // The same next after a different cursor is an ordinary page.
  const ok = clientFor(NOWHERE, { fetch: scripted(looping) });
  assert.equal((await ok.client.listCalls({ ...FIRST_PAGE, cursor: "c1" })).nextCursor, "c2");
});

Deno.test("no Retry-After is waited for past the deadline: rate_limited instead", async () => {
  let clock = 1_000_000;
  const busy = () =>
    Promise.resolve(new Response("busy", { status: 503, headers: { "Retry-After": "5" } }));
  const { client } = clientFor(NOWHERE, {
    fetch: busy,
    maxAttempts: 10,
    now: () => clock,
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    deadline: 1_000_000 + 12_000,
  });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "rate_limited");
  assert.equal(err.retryAfterMs, 5_000);
  // Waits of 5 s at 0 s and 5 s; a third would end at 15 s, past the 12 s deadline.
  assert.equal(err.attempts, 3);
  assert.equal(clock, 1_010_000);
});

Deno.test("no backoff is waited for past the deadline: the page fails transiently instead", async () => {
  let clock = 1_000_000;
  const busy = () => Promise.resolve(new Response("busy", { status: 502 }));
  const { client, waits } = clientFor(NOWHERE, {
    fetch: busy,
    maxAttempts: 10,
    now: () => clock,
    sleep: (ms) => {
      clock += ms;
      return Promise.resolve();
    },
    random: () => 0,
    deadline: 1_000_000 + 1_000,
  });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.equal(err.retryAfterMs, null);
  // 250 and 500 fit in the second; 1000 more would not.
  assert.equal(err.attempts, 3);
  assert.equal(clock, 1_000_750);
  assert.equal(waits.length, 0); // this sleep replaced the recording one
});

// ---- the page size limit --------------------------------------------------------------------

/**
 * A fetch whose 200 body is `chunks` chunks of `chunkBytes` bytes (endless when chunks is
 * Infinity), counting what the client pulled and whether it cancelled the rest.
 */
function streaming(
  opts: { chunkBytes: number; chunks: number; contentLength?: number; status?: number },
) {
  const seen = { pulled: 0, cancelled: false };
  const fetchStub: typeof fetch = () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= opts.chunks) return controller.close();
        sent++;
        seen.pulled += opts.chunkBytes;
        controller.enqueue(new Uint8Array(opts.chunkBytes).fill(0x20)); // spaces
      },
      cancel() {
        seen.cancelled = true;
      },
    }, { highWaterMark: 0 });
    const headers: Record<string, string> = {};
    if (opts.contentLength !== undefined) headers["content-length"] = String(opts.contentLength);
    return Promise.resolve(new Response(body, { status: opts.status ?? 200, headers }));
  };
  return { fetchStub, seen };
}

Deno.test("a page over maxPageBytes fails transiently after 1 request, naming the setting", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const { client, waits } = clientFor(fake, { maxPageBytes: 4096 });
  const err = await rejection(client.listCalls(FIRST_PAGE)); // ten calls: about 10 kB
  assert.equal(err.kind, "transient");
  assert.equal(err.status, 200);
  assert.equal(err.attempts, 1);
  assert.equal(
    err.message,
    "Ultravox sent a page over 4 KiB (SYNC_MAX_PAGE_BYTES); lower SYNC_PAGE_SIZE or raise the limit",
  );
  assert.equal(fake.requests.length, 1, "the same page would come back as large: no retry");
  assert.deepEqual(waits, []);
});

Deno.test("the default limit is 16 MiB and says so", async () => {
  const { fetchStub, seen } = streaming({ chunkBytes: 1024 * 1024, chunks: Infinity });
  const { client } = clientFor(NOWHERE, { fetch: fetchStub });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(
    err.message,
    "Ultravox sent a page over 16 MiB (SYNC_MAX_PAGE_BYTES); lower SYNC_PAGE_SIZE or raise the limit",
  );
  assert.ok(seen.cancelled);
  assert.ok(seen.pulled <= 17 * 1024 * 1024, `read ${seen.pulled} bytes`);
});

Deno.test("an endless body is read only up to the limit, then cancelled", async () => {
  const { fetchStub, seen } = streaming({ chunkBytes: 1000, chunks: Infinity });
  const { client } = clientFor(NOWHERE, { fetch: fetchStub, maxPageBytes: 10_000 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.ok(seen.cancelled, "the rest of the body was cancelled");
  assert.ok(seen.pulled <= 11_000, `pulled ${seen.pulled} bytes for a 10,000-byte limit`);
});

Deno.test("a Content-Length over the limit is refused before reading the body", async () => {
  const { fetchStub, seen } = streaming({ chunkBytes: 1000, chunks: 20, contentLength: 20_000 });
  const { client } = clientFor(NOWHERE, { fetch: fetchStub, maxPageBytes: 10_000 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.match(err.message, /^Ultravox sent a page over 10000 bytes/);
  assert.ok(seen.cancelled);
  assert.equal(seen.pulled, 0);
});

Deno.test("a page of exactly maxPageBytes is read", async () => {
  const body = JSON.stringify({ next: null, results: [] });
  const padded = body + " ".repeat(100 - body.length);
  const { client } = clientFor(NOWHERE, { fetch: scripted(padded), maxPageBytes: 100 });
  assert.deepEqual((await client.listCalls(FIRST_PAGE)).results, []);
  const over = clientFor(NOWHERE, { fetch: scripted(padded + " "), maxPageBytes: 100 });
  assert.equal((await rejection(over.client.listCalls(FIRST_PAGE))).kind, "transient");
});

Deno.test("a page in many small chunks is put back together byte for byte", async () => {
  const text = JSON.stringify({ next: null, total: 3, results: [{ summary: "é😀 日本" }] });
  const bytes = new TextEncoder().encode(text);
  const chunked: typeof fetch = () =>
    Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (const b of bytes) controller.enqueue(Uint8Array.of(b)); // splits every character
            controller.close();
          },
        }),
      ),
    );
  const page = await clientFor(NOWHERE, { fetch: chunked }).client.listCalls(FIRST_PAGE);
  assert.deepEqual(page.results, [{ summary: "é😀 日本" }]);
});

Deno.test("an error body is read up to 64 KiB only, and still gives its excerpt", async () => {
  const { fetchStub, seen } = streaming({ chunkBytes: 4096, chunks: Infinity, status: 503 });
  const { client } = clientFor(NOWHERE, { fetch: fetchStub, maxAttempts: 1 });
  const err = await rejection(client.listCalls(FIRST_PAGE));
  assert.equal(err.kind, "transient");
  assert.equal(err.status, 503);
  assert.ok(seen.cancelled);
  assert.ok(seen.pulled <= 64 * 1024 + 4096, `pulled ${seen.pulled}`);
});

Deno.test("an error body cut in the middle of an echoed key shows no part of it", async () => {
  const key = NOWHERE.apiKey;
  const body = " ".repeat(64 * 1024 - 6) + key; // the cut leaves the key's first 6 characters
  const fetchStub: typeof fetch = () => Promise.resolve(new Response(body, { status: 400 }));
  const err = await rejection(
    clientFor(NOWHERE, { fetch: fetchStub }).client.listCalls(FIRST_PAGE),
  );
  assert.equal(err.kind, "permanent");
  assert.ok(!err.bodyExcerpt.includes(key.slice(0, 3)), err.bodyExcerpt);
  assert.ok(!err.message.includes(key.slice(0, 3)), err.message);
});

Deno.test("withoutKeyPrefixAtEnd drops a tail that starts the key, and nothing else", () => {
  assert.equal(withoutKeyPrefixAtEnd("detail: Ab12C", "Ab12Cd34.k"), "detail: ");
  assert.equal(withoutKeyPrefixAtEnd("detail: x", "Ab12Cd34.k"), "detail: x");
  assert.equal(withoutKeyPrefixAtEnd("", "Ab12Cd34.k"), "");
});

Deno.test("formatBytes names the limit the way it is usually set", () => {
  assert.equal(formatBytes(16_777_216), "16 MiB");
  assert.equal(formatBytes(4096), "4 KiB");
  assert.equal(formatBytes(10_000), "10000 bytes");
});

Deno.test("the key never appears in a rate_limited or cursor_rejected error", async () => {
  await using fake = await startFakeUltravox({ calls: ACCOUNT });
  const key = fake.apiKey!;
  const echo = `{"detail": "key ${key} is throttled"}`;
  fake.faults.push(
    { kind: "status", status: 429, retryAfter: "3600", body: echo },
    { kind: "status", status: 404, body: echo },
  );
  const { client } = clientFor(fake);
  const errors = [
    await rejection(client.listCalls(FIRST_PAGE)),
    await rejection(client.listCalls({ ...FIRST_PAGE, cursor: "cD0x" })),
  ];
  assert.deepEqual(errors.map((e) => e.kind), ["rate_limited", "cursor_rejected"]);
  for (const err of errors) {
    const seen = [err.message, err.bodyExcerpt, err.stack ?? "", String(err), JSON.stringify(err)];
    for (const text of seen) assert.ok(!text.includes(key), `key leaked into: ${text}`);
  }
  assert.match(errors[0].message, /asked to wait 1 h/);
});
