// The stand-in Ultravox server behaves like docs/ULTRAVOX.md says the real one does (order,
// DRF cursor pagination with ties, inclusive bounds at the microsecond, auth, errors, calls that
// change and vanish, tombstones), serves several accounts on one server without mixing them up,
// its faults do what they say, the account generator is realistic and deterministic, and the
// client walks 10,000 calls through random 429s and 5xx without losing or repeating one.

import assert from "node:assert/strict";
import { createUltravoxClient } from "../../supabase/functions/_shared/ultravox/client.ts";
import { parseCall, unstorableText } from "../../supabase/functions/_shared/ultravox/call.ts";
import {
  type AccountHandle,
  createdOverlaps,
  type DeletedCall,
  type FakeCall,
  fakeKey,
  type FakeUltravox,
  type FaultSpec,
  FUTURE_END_REASON,
  INVALID_CALL_DEFECTS,
  microsOf,
  ODD_CALL_FIELDS,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import {
  END_REASONS,
  generateAccount,
  mulberry32,
} from "../../tools/stand_in_ultravox/accounts.ts";
import {
  type Cursor,
  decodeCursor,
  encodeCursor,
  Listing,
} from "../../tools/stand_in_ultravox/pagination.ts";
import { spawnStandIn } from "../../tools/stand_in_ultravox/spawn.ts";
import { specArgument } from "../../tools/stand_in_ultravox/main.ts";

interface Page<T = FakeCall> {
  next: string | null;
  previous: string | null;
  total?: number;
  results: T[];
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

async function page<T = FakeCall>(
  fake: FakeUltravox,
  query: string,
  key: string | null = fake.apiKey,
  path = "/calls",
): Promise<Page<T>> {
  const { status, body } = await get(fake, query, key, path);
  assert.equal(status, 200, JSON.stringify(body));
  return body as Page<T>;
}

/** Follows `next` links as given (test side only: the client never does) and lists callIds. */
async function walkIds(
  fake: FakeUltravox,
  query: string,
  key: string | null = fake.apiKey,
  path = "/calls",
): Promise<string[]> {
  const ids: string[] = [];
  let p = await page(fake, query, key, path);
  ids.push(...p.results.map((c) => c.callId));
  while (p.next !== null) {
    p = await page(fake, new URL(p.next).search.slice(1), key, path);
    ids.push(...p.results.map((c) => c.callId));
  }
  return ids;
}

/** The query of a `next`/`previous` link. */
const queryOf = (link: string | null) => new URL(link!).search.slice(1);
const ids = (calls: readonly { callId: string }[]) => calls.map((c) => c.callId);

function call(callId: string, created: string): FakeCall {
  return { callId, created, joined: null, ended: null, endReason: null, metadata: {} };
}

const ID = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;

/** `count` calls newest first in runs sharing a `created` (half single, others up to `maxRun`). */
function tiedCalls(count: number, seed: number, maxRun: number): FakeCall[] {
  const rand = mulberry32(seed);
  const calls: FakeCall[] = [];
  let ms = Date.parse("2026-10-31T00:00:00Z");
  while (calls.length < count) {
    const run = rand() < 0.5 ? 1 : 1 + Math.floor(rand() * maxRun);
    const created = `${new Date(ms).toISOString().slice(0, 19)}.${
      String(Math.floor(rand() * 1e6)).padStart(6, "0")
    }Z`;
    for (let i = 0; i < run && calls.length < count; i++) {
      calls.push(call(ID(calls.length), created));
    }
    ms -= 1000 + Math.floor(rand() * 600_000);
  }
  return calls;
}

// ---- order and paging -----------------------------------------------------------------------

Deno.test("calls come newest first, ties on created in the order they were added", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2026-10-01T10:00:00.000001Z"),
      call(ID(2), "2026-10-01T10:00:00.000002Z"),
      call(ID(3), "2026-10-01T10:00:00.000001Z"),
      call(ID(4), "2026-10-01T12:00:00.000001+02:00"), // the same instant as 1 and 3
    ],
  });
  const p = await page(fake, "sort=-created");
  assert.deepEqual(ids(p.results), [ID(2), ID(1), ID(3), ID(4)]);
  assert.deepEqual(ids(fake.calls), [ID(2), ID(1), ID(3), ID(4)]);
  // A later addition at the same instant goes after them.
  fake.addCalls([call(ID(0), "2026-10-01T10:00:00.000001Z")]);
  assert.deepEqual(ids((await page(fake, "")).results), [ID(2), ID(1), ID(3), ID(4), ID(0)]);
});

Deno.test("sort=created lists oldest first, the exact mirror of -created", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2026-10-01T10:00:00.000001Z"),
      call(ID(2), "2026-10-01T10:00:00.000002Z"),
      call(ID(3), "2026-10-01T10:00:00.000001Z"),
    ],
  });
  assert.deepEqual(await walkIds(fake, "sort=created&pageSize=1"), [ID(3), ID(1), ID(2)]);
  assert.deepEqual(await walkIds(fake, "sort=-created&pageSize=1"), [ID(2), ID(1), ID(3)]);
});

Deno.test("a walk in pages of 7 meets every call once, in order, ties included", async () => {
  const calls = generateAccount({ seed: 3, count: 300 });
  await using fake = await startFakeUltravox({ calls });
  assert.ok(calls.some((c, i) => i > 0 && c.created === calls[i - 1].created), "has ties");
  assert.deepEqual(await walkIds(fake, "pageSize=7"), ids(fake.calls));
  assert.deepEqual(ids(fake.calls), ids(calls));
});

Deno.test("a 10,000-call walk with long runs of equal created across page boundaries meets every call once, in order", async () => {
  const calls = tiedCalls(10_000, 31, 250);
  await using fake = await startFakeUltravox({ calls, maxPageSize: 500 });
  const created = calls.map((c) => c.created);
  for (const size of [100, 37]) {
    // Runs longer than a page, and boundaries that fall inside a run.
    const cut = Array.from(
      { length: Math.floor(10_000 / size) },
      (_, i) => created[(i + 1) * size - 1] === created[(i + 1) * size],
    );
    assert.ok(cut.filter(Boolean).length > 20, `${size}: boundaries inside runs`);
    const walked = await walkIds(fake, `pageSize=${size}`);
    assert.equal(walked.length, 10_000, `pageSize=${size}`);
    assert.deepEqual(walked, ids(calls), `pageSize=${size}`);
  }
  const oldestFirst = await walkIds(fake, "pageSize=100&sort=created");
  assert.deepEqual(oldestFirst, ids(calls).toReversed());
});

