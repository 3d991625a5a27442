// The stand-in Ultravox server behaves like ULTRAVOX.md says the real one does (order, cursors,
// inclusive bounds at the microsecond, auth, errors), its faults do what they say, the account
// generator is realistic and deterministic, and the client walks 10,000 calls through random
// 429s and 5xx without losing or repeating one.

import assert from "node:assert/strict";
import { createUltravoxClient } from "../../supabase/functions/_shared/ultravox/client.ts";
import { END_REASONS, parseCall } from "../../supabase/functions/_shared/ultravox/call.ts";
import {
  type FakeCall,
  type FakeUltravox,
  type FaultSpec,
  INVALID_CALL_DEFECTS,
  microsOf,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { generateAccount, mulberry32 } from "../../tools/stand_in_ultravox/accounts.ts";

interface Page {
  next: string | null;
  previous: string | null;
  total?: number;
  results: FakeCall[];
}

/** GET `path` on the stand-in with the right key, unless `key` says otherwise. */
async function get(
  fake: FakeUltravox,
  query: string,
  key: string | null = fake.apiKey,
  path = "/calls",
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = key === null ? {} : { "X-API-Key": key };
  const res = await fetch(`${fake.baseUrl}${path}?${query}`, { headers });
  return { status: res.status, body: await res.json() };
}

async function page(fake: FakeUltravox, query: string): Promise<Page> {
  const { status, body } = await get(fake, query);
  assert.equal(status, 200, JSON.stringify(body));
  return body as Page;
}

/** Follows `next` links as given (test side only: the client never does) and lists callIds. */
async function walkIds(fake: FakeUltravox, query: string): Promise<string[]> {
  const ids: string[] = [];
  let p = await page(fake, query);
  ids.push(...p.results.map((c) => c.callId));
  while (p.next !== null) {
    p = await page(fake, new URL(p.next).search.slice(1));
    ids.push(...p.results.map((c) => c.callId));
  }
  return ids;
}

function call(callId: string, created: string): FakeCall {
  return { callId, created, joined: null, ended: null, endReason: null, metadata: {} };
}

const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

// ---- order and paging -----------------------------------------------------------------------

Deno.test("calls come newest first, ties on created broken by callId descending", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2026-10-01T10:00:00.000001Z"),
      call(ID(2), "2026-10-01T10:00:00.000002Z"),
      call(ID(3), "2026-10-01T10:00:00.000001Z"),
      call(ID(4), "2026-10-01T12:00:00.000001+02:00"), // the same instant as 1 and 3
    ],
  });
  const p = await page(fake, "sort=-created");
  assert.deepEqual(p.results.map((c) => c.callId), [ID(2), ID(4), ID(3), ID(1)]);
});

Deno.test("sort=created lists oldest first, ties ascending", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2026-10-01T10:00:00.000001Z"),
      call(ID(2), "2026-10-01T10:00:00.000002Z"),
      call(ID(3), "2026-10-01T10:00:00.000001Z"),
    ],
  });
  assert.deepEqual(await walkIds(fake, "sort=created&pageSize=1"), [ID(1), ID(3), ID(2)]);
});

Deno.test("a walk in pages of 7 meets every call once, in order, ties included", async () => {
  const calls = generateAccount({ seed: 3, count: 300 });
  await using fake = await startFakeUltravox({ calls });
  assert.ok(calls.some((c, i) => i > 0 && c.created === calls[i - 1].created), "has ties");
  assert.deepEqual(await walkIds(fake, "pageSize=7"), fake.calls.map((c) => c.callId));
  assert.deepEqual(fake.calls.map((c) => c.callId), calls.map((c) => c.callId));
});

Deno.test("next and previous are absolute URLs that keep every other parameter", async () => {
  await using fake = await startFakeUltravox({ calls: generateAccount({ seed: 4, count: 30 }) });
  const query = "fromDate=2026-08-01&toDate=2026-11-01&sort=-created&pageSize=10&agentIds=x";
  const first = await page(fake, query);
  assert.equal(first.previous, null);
  const next = new URL(first.next!);
  assert.equal(`${next.origin}/api`, fake.baseUrl);
  assert.equal(next.pathname, "/api/calls");
  const kept = Object.fromEntries([...next.searchParams].filter(([k]) => k !== "cursor"));
  assert.deepEqual(kept, Object.fromEntries(new URLSearchParams(query)));
  assert.notEqual(next.searchParams.get("cursor"), null);

  const second = await page(fake, next.search.slice(1));
  const back = await page(fake, new URL(second.previous!).search.slice(1));
  assert.deepEqual(back.results.map((c) => c.callId), first.results.map((c) => c.callId));
});

Deno.test("the cursor is opaque base64 of a position, as DRF's CursorPagination writes it", async () => {
  await using fake = await startFakeUltravox({ calls: generateAccount({ seed: 4, count: 3 }) });
  const first = await page(fake, "pageSize=1");
  const cursor = new URL(first.next!).searchParams.get("cursor")!;
  const position = new URLSearchParams(atob(cursor));
  assert.equal(position.get("p"), first.results[0].created);
  assert.equal(position.get("k"), first.results[0].callId);
});

Deno.test("pageSize defaults to 20 and is capped at maxPageSize", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 6, count: 130 }),
    maxPageSize: 100,
  });
  assert.equal((await page(fake, "")).results.length, 20);
  assert.equal((await page(fake, "pageSize=500")).results.length, 100);
  assert.equal((await page(fake, "pageSize=100")).results.length, 100);
  assert.equal((await page(fake, "pageSize=99")).results.length, 99);
});

Deno.test("total counts the calls the filters let through", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2026-10-01T00:00:00Z"),
      call(ID(2), "2026-10-02T00:00:00Z"),
      call(ID(3), "2026-10-03T00:00:00Z"),
    ],
  });
  assert.equal((await page(fake, "pageSize=1")).total, 3);
  assert.equal((await page(fake, "pageSize=1&fromDate=2026-10-02")).total, 2);
});

Deno.test("total is left out when includeTotal is false", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  await using quiet = await startFakeUltravox({
    calls: [call(ID(1), "2026-10-01T00:00:00Z")],
    includeTotal: false,
  });
  assert.ok("total" in await page(fake, ""));
  assert.ok(!("total" in await page(quiet, "")));
});

Deno.test("walks under random bounds, sorts and page sizes match a plain filter and sort", async () => {
  const rand = mulberry32(21);
  // Few distinct instants, so ties and bounds that land exactly on a call are common.
  const instants = Array.from(
    { length: 12 },
    (_, i) => `2026-10-0${1 + (i % 3)}T0${i % 4}:00:00.00000${i % 2}Z`,
  );
  const calls = Array.from(
    { length: 60 },
    (_, i) => call(ID(i), instants[Math.floor(rand() * 12)]),
  );
  await using fake = await startFakeUltravox({ calls });
  const key = (c: FakeCall) => [microsOf(c.created)!, c.callId] as const;
  for (let round = 0; round < 40; round++) {
    const [a, b] = [instants[Math.floor(rand() * 12)], instants[Math.floor(rand() * 12)]];
    const from = rand() < 0.2 ? null : a < b ? a : b;
    const to = rand() < 0.2 ? null : a < b ? b : a;
    const descending = rand() < 0.5;
    const pageSize = 1 + Math.floor(rand() * 9);
    const expected = calls
      .filter((c) =>
        (from === null || key(c)[0] >= microsOf(from)!) &&
        (to === null || key(c)[0] <= microsOf(to)!)
      )
      .toSorted((x, y) => {
        const [[xm, xi], [ym, yi]] = [key(x), key(y)];
        const c = xm !== ym ? (xm < ym ? -1 : 1) : xi < yi ? -1 : xi > yi ? 1 : 0;
        return descending ? -c : c;
      })
      .map((c) => c.callId);
    const params = new URLSearchParams({ sort: descending ? "-created" : "created" });
    params.set("pageSize", String(pageSize));
    if (from !== null) params.set("fromDate", from);
    if (to !== null) params.set("toDate", to);
    const label = params.toString();
    assert.deepEqual(await walkIds(fake, label), expected, label);
    assert.equal((await page(fake, label)).total, expected.length, label);
  }
});