Deno.test("next and previous are absolute URLs that keep every other parameter, sorted by name as DRF writes them", async () => {
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
  assert.deepEqual(
    [...next.searchParams.keys()],
    ["agentIds", "cursor", "fromDate", "pageSize", "sort", "toDate"],
  );

  const second = await page(fake, next.search.slice(1));
  const back = await page(fake, queryOf(second.previous));
  assert.deepEqual(ids(back.results), ids(first.results));
});

Deno.test("the cursor is base64 of DRF's o, r and p: p is a created as Python writes it, o counts the tied calls already served", async () => {
  await using fake = await startFakeUltravox({
    calls: [
      call(ID(1), "2025-03-22T15:48:32.997086Z"),
      call(ID(2), "2025-03-22T15:40:02.118204Z"),
      call(ID(3), "2025-03-22T15:30:00Z"),
      call(ID(4), "2025-03-22T15:30:00Z"),
      call(ID(5), "2025-03-22T15:20:00Z"),
    ],
  });
  const cursorOf = (link: string | null) => new URL(link!).searchParams.get("cursor")!;
  const tokens = (link: string | null) =>
    Object.fromEntries(new URLSearchParams(atob(cursorOf(link))));

  const first = await page(fake, "pageSize=2&sort=-created");
  // The very cursor of docs/ULTRAVOX.md's example page.
  assert.equal(cursorOf(first.next), "cD0yMDI1LTAzLTIyKzE1JTNBNDAlM0EwMi4xMTgyMDQlMkIwMCUzQTAw");
  assert.deepEqual(tokens(first.next), { p: "2025-03-22 15:40:02.118204+00:00" });

  // Page 2 ends inside the run at 15:30: the next cursor skips the one call of it served.
  const second = await page(fake, `pageSize=1&cursor=${encodeURIComponent(cursorOf(first.next))}`);
  assert.deepEqual(ids(second.results), [ID(3)]);
  assert.deepEqual(tokens(second.next), { o: "1", p: "2025-03-22 15:40:02.118204+00:00" });
  assert.deepEqual(tokens(second.previous), { r: "1", p: "2025-03-22 15:30:00+00:00" });
  const third = await page(fake, queryOf(second.next));
  assert.deepEqual(ids(third.results), [ID(4)]);
  assert.deepEqual(tokens(third.next), { p: "2025-03-22 15:30:00+00:00" });
});

Deno.test("DRF's own cursor cases (tests/test_pagination.py) give DRF's pages, paging artifacts included", () => {
  // encode/django-rest-framework, TestCursorPagination: `created` ascending, pages of 5.
  const values = [1, 1, 1, 1, 1, 1, 2, 3, 4, 4, 4, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 9, 9, 9];
  values.push(9, 9, 9);
  const listing = new Listing<number>();
  listing.add(values.map((v) => ({ item: v, micros: BigInt(v) })));
  const at = (cursor: Cursor | null, pageSize = 5) =>
    listing.page({
      from: null,
      to: null,
      descending: false,
      pageSize,
      // Through the cursor's text, as a client would send it back.
      cursor: cursor === null ? null : decodeCursor(encodeCursor(cursor)),
    });
  const pages = (cursor: Cursor | null, pageSize = 5) => {
    const current = at(cursor, pageSize);
    return {
      previous: current.previous && at(current.previous, pageSize).results,
      current: current.results,
      next: current.next && at(current.next, pageSize).results,
      cursors: current,
    };
  };
  const expectForward = [
    [null, [1, 1, 1, 1, 1], [1, 2, 3, 4, 4]],
    [[1, 1, 1, 1, 1], [1, 2, 3, 4, 4], [4, 4, 5, 6, 7]],
    [[1, 2, 3, 4, 4], [4, 4, 5, 6, 7], [7, 7, 7, 7, 7]],
    [[4, 4, 4, 5, 6], [7, 7, 7, 7, 7], [7, 7, 7, 8, 9]], // DRF: "Paging artifact"
    [[7, 7, 7, 7, 7], [7, 7, 7, 8, 9], [9, 9, 9, 9, 9]],
    [[7, 7, 7, 8, 9], [9, 9, 9, 9, 9], null],
  ];
  const expectBack = [
    [[7, 7, 7, 7, 7], [7, 7, 7, 8, 9], [9, 9, 9, 9, 9]],
    [[4, 4, 5, 6, 7], [7, 7, 7, 7, 7], [8, 9, 9, 9, 9]], // DRF: "Paging artifact"
    [[1, 2, 3, 4, 4], [4, 4, 5, 6, 7], [7, 7, 7, 7, 7]],
    [[1, 1, 1, 1, 1], [1, 2, 3, 4, 4], [4, 4, 5, 6, 7]],
    [null, [1, 1, 1, 1, 1], [1, 2, 3, 4, 4]],
  ];
  let p = pages(null);
  for (const [i, expected] of expectForward.entries()) {
    if (i > 0) p = pages(p.cursors.next);
    assert.deepEqual([p.previous, p.current, p.next], expected, `forward ${i}`);
  }
  for (const [i, expected] of expectBack.entries()) {
    p = pages(p.cursors.previous);
    assert.deepEqual([p.previous, p.current, p.next], expected, `back ${i}`);
  }

  // test_cursor_pagination_with_page_size: two pages of 20 and 10.
  p = pages(null, 20);
  assert.deepEqual(p.current, values.slice(0, 20));
  assert.deepEqual(p.next, values.slice(20));

  // test_cursor_pagination_current_page_empty_forward / _reverse: a position past the end.
  p = pages({ offset: 0, reverse: false, position: 100n });
  p = pages(p.cursors.previous);
  assert.deepEqual([p.previous, p.current, p.next], [[7, 7, 7, 8, 9], [9, 9, 9, 9, 9], []]);
  assert.ok(p.cursors.previous !== null && p.cursors.next !== null);
  p = pages({ offset: 0, reverse: true, position: 100n });
  p = pages(p.cursors.next);
  assert.deepEqual([p.previous, p.current, p.next], [[7, 7, 7, 7, 8], [], null]);
  assert.ok(p.cursors.previous !== null && p.cursors.next === null);
});