Deno.test("following previous from the last page walks every call back in reverse", async () => {
  const calls = generateAccount({ seed: 22, count: 47 });
  await using fake = await startFakeUltravox({ calls });
  let p = await page(fake, "pageSize=5");
  while (p.next !== null) p = await page(fake, new URL(p.next).search.slice(1));
  const pages = [p.results.map((c) => c.callId)];
  while (p.previous !== null) {
    p = await page(fake, new URL(p.previous).search.slice(1));
    pages.unshift(p.results.map((c) => c.callId));
  }
  assert.deepEqual(pages.flat(), calls.map((c) => c.callId));
  assert.equal(pages.length, 10);
});

// ---- inclusive bounds at the microsecond ------------------------------------------------------

const EDGE = [
  call(ID(1), "2026-10-31T23:59:59.999998Z"),
  call(ID(2), "2026-10-31T23:59:59.999999Z"),
  call(ID(3), "2026-11-01T00:00:00.000000Z"),
  call(ID(4), "2026-11-01T00:00:00.000001Z"),
];

Deno.test("fromDate and toDate are inclusive, to the microsecond", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  const ids = await walkIds(
    fake,
    "fromDate=2026-10-31T23:59:59.999999Z&toDate=2026-11-01T00:00:00.000000Z",
  );
  assert.deepEqual(ids, [ID(3), ID(2)]);
});

Deno.test("bounds with an offset mean the same instant", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  const ids = await walkIds(
    fake,
    "fromDate=2026-11-01T00:59:59.999999%2B01:00&toDate=2026-10-31T19:00:00.000000-05:00",
  );
  assert.deepEqual(ids, [ID(3), ID(2)]);
});

Deno.test("a bare toDate runs to 23:59:59.999999 that day", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  assert.deepEqual(await walkIds(fake, "toDate=2026-10-31"), [ID(2), ID(1)]);
});

Deno.test("a bare fromDate starts at 00:00:00.000000 that day", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  assert.deepEqual(await walkIds(fake, "fromDate=2026-11-01"), [ID(4), ID(3)]);
});

// ---- stability while calls arrive -------------------------------------------------------------

Deno.test("calls added during a walk are not met by it, and the next walk meets them first", async () => {
  const old = generateAccount({ seed: 8, count: 50, end: "2026-10-01T00:00:00Z" });
  const fresh = generateAccount({ seed: 9, count: 5, days: 1, end: "2026-10-02T00:00:00Z" });
  await using fake = await startFakeUltravox({ calls: old });
  fake.faults.push({ kind: "pass", times: 2 }, { kind: "addCalls", calls: fresh });

  const during = await walkIds(fake, "pageSize=10");
  assert.equal(fake.requests[2].fault, "addCalls");
  assert.deepEqual(during, old.map((c) => c.callId));

  const after = await walkIds(fake, "pageSize=10");
  assert.deepEqual(after, [...fresh, ...old].map((c) => c.callId));
});

Deno.test("a call added with the same created as the cursor's is placed by callId", async () => {
  await using fake = await startFakeUltravox({
    calls: [call(ID(5), "2026-10-01T00:00:00Z"), call(ID(1), "2026-09-01T00:00:00Z")],
  });
  const first = await page(fake, "pageSize=1");
  assert.deepEqual(first.results.map((c) => c.callId), [ID(5)]);
  // ID(3) sorts after ID(5) at the same instant, so the walk still has it ahead; ID(7) is behind.
  fake.addCalls([call(ID(7), "2026-10-01T00:00:00Z"), call(ID(3), "2026-10-01T00:00:00Z")]);
  const next = new URL(first.next!);
  next.searchParams.set("pageSize", "5");
  const rest = await page(fake, next.search.slice(1));
  assert.deepEqual(rest.results.map((c) => c.callId), [ID(3), ID(1)]);
});