Deno.test("following previous from the last page walks every call back in reverse (no run of ties at a boundary)", async () => {
  const calls = generateAccount({ seed: 22, count: 47 });
  await using fake = await startFakeUltravox({ calls });
  let p = await page(fake, "pageSize=5");
  while (p.next !== null) p = await page(fake, queryOf(p.next));
  const pages = [ids(p.results)];
  while (p.previous !== null) {
    p = await page(fake, queryOf(p.previous));
    pages.unshift(ids(p.results));
  }
  assert.deepEqual(pages.flat(), ids(calls));
  assert.equal(pages.length, 10);
});

Deno.test("an offset beyond 1,000 reads as 1,000 (DRF's offset_cutoff)", async () => {
  const created = "2026-10-01T00:00:00.000000Z";
  const calls = Array.from({ length: 1_200 }, (_, i) => call(ID(i), created));
  await using fake = await startFakeUltravox({ calls, maxPageSize: 100 });
  const at = async (offset: number) =>
    ids((await page(fake, `pageSize=3&cursor=${encodeURIComponent(btoa(`o=${offset}`))}`)).results);
  assert.deepEqual(await at(999), [ID(999), ID(1000), ID(1001)]);
  assert.deepEqual(await at(5_000), [ID(1000), ID(1001), ID(1002)]);
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

Deno.test("a pageSize that is not a positive integer falls back to the default, as DRF's get_page_size does", async () => {
  await using fake = await startFakeUltravox({
    calls: generateAccount({ seed: 6, count: 60 }),
    defaultPageSize: 20,
  });
  for (const size of ["0", "-5", "ten", "", "2.5", "1e2", "0x10"]) {
    const p = await page(fake, `pageSize=${encodeURIComponent(size)}`);
    assert.equal(p.results.length, 20, JSON.stringify(size));
  }
  // What Python's int() reads.
  for (const size of ["007", "+7", " 7 ", "7_0"]) {
    const p = await page(fake, `pageSize=${encodeURIComponent(size)}`);
    assert.equal(p.results.length, size === "7_0" ? 60 : 7, JSON.stringify(size));
  }
});

Deno.test("total counts the objects the filters let through", async () => {
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

Deno.test("total counts listed invalid objects too, and a walk meets each of them once", async () => {
  const calls = generateAccount({ seed: 16, count: 100 });
  await using fake = await startFakeUltravox({ calls });
  const added = new Set(fake.addInvalidCalls(5, { amongNewest: 30 }).map((o) => JSON.stringify(o)));
  const isAdded = (o: unknown) => added.has(JSON.stringify(o));
  const first = await page<unknown>(fake, "pageSize=50");
  assert.equal(first.total, 105);
  const at = first.results.flatMap((o, i) => isAdded(o) ? [i] : []);
  assert.equal(at.length, 5);
  assert.ok(at.every((i) => i > 0 && i < 35), `among the newest 30 calls: ${at}`);
  assert.equal((await page(fake, "pageSize=50&fromDate=2026-11-02")).total, 0);

  const walked: unknown[] = [...first.results];
  let p = first;
  while (p.next !== null) {
    p = await page<unknown>(fake, queryOf(p.next));
    walked.push(...p.results);
    assert.equal(p.total, 105);
  }
  assert.equal(walked.length, 105);
  assert.equal(walked.filter(isAdded).length, 5);
  assert.deepEqual(ids(fake.calls), ids(calls), "calls leaves them out");
});

Deno.test("total is left out when includeTotal is false", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  await using quiet = await startFakeUltravox({
    calls: [call(ID(1), "2026-10-01T00:00:00Z")],
    includeTotal: false,
  });
  assert.ok("total" in await page(fake, ""));
  assert.ok(!("total" in await page(quiet, "")));
  assert.ok(!("total" in await page(quiet, "", quiet.apiKey, "/deleted_calls")));
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
  // Newest first, ties in the order added (here: by index).
  const key = (c: FakeCall) => [microsOf(c.created)!, calls.indexOf(c)] as const;
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
        const newestFirst = xm !== ym ? (xm > ym ? -1 : 1) : xi - yi;
        return descending ? newestFirst : -newestFirst;
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

// ---- inclusive bounds at the microsecond ------------------------------------------------------

const EDGE = [
  call(ID(1), "2026-10-31T23:59:59.999998Z"),
  call(ID(2), "2026-10-31T23:59:59.999999Z"),
  call(ID(3), "2026-11-01T00:00:00.000000Z"),
  call(ID(4), "2026-11-01T00:00:00.000001Z"),
];

Deno.test("fromDate and toDate are inclusive, to the microsecond", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  const walked = await walkIds(
    fake,
    "fromDate=2026-10-31T23:59:59.999999Z&toDate=2026-11-01T00:00:00.000000Z",
  );
  assert.deepEqual(walked, [ID(3), ID(2)]);
});

Deno.test("bounds with an offset mean the same instant", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  const walked = await walkIds(
    fake,
    "fromDate=2026-11-01T00:59:59.999999%2B01:00&toDate=2026-10-31T19:00:00.000000-05:00",
  );
  assert.deepEqual(walked, [ID(3), ID(2)]);
});

Deno.test("a bare toDate runs to 23:59:59.999999 that day", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  assert.deepEqual(await walkIds(fake, "toDate=2026-10-31"), [ID(2), ID(1)]);
});

Deno.test("a bare fromDate starts at 00:00:00.000000 that day", async () => {
  await using fake = await startFakeUltravox({ calls: EDGE });
  assert.deepEqual(await walkIds(fake, "fromDate=2026-11-01"), [ID(4), ID(3)]);
});

// ---- calls that arrive, change and vanish -----------------------------------------------------

Deno.test("calls added during a walk are not met by it, and the next walk meets them first", async () => {
  const old = generateAccount({ seed: 8, count: 50, end: "2026-10-01T00:00:00Z" });
  const fresh = generateAccount({ seed: 9, count: 5, days: 1, end: "2026-10-02T00:00:00Z" });
  await using fake = await startFakeUltravox({ calls: old });
  fake.faults.push({ kind: "pass", times: 2 }, { kind: "addCalls", calls: fresh });

  const during = await walkIds(fake, "pageSize=10");
  assert.equal(fake.requests[2].fault, "addCalls");
  assert.deepEqual(during, ids(old));

  const after = await walkIds(fake, "pageSize=10");
  assert.deepEqual(after, ids([...fresh, ...old]));
});

Deno.test("a call added at the instant of the cursor's position is not met by the ongoing walk (DRF pages on created < p)", async () => {
  await using fake = await startFakeUltravox({
    calls: [call(ID(5), "2026-10-01T00:00:00Z"), call(ID(1), "2026-09-01T00:00:00Z")],
  });
  const first = await page(fake, "pageSize=1");
  assert.deepEqual(ids(first.results), [ID(5)]);
  fake.addCalls([call(ID(7), "2026-10-01T00:00:00Z"), call(ID(3), "2026-10-01T00:00:00Z")]);
  const next = new URL(first.next!);
  next.searchParams.set("pageSize", "5");
  const rest = await page(fake, next.search.slice(1));
  assert.deepEqual(ids(rest.results), [ID(1)]);
  assert.deepEqual(await walkIds(fake, ""), [ID(5), ID(7), ID(3), ID(1)]);
});

Deno.test("deleting the call a cursor's position came from changes nothing; deleting a tied call its offset skips makes the walk skip one more", async () => {
  const calls = [
    call(ID(1), "2026-10-03T00:00:00Z"),
    call(ID(2), "2026-10-02T00:00:00Z"),
    call(ID(3), "2026-10-02T00:00:00Z"),
    call(ID(4), "2026-10-02T00:00:00Z"),
    call(ID(5), "2026-10-01T00:00:00Z"),
  ];
  {
    await using fake = await startFakeUltravox({ calls });
    const first = await page(fake, "pageSize=2");
    assert.deepEqual(ids(first.results), [ID(1), ID(2)]);
    fake.deleteCall(ID(1)); // p is the created of ID(1): a value, not a reference to it
    assert.deepEqual(ids((await page(fake, queryOf(first.next))).results), [ID(3), ID(4)]);
  }
  {
    await using fake = await startFakeUltravox({ calls });
    const first = await page(fake, "pageSize=2");
    fake.deleteCall(ID(2)); // the one tied call o=1 skips: ID(3) is skipped instead
    assert.deepEqual(ids((await page(fake, queryOf(first.next))).results), [ID(4), ID(5)]);
  }
});

Deno.test("a call added at the instant of the tied calls an offset skips is met newest first; oldest first one of them repeats instead", async () => {
  const calls = [
    call(ID(1), "2026-10-03T00:00:00Z"),
    call(ID(2), "2026-10-02T00:00:00Z"),
    call(ID(3), "2026-10-02T00:00:00Z"),
    call(ID(4), "2026-10-02T00:00:00Z"),
    call(ID(5), "2026-10-01T00:00:00Z"),
  ];
  for (
    const [sort, expected] of [
      ["-created", [1, 2, 3, 4, 9, 5]],
      ["created", [5, 4, 4, 3, 2, 1]],
    ] as const
  ) {
    await using fake = await startFakeUltravox({ calls });
    const first = await page(fake, `pageSize=2&sort=${sort}`);
    fake.addCalls([call(ID(9), "2026-10-02T00:00:00Z")]);
    const rest = await walkIds(fake, queryOf(first.next));
    assert.deepEqual([...ids(first.results), ...rest], expected.map(ID), sort);
  }
});

Deno.test("updateCall changes a call between walks: running, then ended, then billed", async () => {
  const running: FakeCall = {
    ...call(ID(2), "2026-10-02T00:00:00.000000Z"),
    joined: "2026-10-02T00:00:00.400000Z",
    billedDuration: null,
    billingStatus: "BILLING_STATUS_PENDING",
    shortSummary: null,
    summary: null,
  };
  await using fake = await startFakeUltravox({
    calls: [call(ID(3), "2026-10-03T00:00:00Z"), running, call(ID(1), "2026-10-01T00:00:00Z")],
  });
  const seen = async () => (await page(fake, "")).results.find((c) => c.callId === ID(2))!;
  assert.equal((await seen()).ended, null);

  const ended = fake.updateCall(ID(2), {
    ended: "2026-10-02T00:01:00.400000Z",
    endReason: "hangup",
  });
  assert.deepEqual(await seen(), ended);
  assert.equal(ended.billingStatus, "BILLING_STATUS_PENDING");

  const billed = fake.updateCall(ID(2), {
    billedDuration: "61s",
    billingStatus: "BILLING_STATUS_BILLED",
    shortSummary: "Caller asked about pricing.",
    summary: "The caller asked about pricing.",
  });
  assert.deepEqual(await seen(), billed);
  assert.deepEqual(billed, {
    ...running,
    ended: "2026-10-02T00:01:00.400000Z",
    endReason: "hangup",
    billedDuration: "61s",
    billingStatus: "BILLING_STATUS_BILLED",
    shortSummary: "Caller asked about pricing.",
    summary: "The caller asked about pricing.",
  });
  assert.equal(running.ended, null, "the object given is left as it was");
  assert.deepEqual(await walkIds(fake, "pageSize=1"), [ID(3), ID(2), ID(1)]);
  assert.throws(() => fake.updateCall(ID(2), { created: "2026-10-05T00:00:00Z" } as never));
  assert.throws(() => fake.updateCall(ID(9), {}), /no listed call/);
});

Deno.test("an auto_delete call vanishes into /api/deleted_calls once billed; expireAutoDelete deletes those billed already", async () => {
  const auto = (n: number, billingStatus: string): FakeCall => ({
    ...call(ID(n), `2026-10-0${n}T00:00:00.000000Z`),
    billingStatus,
    retentionPolicy: "auto_delete",
  });
  await using fake = await startFakeUltravox({
    calls: [
      auto(3, "BILLING_STATUS_PENDING"),
      auto(2, "BILLING_STATUS_BILLED"),
      { ...call(ID(1), "2026-10-01T00:00:00.000000Z"), billingStatus: "BILLING_STATUS_BILLED" },
    ],
  });
  fake.updateCall(ID(3), { ended: "2026-10-03T00:01:00.000000Z", endReason: "hangup" });
  assert.deepEqual(ids(fake.calls), [ID(3), ID(2), ID(1)], "ended is not billed yet");
  fake.updateCall(ID(3), { billedDuration: "60s", billingStatus: "BILLING_STATUS_BILLED" });
  assert.deepEqual(await walkIds(fake, ""), [ID(2), ID(1)]);
  assert.deepEqual(ids(fake.deletedCalls), [ID(3)]);

  const expired = fake.expireAutoDelete();
  assert.deepEqual(ids(expired), [ID(2)]);
  assert.deepEqual(await walkIds(fake, ""), [ID(1)]);
  assert.deepEqual(await walkIds(fake, "", fake.apiKey, "/deleted_calls"), [ID(3), ID(2)]);
  assert.deepEqual(fake.expireAutoDelete(), []);
});

Deno.test("deleteCall takes a call off /api/calls and serves its tombstone with the documented fields", async () => {
  const gone: FakeCall = {
    callId: ID(2),
    created: "2026-10-02T00:00:00.000001Z",
    joined: "2026-10-02T00:00:00.500000Z",
    ended: "2026-10-02T00:01:00.500000Z",
    endReason: "agent_hangup",
    maxDuration: "480s",
    recordingEnabled: true,
    shortSummary: "Short.",
    summary: null,
  };
  await using fake = await startFakeUltravox({
    calls: [call(ID(3), "2026-10-03T00:00:00Z"), gone, call(ID(1), "2026-10-01T00:00:00Z")],
  });
  const tombstone = fake.deleteCall(ID(2), "2026-10-05T12:00:00.000000Z");
  const expected: DeletedCall = {
    callId: ID(2),
    accountId: fake.accountId,
    created: "2026-10-02T00:00:00.000001Z",
    deletionTime: "2026-10-05T12:00:00.000000Z",
    joined: "2026-10-02T00:00:00.500000Z",
    ended: "2026-10-02T00:01:00.500000Z",
    maxDuration: "480s",
    endReason: "agent_hangup",
    recordingEnabled: true,
    hadSummary: true,
  };
  assert.deepEqual(tombstone, expected);
  assert.deepEqual(await page(fake, "", fake.apiKey, "/deleted_calls"), {
    next: null,
    previous: null,
    total: 1,
    results: [expected],
  });
  const listed = await page(fake, "");
  assert.deepEqual(ids(listed.results), [ID(3), ID(1)]);
  assert.equal(listed.total, 2);
  // deletionTime defaults to now; a deleted callId cannot come back.
  const before = Date.now();
  const { deletionTime } = fake.deleteCall(ID(1));
  assert.match(deletionTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  assert.ok(Date.parse(deletionTime) >= before);
  assert.throws(() => fake.deleteCall(ID(2)), /no listed call/);
  assert.throws(() => fake.addCalls([call(ID(2), "2026-10-02T00:00:00Z")]), /duplicate callId/);
});

Deno.test("/api/deleted_calls pages with DRF cursors, newest created first, filters on created and ignores sort", async () => {
  const calls = tiedCalls(60, 41, 4);
  await using fake = await startFakeUltravox({ calls });
  const rand = mulberry32(42);
  const doomed = calls.filter(() => rand() < 0.6).toSorted(() => rand() - 0.5);
  doomed.forEach((c, i) =>
    fake.deleteCall(c.callId, `2026-11-01T00:00:${String(i).padStart(2, "0")}Z`)
  );
  // Newest created first, tombstones of one instant in the order they were made.
  const order = ids(calls).filter((id) => doomed.some((d) => d.callId === id)).toSorted((a, b) => {
    const [ca, cb] = [calls.find((c) => c.callId === a)!, calls.find((c) => c.callId === b)!];
    const [ma, mb] = [microsOf(ca.created)!, microsOf(cb.created)!];
    return ma !== mb ? (ma > mb ? -1 : 1) : doomed.indexOf(ca) - doomed.indexOf(cb);
  });
  assert.deepEqual(ids(fake.deletedCalls), order);
  const path = "/deleted_calls";
  assert.deepEqual(await walkIds(fake, "pageSize=4", fake.apiKey, path), order);
  assert.deepEqual(await walkIds(fake, "pageSize=4&sort=created", fake.apiKey, path), order);
  assert.deepEqual(await walkIds(fake, "pageSize=4&sort=bogus", fake.apiKey, path), order);

  const first = await page<DeletedCall>(fake, "pageSize=3", fake.apiKey, path);
  assert.equal(first.total, doomed.length);
  assert.equal(new URL(first.next!).pathname, "/api/deleted_calls");
  assert.equal((await page(fake, "pageSize=x", fake.apiKey, path)).results.length, 20);
  assert.deepEqual(await get(fake, "cursor=123", fake.apiKey, path), {
    status: 404,
    body: { detail: "Invalid cursor" },
  });

  const mid = doomed[0].created;
  const from = order.filter((id) => calls.find((c) => c.callId === id)!.created >= mid);
  assert.deepEqual(await walkIds(fake, `fromDate=${mid}&pageSize=2`, fake.apiKey, path), from);
  const to = order.filter((id) => calls.find((c) => c.callId === id)!.created <= mid);
  assert.deepEqual(await walkIds(fake, `toDate=${mid}&pageSize=2`, fake.apiKey, path), to);
  assert.equal((await page(fake, `toDate=${mid}`, fake.apiKey, path)).total, to.length);
});

Deno.test("/api/deleted_calls wants the account's key like /api/calls", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  fake.deleteCall(ID(1));
  assert.equal((await get(fake, "", null, "/deleted_calls")).status, 401);
  assert.equal((await get(fake, "", "Ab12Cd34.wrong", "/deleted_calls")).status, 403);
  assert.equal((await page(fake, "", fake.apiKey, "/deleted_calls")).results.length, 1);
});

Deno.test("adding a call whose callId is already there is a test bug, refused at once", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  assert.throws(() => fake.addCalls([call(ID(1), "2026-10-02T00:00:00Z")]), /duplicate callId/);
});

// ---- several accounts on one server -----------------------------------------------------------

Deno.test("several accounts on one server keep their keys, calls, faults, request logs and latency apart", async () => {
  const [a, b, c] = [1, 2, 3].map((seed) => generateAccount({ seed: 100 + seed, count: 25 }));
  const [keyB, keyC] = [fakeKey(), fakeKey()];
  await using fake = await startFakeUltravox({
    calls: a,
    accounts: [{ apiKey: keyB, calls: b }, { apiKey: keyC, calls: c, latencyMs: 60 }],
  });
  const [first, second, third] = fake.accounts;
  assert.equal(first.apiKey, fake.apiKey);
  assert.deepEqual(fake.accounts.map((x) => x.apiKey), [fake.apiKey, keyB, keyC]);
  assert.equal(new Set(fake.accounts.map((x) => x.accountId)).size, 3);

  second.faults.push({ kind: "status", status: 503, retryAfter: "1" });
  assert.deepEqual(await walkIds(fake, "pageSize=10"), ids(a));
  assert.equal((await get(fake, "", keyB)).status, 503, "the fault is the second account's");
  assert.deepEqual(await walkIds(fake, "pageSize=10", keyB), ids(b));
  const started = performance.now();
  assert.deepEqual(await walkIds(fake, "pageSize=25", keyC), ids(c));
  assert.ok(performance.now() - started >= 60, "only the third account is slow");

  assert.deepEqual(first.requests.map((r) => r.n), [1, 2, 3]);
  assert.deepEqual(second.requests.map((r) => [r.n, r.status, r.fault]), [
    [1, 503, "status"],
    [2, 200, null],
    [3, 200, null],
    [4, 200, null],
  ]);
  assert.deepEqual(third.requests.map((r) => r.status), [200]);
  assert.ok(fake.accounts.every((x) => x.requests.every((r) => r.keyOk)));

  // Changes and tombstones stay with their account.
  second.deleteCall(b[0].callId);
  third.updateCall(c[0].callId, { summary: "changed" });
  assert.equal(fake.deletedCalls.length, 0);
  assert.deepEqual(ids((await page(fake, "", keyB, "/deleted_calls")).results), [b[0].callId]);
  assert.equal((await page(fake, "pageSize=1", keyC)).results[0].summary, "changed");
  assert.notEqual((await page(fake, "pageSize=1")).results[0].summary, "changed");
  assert.throws(() => first.updateCall(c[0].callId, {}), /no listed call/);
});

Deno.test("a rotated or revoked key of one account leaves the others alone; requests with its old key stay in its log", async () => {
  await using fake = await startFakeUltravox({ accounts: [{ apiKey: "Bbbbbbbb.second" }] });
  const [first, second] = fake.accounts;
  const old = second.apiKey!;
  second.setKey("Cccccccc.rotated");
  assert.equal((await get(fake, "", old)).status, 403);
  assert.equal((await get(fake, "", "Cccccccc.rotated")).status, 200);
  assert.equal((await get(fake, "")).status, 200, "the first account's key still works");
  second.setKey(null);
  assert.equal((await get(fake, "", "Cccccccc.rotated")).status, 403);
  assert.deepEqual(second.requests.map((r) => [r.status, r.keyOk]), [
    [403, false],
    [200, true],
    [403, false],
  ]);
  assert.equal(first.requests.length, 1);
});

Deno.test("a key no account has gets 403 and a missing key 401, both logged on the first account", async () => {
  await using fake = await startFakeUltravox({ accounts: [{}] });
  assert.equal((await get(fake, "", "Zzzzzzzz.nobody")).status, 403);
  assert.equal((await get(fake, "", null)).status, 401);
  assert.deepEqual(fake.requests.map((r) => [r.keyPresent, r.keyOk, r.status]), [
    [true, false, 403],
    [false, false, 401],
  ]);
  assert.equal(fake.accounts[1].requests.length, 0);
  assert.match(
    fake.accounts[1].apiKey!,
    /^[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}$/,
    "a fakeKey() by default",
  );
});

Deno.test("addAccount adds an account to a running server; two accounts never share a key", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  const added: AccountHandle = fake.addAccount({
    apiKey: "Dddddddd.added",
    calls: [call(ID(2), "2026-10-02T00:00:00Z")],
  });
  assert.equal(fake.accounts.length, 2);
  assert.deepEqual(await walkIds(fake, "", "Dddddddd.added"), [ID(2)]);
  assert.deepEqual(await walkIds(fake, ""), [ID(1)]);
  assert.throws(() => fake.addAccount({ apiKey: "Dddddddd.added" }), /another account has the key/);
  assert.throws(() => added.setKey(fake.apiKey), /another account has the key/);
  assert.throws(
    () => startFakeUltravox({ apiKey: "Eeeeeeee.same", accounts: [{ apiKey: "Eeeeeeee.same" }] }),
    /another account has the key/,
  );
});