Deno.test("adding a call whose callId is already there is a test bug, refused at once", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  assert.throws(() => fake.addCalls([call(ID(1), "2026-10-02T00:00:00Z")]), /duplicate callId/);
});

// ---- auth and errors -----------------------------------------------------------------------

Deno.test("a missing key gets 401 and a wrong key 403, with a detail body", async () => {
  await using fake = await startFakeUltravox();
  assert.deepEqual(await get(fake, "", null), {
    status: 401,
    body: { detail: "Authentication credentials were not provided." },
  });
  assert.deepEqual(await get(fake, "", "Ab12Cd34.wrong"), {
    status: 403,
    body: { detail: "Invalid API key." },
  });
  assert.deepEqual(fake.requests.map((r) => [r.keyPresent, r.keyOk]), [[false, false], [
    true,
    false,
  ]]);
});

Deno.test("a rotated key is accepted and the old one refused; a revoked key refuses all", async () => {
  await using fake = await startFakeUltravox();
  const old = fake.apiKey!;
  fake.setKey("Nn5Mm6Bb.rotated");
  assert.equal((await get(fake, "", old)).status, 403);
  assert.equal((await get(fake, "", "Nn5Mm6Bb.rotated")).status, 200);
  fake.setKey(null);
  assert.equal((await get(fake, "", "Nn5Mm6Bb.rotated")).status, 403);
});

Deno.test("an invalid cursor, pageSize, sort or date gets a 400", async () => {
  await using fake = await startFakeUltravox();
  for (
    const query of [
      "cursor=%%%",
      "cursor=" + btoa("p=yesterday&k=x"),
      "pageSize=0",
      "pageSize=ten",
      "sort=duration",
      "fromDate=2026-02-30",
      "toDate=2026-11-01T25:00:00Z",
      "fromDate=yesterday",
    ]
  ) {
    assert.equal((await get(fake, query)).status, 400, query);
  }
});

Deno.test("other paths get 404", async () => {
  await using fake = await startFakeUltravox();
  assert.deepEqual(await get(fake, "", fake.apiKey, "/agents"), {
    status: 404,
    body: { detail: "Not found." },
  });
});

Deno.test("the request log records method, path, query, key and fault", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push({ kind: "status", status: 503, retryAfter: "1" });
  const before = Date.now();
  await get(fake, "toDate=2026-11-01&pageSize=5");
  assert.equal(fake.requests.length, 1);
  const [r] = fake.requests;
  assert.deepEqual({ ...r, at: 0 }, {
    n: 1,
    method: "GET",
    path: "/api/calls",
    search: "toDate=2026-11-01&pageSize=5",
    query: { toDate: "2026-11-01", pageSize: "5" },
    keyPresent: true,
    keyOk: true,
    at: 0,
    fault: "status",
    status: 503,
  });
  assert.ok(r.at >= before && r.at <= Date.now());
});

// ---- faults ---------------------------------------------------------------------------------

Deno.test("faults are taken one per request, in order, each `times` times", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push(
    { kind: "status", status: 500, times: 2 },
    { kind: "pass" },
    { kind: "status", status: 429, retryAfter: "2" },
  );
  assert.equal(fake.faults.pending, 4);
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await get(fake, "")).status);
  assert.deepEqual(statuses, [500, 500, 200, 429, 200]);
  assert.equal(fake.faults.pending, 0);
});

Deno.test("a status fault sends Retry-After as given", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push({ kind: "status", status: 429, retryAfter: "Sun, 01 Nov 2026 00:00:03 GMT" });
  const res = await fetch(`${fake.baseUrl}/calls`, { headers: { "X-API-Key": fake.apiKey! } });
  await res.body?.cancel();
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("Retry-After"), "Sun, 01 Nov 2026 00:00:03 GMT");
});

Deno.test("a reset fault sends headers and then drops the connection", async () => {
  await using fake = await startFakeUltravox({ calls: generateAccount({ seed: 2, count: 5 }) });
  fake.faults.push({ kind: "reset", afterBytes: 10 });
  const res = await fetch(`${fake.baseUrl}/calls`, { headers: { "X-API-Key": fake.apiKey! } });
  assert.equal(res.status, 200);
  await assert.rejects(res.text(), TypeError);
});

Deno.test("a truncated fault sends a complete response holding half the JSON", async () => {
  await using fake = await startFakeUltravox({ calls: generateAccount({ seed: 2, count: 5 }) });
  fake.faults.push({ kind: "truncated" });
  const cut = await (await fetch(`${fake.baseUrl}/calls`, {
    headers: { "X-API-Key": fake.apiKey! },
  })).text();
  const whole = JSON.stringify((await get(fake, "")).body);
  assert.equal(cut, whole.slice(0, Math.floor(whole.length / 2)));
  assert.throws(() => JSON.parse(cut), SyntaxError);
});

Deno.test("a malformed fault sends 200 with an HTML page", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push({ kind: "malformed" });
  const res = await fetch(`${fake.baseUrl}/calls`, { headers: { "X-API-Key": fake.apiKey! } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/html");
  assert.match(await res.text(), /^<html>/);
});

Deno.test("a latency fault delays that one answer", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push({ kind: "latency", ms: 40 });
  let started = performance.now();
  await get(fake, "");
  assert.ok(performance.now() - started >= 40);
  started = performance.now();
  await get(fake, "");
  assert.ok(performance.now() - started < 40);
});

Deno.test("closing the stand-in cuts a slow answer short", async () => {
  const fake = await startFakeUltravox({ latencyMs: 10_000 });
  const pending = fetch(`${fake.baseUrl}/calls`, { signal: AbortSignal.timeout(20) });
  await assert.rejects(pending);
  const started = performance.now();
  await fake.close();
  assert.ok(performance.now() - started < 1_000);
});

Deno.test("invalidCalls mixes that many bad objects into the page, and parseCall names each", async () => {
  const calls = generateAccount({ seed: 10, count: 12 });
  await using fake = await startFakeUltravox({ calls });
  fake.faults.push({ kind: "invalidCalls", count: INVALID_CALL_DEFECTS.length });
  const p = await page(fake, "pageSize=12");
  assert.equal(p.results.length, 12 + INVALID_CALL_DEFECTS.length);
  assert.equal(p.total, 12);

  const parsed = p.results.map(parseCall);
  assert.deepEqual(
    parsed.filter((r) => r.ok).map((r) => r.ok && r.row.ultravox_call_id),
    calls.map((c) => c.callId),
  );
  const failures = parsed.filter((r) => !r.ok);
  assert.equal(failures.length, INVALID_CALL_DEFECTS.length);
  failures.forEach((f, i) => {
    assert.ok(!f.ok);
    const { defect, reasonStartsWith } = INVALID_CALL_DEFECTS[i];
    assert.ok(f.reason.startsWith(reasonStartsWith), `${defect}: ${f.reason}`);
    assert.equal(f.callId === null, defect === "missing callId", defect);
  });
  // Bad objects sit among the good ones, not only at the ends.
  assert.equal(parsed[0].ok, true);
  assert.equal(parsed[parsed.length - 1].ok, true);
});

// ---- the account generator --------------------------------------------------------------------

Deno.test("the same seed gives the same account, another seed another", () => {
  const a = generateAccount({ seed: 11, count: 200 });
  assert.deepEqual(generateAccount({ seed: 11, count: 200 }), a);
  assert.notDeepEqual(generateAccount({ seed: 12, count: 200 }), a);
});

Deno.test("a generated account has unique v4 uuids and microsecond timestamps inside its window", () => {
  const calls = generateAccount({ seed: 13, count: 2_000, days: 90, end: "2026-11-01T00:00:00Z" });
  assert.equal(calls.length, 2_000);
  assert.equal(new Set(calls.map((c) => c.callId)).size, 2_000);
  const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const stamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
  for (const c of calls) {
    assert.match(c.callId, v4);
    assert.match(c.created, stamp);
    assert.ok(c.created >= "2026-08-03T00:00:00.000000Z" && c.created < "2026-11-01", c.created);
    for (const t of [c.joined, c.ended]) if (t != null) assert.match(t, stamp);
  }
  const sorted = calls.map((c) => c.created).toSorted().toReversed();
  assert.deepEqual(calls.map((c) => c.created), sorted, "newest first");
});