Deno.test("fakeKey makes Ultravox-shaped keys, the same for the same PRNG", () => {
  const shape = /^[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}$/;
  assert.match(fakeKey(), shape);
  assert.notEqual(fakeKey(), fakeKey());
  assert.equal(fakeKey(mulberry32(1)), fakeKey(mulberry32(1)));
  assert.match(fakeKey(mulberry32(1)), shape);
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

Deno.test("an invalid sort or date gets a 400", async () => {
  await using fake = await startFakeUltravox();
  for (
    const query of [
      "sort=duration",
      "fromDate=2026-02-30",
      "toDate=2026-11-01T25:00:00Z",
      "fromDate=yesterday",
      "fromDate=yesterday&cursor=123", // filters are checked before the cursor
    ]
  ) {
    assert.equal((await get(fake, query)).status, 400, query);
  }
});

Deno.test("a cursor that cannot be decoded gets 404 Invalid cursor, as DRF's NotFound", async () => {
  await using fake = await startFakeUltravox({ calls: [call(ID(1), "2026-10-01T00:00:00Z")] });
  for (
    const cursor of [
      "123", // DRF's own test: bad padding
      "not-a-cursor",
      "é",
      btoa("\xff\xfe"), // not ASCII once decoded
      btoa("o=x"),
      btoa("o=-1"),
      btoa("o="),
      btoa("r=yes"),
      btoa("p=yesterday"),
      btoa("p="),
      btoa("p=2026-02-30 00:00:00+00:00"),
    ]
  ) {
    const query = `cursor=${encodeURIComponent(cursor)}`;
    assert.deepEqual(await get(fake, query), {
      status: 404,
      body: { detail: "Invalid cursor" },
    }, cursor);
  }
});

Deno.test("a cursor DRF's lenient base64 decodes to nothing is the first page", async () => {
  await using fake = await startFakeUltravox({ calls: generateAccount({ seed: 5, count: 30 }) });
  const first = ids((await page(fake, "")).results);
  for (const cursor of ["", "!!!!", "%%%", "    "]) {
    const p = await page(fake, `cursor=${encodeURIComponent(cursor)}`);
    assert.deepEqual(ids(p.results), first, JSON.stringify(cursor));
  }
  // Characters outside the alphabet are skipped, as Python's b64decode skips them.
  const next = new URL((await page(fake, "")).next!).searchParams.get("cursor")!;
  const spaced = next.replace(/(.{4})/g, "$1 !");
  assert.deepEqual(
    ids((await page(fake, `cursor=${encodeURIComponent(spaced)}`)).results),
    ids((await page(fake, `cursor=${encodeURIComponent(next)}`)).results),
  );
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
  assert.ok(r.doneAt >= r.at, "answered after it arrived");
  assert.deepEqual({ ...r, at: 0, doneAt: 0 }, {
    n: 1,
    method: "GET",
    path: "/api/calls",
    search: "toDate=2026-11-01&pageSize=5",
    query: { toDate: "2026-11-01", pageSize: "5" },
    keyPresent: true,
    keyOk: true,
    at: 0,
    doneAt: 0,
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

Deno.test("fault rules take the requests they match, whatever their order, before the queue and `times` times", async () => {
  await using fake = await startFakeUltravox();
  fake.faults.push({ kind: "status", status: 500 });
  // A 429 storm on 17–19 October only, for two requests.
  const storm = fake.faultRules.add({
    match: createdOverlaps("2026-10-17T00:00:00.000000Z", "2026-10-19T23:59:59.999999Z"),
    fault: { kind: "status", status: 429, retryAfter: "30" },
    times: 2,
  });
  const slice = (from: string, to: string) => `fromDate=${from}&toDate=${to}`;
  const stormed = slice("2026-10-19T23:59:59.999999Z", "2026-10-22T00:00:00Z"); // shares 1 µs
  const apart = slice("2026-10-20T00:00:00Z", "2026-10-22T00:00:00Z");
  const statuses = [];
  for (const q of [stormed, apart, "toDate=2026-10-16T23:59:59.999999Z", stormed, stormed]) {
    statuses.push((await get(fake, q)).status);
  }
  // The queued 500 goes to the first request no rule takes; the rule's third match passes.
  assert.deepEqual(statuses, [429, 500, 200, 429, 200]);
  assert.equal(storm.hits, 2);
  assert.deepEqual(fake.requests.map((r) => r.fault), ["status", "status", null, "status", null]);
  // Unbounded sides overlap everything on that side; a removed rule takes nothing more.
  const slow = fake.faultRules.add({
    match: createdOverlaps(null, "2026-10-01T00:00:00Z"),
    fault: { kind: "latency", ms: 1 },
  });
  await get(fake, "fromDate=2026-10-01T00:00:00Z&toDate=2026-10-02T00:00:00Z");
  await get(fake, "fromDate=2026-10-01T00:00:00.000001Z&toDate=2026-10-02T00:00:00Z");
  slow.remove();
  await get(fake, "toDate=2026-10-02T00:00:00Z");
  assert.equal(slow.hits, 1);
  assert.throws(() =>
    fake.faultRules.add({ match: () => true, fault: { kind: "pass" }, times: 0 })
  );
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

Deno.test("invalidCalls mixes that many objects that cannot be stored into the page, each defect in turn", async () => {
  const calls = generateAccount({ seed: 10, count: 12 });
  await using fake = await startFakeUltravox({ calls });
  const n = INVALID_CALL_DEFECTS.length;
  fake.faults.push({ kind: "invalidCalls", count: n });
  const p = await page<Record<string, unknown>>(fake, "pageSize=12");
  assert.equal(p.results.length, 12 + n);
  assert.equal(p.total, 12, "a fault's objects are not the account's");

  const known = new Set(ids(calls));
  const bad = p.results.filter((o) => !known.has(o.callId as string));
  assert.equal(bad.length, n);
  bad.forEach((o, i) => {
    const { defect, field, reasonStartsWith } = INVALID_CALL_DEFECTS[i];
    // Unstorable whichever way the importer words it: refused by parseCall or by the text check.
    const parsed = parseCall(o);
    const reason = parsed.ok ? unstorableText(o) : parsed.reason;
    assert.ok(reason?.startsWith(reasonStartsWith), `${defect}: ${reason}`);
    assert.ok(reason?.startsWith(`${field}:`), defect);
    const storable = typeof o.callId === "string" && UUID.test(o.callId) &&
      typeof o.created === "string" && WITH_OFFSET.test(o.created);
    assert.equal(storable, defect === "NUL character in a string field", defect);
  });
  assert.equal(bad[0].callId, undefined);
  assert.equal(bad[3].callId, "call-000000000004");
  assert.equal(bad[2].callId, "badca11d-0000-4000-8000-000000000003");
  // Bad objects sit among the good ones, not only at the ends.
  assert.ok(known.has(p.results[0].callId as string));
  assert.ok(known.has(p.results[p.results.length - 1].callId as string));
  // The rotation goes on with the next fault.
  fake.faults.push({ kind: "invalidCalls", count: 1 });
  const again = (await page<Record<string, unknown>>(fake, "pageSize=1")).results;
  assert.equal(again.find((o) => !known.has(o.callId as string))!.callId, undefined);
});

Deno.test("oddCalls mixes in storable calls with one odd field each, listed with what the importer cannot read", async () => {
  const calls = generateAccount({ seed: 10, count: 12 });
  await using fake = await startFakeUltravox({ calls });
  const n = ODD_CALL_FIELDS.length;
  fake.faults.push({ kind: "oddCalls", count: n });
  const p = await page<Record<string, unknown>>(fake, "pageSize=12");
  assert.equal(p.results.length, 12 + n);
  const known = new Set(ids(calls));
  const odd = p.results.filter((o) => !known.has(o.callId as string));
  assert.equal(odd.length, n);
  const documented: Record<string, (v: unknown) => boolean> = {
    endReason: (v) => (END_REASONS as readonly unknown[]).includes(v),
    billedDuration: (v) => typeof v === "string" && /^-?\d+(\.\d{1,9})?s$/.test(v),
    agentId: (v) => v === null || (typeof v === "string" && UUID.test(v)),
    metadata: (v) => Object.values(v as object).every((x) => typeof x === "string"),
    recordingEnabled: (v) => typeof v === "boolean",
  };
  odd.forEach((o, i) => {
    const { oddity, field, unreadable } = ODD_CALL_FIELDS[i];
    assert.match(o.callId as string, UUID, oddity);
    assert.match(o.created as string, WITH_OFFSET, oddity);
    assert.equal(unstorableText(o), null, oddity);
    for (const [name, ok] of Object.entries(documented)) {
      assert.equal(ok(o[name]), name !== field, `${oddity}: ${name}`);
    }
    // An importer that reads leniently reports exactly these fields as unreadable.
    const parsed = parseCall(o) as { ok: boolean; unreadable?: string[] };
    if (parsed.ok && parsed.unreadable) assert.deepEqual(parsed.unreadable, unreadable, oddity);
  });
  assert.equal(odd[0].endReason, FUTURE_END_REASON);
});

Deno.test("addOddCalls lists lasting odd calls: ordinary calls of the account from then on", async () => {
  const calls = generateAccount({ seed: 17, count: 40 });
  await using fake = await startFakeUltravox({ calls });
  const odd = fake.addOddCalls(ODD_CALL_FIELDS.length, { amongNewest: 10 });
  assert.equal(fake.calls.length, 45);
  assert.equal((await page(fake, "")).total, 45);
  const walked = await walkIds(fake, "pageSize=7");
  assert.deepEqual(walked, ids(fake.calls));
  assert.ok(ids(odd).every((id) => walked.indexOf(id) < 15), "among the newest 10");
  assert.equal(fake.updateCall(odd[0].callId, { endReason: "hangup" }).endReason, "hangup");
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

Deno.test("quirks keep the seed's calls and add running calls, future end reasons, unknown fields, non-uuid agentIds and auto_delete", () => {
  const plain = generateAccount({ seed: 18, count: 2_000 });
  const quirky = generateAccount({ seed: 18, count: 2_000, quirks: true });
  assert.deepEqual(generateAccount({ seed: 18, count: 2_000, quirks: true }), quirky);
  assert.deepEqual(ids(quirky), ids(plain));
  assert.deepEqual(quirky.map((c) => c.created), plain.map((c) => c.created));
  const changed = quirky.filter((c, i) => JSON.stringify(c) !== JSON.stringify(plain[i]));
  assert.ok(changed.length < 300, `most calls as without quirks: ${changed.length} changed`);

  // The newest 0.5% are still running.
  for (const c of quirky.slice(0, 10)) {
    assert.equal(c.ended, null);
    assert.equal(c.endReason, null);
    assert.equal(c.billingStatus, "BILLING_STATUS_PENDING");
    assert.equal(c.billedDuration, null);
  }
  const count = (test: (c: FakeCall) => boolean) => quirky.filter(test).length;
  assert.ok(count((c) => c.endReason === FUTURE_END_REASON) >= 5);
  assert.ok(count((c) => typeof c.agentId === "string" && !UUID.test(c.agentId)) >= 5);
  assert.ok(count((c) => "callStageCount" in c && "vadProvider" in c) >= 50);
  assert.ok(count((c) => c.retentionPolicy === "auto_delete") >= 30);
  assert.ok(plain.every((c) => !("retentionPolicy" in c) && !("callStageCount" in c)));
});

// ---- the command line -------------------------------------------------------------------------

Deno.test("spawnStandIn serves a spec's accounts from one process at one baseUrl, until closed", async () => {
  const spec = {
    accounts: [
      { apiKey: "Aaaaaaaa.spawned-1", seed: 1, count: 30 },
      { apiKey: "Bbbbbbbb.spawned-2", seed: 2, count: 45, days: 30, quirks: true },
    ],
    latencyMs: 0,
    maxPageSize: 10,
  };
  const standIn = await spawnStandIn(spec);
  try {
    const walk = async (key: string) => {
      const seen: string[] = [];
      let url: string | null = `${standIn.baseUrl}/calls?pageSize=50`;
      while (url) {
        const res = await fetch(url, { headers: { "X-API-Key": key } });
        const body = await res.json() as Page;
        assert.ok(body.results.length <= 10, "maxPageSize");
        seen.push(...ids(body.results));
        url = body.next;
      }
      return seen;
    };
    assert.deepEqual(
      await walk("Aaaaaaaa.spawned-1"),
      ids(generateAccount({ seed: 1, count: 30, days: 365 })),
    );
    assert.deepEqual(
      await walk("Bbbbbbbb.spawned-2"),
      ids(generateAccount({ seed: 2, count: 45, days: 30, quirks: true })),
    );
    const res = await fetch(`${standIn.baseUrl}/calls`, { headers: { "X-API-Key": "nobody" } });
    await res.body?.cancel();
    assert.equal(res.status, 403);
  } finally {
    await standIn.close();
  }
  await assert.rejects(fetch(`${standIn.baseUrl}/calls`), TypeError);
});

Deno.test("the command line reads its spec from --spec <json> or --spec=<json>", () => {
  assert.equal(specArgument(["--spec", '{"accounts":[]}']), '{"accounts":[]}');
  assert.equal(specArgument(['--spec={"a":1}']), '{"a":1}');
  assert.equal(specArgument(["2000"]), null);
  assert.equal(specArgument([]), null);
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