Deno.test("a generated account has every end reason, each with its documented shape", () => {
  const calls = generateAccount({ seed: 14, count: 1_000 });
  assert.deepEqual(
    new Set(calls.map((c) => c.endReason)),
    new Set([...END_REASONS, null]),
  );
  for (const c of calls.filter((c) => c.endReason === "unjoined")) {
    assert.equal(c.joined, null);
    assert.equal(c.billedDuration, null);
    assert.equal(c.shortSummary, null);
    assert.equal(c.summary, null);
    assert.notEqual(c.ended, null);
  }
  for (const c of calls.filter((c) => c.endReason === null)) assert.equal(c.ended, null);
  assert.ok(calls.some((c) => c.agentId === null && c.agent === null));
  assert.ok(calls.some((c) => c.agentId !== null && c.agent?.agentId === c.agentId));
  assert.ok(calls.some((c) => /^\d+s$/.test(c.billedDuration ?? "")));
  assert.ok(calls.some((c) => /^0\.\d+s$/.test(c.billedDuration ?? "")));
  assert.ok(calls.some((c) => Object.keys(c.metadata ?? {}).length > 0));
  assert.ok(calls.every((c) => typeof c.billingStatus === "string" && c.maxDuration && c.medium));
});

Deno.test("the first 7 calls drawn already cover every end reason", () => {
  const calls = generateAccount({ seed: 15, count: 7 });
  assert.equal(new Set(calls.map((c) => c.endReason)).size, 7);
});

// ---- the done criterion -------------------------------------------------------------------

Deno.test("a 10,000-call walk through random 429s and 5xx returns every call exactly once", async () => {
  const calls = generateAccount({ seed: 2026, count: 10_000 });
  await using fake = await startFakeUltravox({ calls });
  // Before each of the 100 pages, 0–4 faults (fewer than maxAttempts, so every page gets through).
  const rand = mulberry32(7);
  const kinds: FaultSpec[] = [
    { kind: "status", status: 429, retryAfter: "1" },
    { kind: "status", status: 429, retryAfter: "Sun, 01 Nov 2026 00:00:02 GMT" },
    { kind: "status", status: 500 },
    { kind: "status", status: 502 },
    { kind: "status", status: 503, retryAfter: "3" },
    { kind: "reset" },
    { kind: "truncated" },
  ];
  let injected = 0;
  for (let p = 0; p < 100; p++) {
    const n = Math.floor(rand() * 5);
    for (let i = 0; i < n; i++) fake.faults.push(kinds[Math.floor(rand() * kinds.length)]);
    fake.faults.push({ kind: "pass" });
    injected += n;
  }

  const waits: number[] = [];
  const client = createUltravoxClient({
    baseUrl: fake.baseUrl,
    apiKey: fake.apiKey!,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
    random: mulberry32(3),
    now: () => Date.parse("2026-11-01T00:00:00Z"),
  });

  const ids: string[] = [];
  let cursor: string | null = null;
  let requests = 0;
  let pages = 0;
  do {
    const p = await client.listCalls({
      fromDate: null,
      toDate: "2026-11-01T00:00:00Z",
      pageSize: 100,
      cursor,
    });
    for (const c of p.results) {
      const parsed = parseCall(c);
      assert.ok(parsed.ok);
      ids.push(parsed.row.ultravox_call_id);
    }
    requests += p.requests;
    pages++;
    cursor = p.nextCursor;
  } while (cursor !== null);

  assert.ok(injected > 150, `enough faults to matter: ${injected}`);
  assert.equal(pages, 100);
  assert.equal(ids.length, 10_000);
  assert.equal(new Set(ids).size, 10_000);
  assert.deepEqual(ids, calls.map((c) => c.callId));
  assert.equal(requests, 100 + injected);
  assert.equal(fake.requests.length, requests);
  assert.equal(waits.length, injected);
  assert.equal(fake.faults.pending, 0);
});
