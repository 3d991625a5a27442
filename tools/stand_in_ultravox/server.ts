// A stand-in for the Ultravox REST API (GET /api/calls), faithful to shared/ULTRAVOX.md, with
// faults a test queues per request: slow answers, 429/5xx with Retry-After, dropped connections,
// cut or mangled bodies, invalid call objects, calls arriving mid-walk.
//
// It keeps its own date arithmetic (Date.parse for the seconds, the digits for the fraction)
// instead of reusing call.ts, so a bug there cannot hide behind the same bug here.

export interface FakeCall {
  callId: string;
  created: string;
  joined?: string | null;
  ended?: string | null;
  endReason?: string | null;
  billedDuration?: string | null;
  billingStatus?: string;
  shortSummary?: string | null;
  summary?: string | null;
  agentId?: string | null;
  agent?: { agentId: string; name: string } | null;
  metadata?: Record<string, string>;
  recordingEnabled?: boolean;
  maxDuration?: string;
  joinTimeout?: string;
  [field: string]: unknown;
}

/** What the next request(s) get instead of, or on top of, a normal answer. */
export type Fault =
  /** Served normally; queue it to aim a later fault at a later request. */
  | { kind: "pass" }
  /** Wait `ms`, then serve normally. */
  | { kind: "latency"; ms: number }
  /** This status instead of the answer; Ultravox sends Retry-After with 429 and 503. */
  | {
    kind: "status";
    status: number;
    retryAfter?: string;
    body?: string;
    headers?: Record<string, string>;
  }
  /** The headers of the normal answer, `afterBytes` of its body (default 0), then the connection drops. */
  | { kind: "reset"; afterBytes?: number }
  /** The normal status and headers with the first half of the body, as a complete response. */
  | { kind: "truncated" }
  /** 200 with a body that is not a calls page (default: an HTML error page). */
  | { kind: "malformed"; body?: string; contentType?: string }
  /** `count` invalid call objects mixed into the page (see INVALID_CALL_DEFECTS). */
  | { kind: "invalidCalls"; count: number }
  /** These calls exist from this request on (new calls arriving during a walk). */
  | { kind: "addCalls"; calls: FakeCall[] };

/** A fault, for `times` consecutive requests (default 1), after `latencyMs` of waiting (default 0). */
export type FaultSpec = Fault & { times?: number; latencyMs?: number };

export interface RecordedRequest {
  /** 1 for the first request this server received. */
  n: number;
  method: string;
  path: string;
  /** The query string as received, e.g. "toDate=…&sort=-created". */
  search: string;
  query: Record<string, string>;
  keyPresent: boolean;
  keyOk: boolean;
  /** Date.now() on arrival. */
  at: number;
  fault: Fault["kind"] | null;
  /** Status line sent (also for a reset, whose body is then cut off). */
  status: number;
}

/** Each request takes the head of the queue, in order; an empty queue means "serve normally". */
export class FaultQueue {
  #queue: { spec: FaultSpec; left: number }[] = [];

  push(...specs: FaultSpec[]): this {
    for (const spec of specs) {
      const times = spec.times ?? 1;
      if (!Number.isInteger(times) || times < 1) {
        throw new RangeError(`times must be ≥ 1: ${times}`);
      }
      this.#queue.push({ spec, left: times });
    }
    return this;
  }

  /** Requests still to be given a queued fault. */
  get pending(): number {
    return this.#queue.reduce((sum, q) => sum + q.left, 0);
  }

  clear(): void {
    this.#queue = [];
  }

  /** @internal the server's side: the fault for the request arriving now. */
  take(): FaultSpec | null {
    const head = this.#queue[0];
    if (head === undefined) return null;
    if (--head.left === 0) this.#queue.shift();
    return head.spec;
  }
}

export interface FakeUltravoxOptions {
  apiKey?: string;
  calls?: FakeCall[];
  /** Larger pageSize values are served this many calls. */
  maxPageSize?: number;
  /** Calls per page when the request names no pageSize. */
  defaultPageSize?: number;
  /** `total` is optional upstream; a test can leave it out. */
  includeTotal?: boolean;
  /** Added to every request. */
  latencyMs?: number;
  /** 0 = ephemeral. */
  port?: number;
  /**
   * The API root written into `next`/`previous` (default: this server's own). Point it elsewhere
   * to prove a client takes only the cursor out of `next` and never requests it.
   */
  linkBase?: string;
}

export interface FakeUltravox {
  /** http://127.0.0.1:<port>/api */
  readonly baseUrl: string;
  /** The key currently accepted; null once revoked. */
  readonly apiKey: string | null;
  /** Newest first, as the default sort lists them. */
  readonly calls: readonly FakeCall[];
  readonly requests: RecordedRequest[];
  readonly faults: FaultQueue;
  /** Added to every request from now on. */
  latencyMs: number;
  addCalls(calls: FakeCall[]): void;
  /** Rotate (a new key) or revoke (null) the accepted key. */
  setKey(key: string | null): void;
  close(): Promise<void>;
  /** `await using fake = await startFakeUltravox()` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

export const DEFAULT_API_KEY = "Zk3pQ9aB.k2Vf8sLw0qR7tYx1mN4cE6hJ9uP3dG5z";

/** The defect of each invalid call the invalidCalls fault mixes in, in the order it uses them. */
export const INVALID_CALL_DEFECTS = [
  { defect: "missing callId", reasonStartsWith: "callId:" },
  { defect: "created is not a date-time", reasonStartsWith: "created:" },
  { defect: "unknown endReason", reasonStartsWith: "endReason:" },
  { defect: "callId is not a uuid", reasonStartsWith: "callId:" },
  { defect: "billedDuration has no s suffix", reasonStartsWith: "billedDuration:" },
  { defect: "created has no offset", reasonStartsWith: "created:" },
] as const;

export function startFakeUltravox(opts: FakeUltravoxOptions = {}): Promise<FakeUltravox> {
  let apiKey: string | null = opts.apiKey ?? DEFAULT_API_KEY;
  const maxPageSize = opts.maxPageSize ?? 100;
  const defaultPageSize = opts.defaultPageSize ?? 20;
  const includeTotal = opts.includeTotal ?? true;
  const store = new CallStore();
  if (opts.calls) store.add(opts.calls);
  const faults = new FaultQueue();
  const requests: RecordedRequest[] = [];
  // Aborted by close(), so a slow answer a client gave up on does not hold the server open.
  const closing = new AbortController();
  let invalidSerial = 0;

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const given = req.headers.get("X-API-Key");
    const spec = faults.take();
    const record: RecordedRequest = {
      n: requests.length + 1,
      method: req.method,
      path: url.pathname,
      search: url.search.replace(/^\?/, ""),
      query: Object.fromEntries(url.searchParams),
      keyPresent: given !== null,
      keyOk: given !== null && given === apiKey,
      at: Date.now(),
      fault: spec?.kind ?? null,
      status: 0,
    };
    requests.push(record);

    const wait = fake.latencyMs + (spec?.latencyMs ?? 0) + (spec?.kind === "latency" ? spec.ms : 0);
    if (wait > 0) await sleep(wait, closing.signal);
    if (spec?.kind === "addCalls") store.add(spec.calls);

    let res: Response;
    if (spec?.kind === "status") {
      res = statusFault(spec);
    } else if (spec?.kind === "malformed") {
      res = new Response(spec.body ?? "<html><body><h1>502 Bad Gateway</h1></body></html>", {
        headers: { "content-type": spec.contentType ?? "text/html" },
      });
    } else {
      res = answer(req, url, given, spec?.kind === "invalidCalls" ? spec.count : 0);
      if (spec?.kind === "truncated") {
        const text = await res.text();
        res = new Response(text.slice(0, Math.floor(text.length / 2)), res);
      } else if (spec?.kind === "reset") {
        res = dropAfter(new Uint8Array(await res.arrayBuffer()), spec.afterBytes ?? 0, res);
      }
    }
    record.status = res.status;
    return res;
  }

  /** What Ultravox itself would answer. */
  function answer(req: Request, url: URL, given: string | null, invalid: number): Response {
    if (url.pathname !== "/api/calls") return json(404, { detail: "Not found." });
    if (given === null) {
      return json(401, { detail: "Authentication credentials were not provided." });
    }
    if (given !== apiKey) return json(403, { detail: "Invalid API key." });
    if (req.method !== "GET") return json(405, { detail: `Method "${req.method}" not allowed.` });

    const q = readQuery(url.searchParams, defaultPageSize, maxPageSize);
    if ("error" in q) return json(400, q.error);
    const page = store.page(q);
    const linkBase = opts.linkBase?.replace(/\/+$/, "") ?? `${url.origin}/api`;
    const link = (cursor: string | null) => {
      if (cursor === null) return null;
      const params = new URLSearchParams(url.searchParams);
      params.set("cursor", cursor);
      return `${linkBase}/calls?${params}`;
    };
    const results: unknown[] = [...page.results];
    for (let i = 0; i < invalid; i++) {
      // Spread through the page, so a mapper cannot get away with checking its ends only.
      const at = Math.floor(((i + 1) * results.length) / (invalid + 1));
      results.splice(at, 0, invalidCall(invalidSerial++));
    }
    return json(200, {
      next: link(page.next),
      previous: link(page.previous),
      ...(includeTotal ? { total: page.total } : {}),
      results,
    });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: opts.port ?? 0, onListen() {} },
    handle,
  );

  const fake: FakeUltravox = {
    baseUrl: `http://127.0.0.1:${server.addr.port}/api`,
    get apiKey() {
      return apiKey;
    },
    get calls() {
      return store.list();
    },
    requests,
    faults,
    latencyMs: opts.latencyMs ?? 0,
    addCalls: (calls) => store.add(calls),
    setKey(key) {
      apiKey = key;
    },
    async close() {
      closing.abort();
      await server.shutdown();
    },
    [Symbol.asyncDispose]() {
      return fake.close();
    },
  };
  return Promise.resolve(fake);
}

// ---- the calls and their order -------------------------------------------------------------

interface Entry {
  call: FakeCall;
  micros: bigint;
}

interface PageQuery {
  from: bigint | null;
  to: bigint | null;
  descending: boolean;
  pageSize: number;
  cursor: Position | null;
}

/** DRF-style cursor: where the last page ended, and which way the walk goes. */
interface Position {
  micros: bigint;
  callId: string;
  reverse: boolean;
}

class CallStore {
  /** Newest first; ties on `created` broken by callId, descending. */
  #desc: Entry[] = [];
  /** The same, oldest first. */
  #asc: Entry[] = [];
  #ids = new Set<string>();

  add(calls: FakeCall[]): void {
    for (const call of calls) {
      if (this.#ids.has(call.callId)) throw new Error(`duplicate callId ${call.callId}`);
      const micros = microsOf(call.created);
      if (micros === null) throw new Error(`bad created ${call.created} on ${call.callId}`);
      this.#ids.add(call.callId);
      this.#desc.push({ call, micros });
    }
    this.#desc.sort((a, b) => compare(b, a.micros, a.call.callId));
    this.#asc = this.#desc.toReversed();
  }

  list(): FakeCall[] {
    return this.#desc.map((e) => e.call);
  }

  /** Binary searches only, so a bench can page through 100,000 calls without the fake showing. */
  page(q: PageQuery) {
    const walk = q.descending ? this.#desc : this.#asc;
    // Where `e` is in walking order relative to a position: < 0 before it, > 0 after it.
    const order = (e: Entry, p: Position) =>
      (q.descending ? -1 : 1) * compare(e, p.micros, p.callId);
    // The date range is one run of the walking order.
    const lo = firstIndex(
      walk,
      (e) =>
        q.descending ? q.to === null || e.micros <= q.to : q.from === null || e.micros >= q.from,
    );
    const hi = Math.max(
      lo,
      firstIndex(
        walk,
        (e) =>
          q.descending ? q.from !== null && e.micros < q.from : q.to !== null && e.micros > q.to,
      ),
    );
    const p = q.cursor;
    let start: number;
    let end: number;
    if (p === null) {
      [start, end] = [lo, Math.min(lo + q.pageSize, hi)];
    } else if (!p.reverse) {
      start = Math.min(hi, Math.max(lo, firstIndex(walk, (e) => order(e, p) > 0)));
      end = Math.min(start + q.pageSize, hi);
    } else {
      end = Math.min(hi, Math.max(lo, firstIndex(walk, (e) => order(e, p) >= 0)));
      start = Math.max(lo, end - q.pageSize);
    }
    const slice = walk.slice(start, end);
    const first = slice[0];
    const last = slice[slice.length - 1];
    return {
      results: slice.map((e) => e.call),
      next: last && end < hi ? encodeCursor(last, false) : null,
      previous: first && start > lo ? encodeCursor(first, true) : null,
      total: hi - lo,
    };
  }
}

/** The first index where `test` holds, for a test that is false and then true along `xs`. */
function firstIndex<T>(xs: T[], test: (x: T) => boolean): number {
  let [lo, hi] = [0, xs.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (test(xs[mid])) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** By `created` to the microsecond, then by callId. */
function compare(e: Entry, micros: bigint, callId: string): number {
  if (e.micros !== micros) return e.micros < micros ? -1 : 1;
  return e.call.callId < callId ? -1 : e.call.callId > callId ? 1 : 0;
}

function encodeCursor(e: Entry, reverse: boolean): string {
  const params = new URLSearchParams({ p: e.call.created, k: e.call.callId });
  if (reverse) params.set("r", "1");
  return btoa(params.toString());
}

function decodeCursor(cursor: string): Position | null {
  let params: URLSearchParams;
  try {
    params = new URLSearchParams(atob(cursor));
  } catch {
    return null;
  }
  const created = params.get("p");
  const callId = params.get("k");
  const micros = created === null ? null : microsOf(created);
  if (micros === null || callId === null || callId === "") return null;
  return { micros, callId, reverse: params.get("r") === "1" };
}

// ---- query parameters, as Ultravox reads them ----------------------------------------------

function readQuery(
  params: URLSearchParams,
  defaultPageSize: number,
  maxPageSize: number,
): PageQuery | { error: Record<string, unknown> } {
  const sort = params.get("sort") ?? "-created";
  if (sort !== "-created" && sort !== "created") {
    return { error: { sort: [`Select a valid choice. ${sort} is not one of the choices.`] } };
  }
  let pageSize = defaultPageSize;
  const size = params.get("pageSize");
  if (size !== null) {
    if (!/^\d+$/.test(size) || Number(size) < 1) {
      return { error: { pageSize: ["A valid integer is required."] } };
    }
    pageSize = Math.min(Number(size), maxPageSize);
  }
  const bounds: { from: bigint | null; to: bigint | null } = { from: null, to: null };
  for (
    const [name, key, time] of [
      ["fromDate", "from", "T00:00:00Z"],
      ["toDate", "to", "T23:59:59.999999Z"],
    ] as const
  ) {
    const value = params.get(name);
    if (value === null) continue;
    // A bare date is that whole day: from its first microsecond, to its last.
    const micros = microsOf(/^\d{4}-\d{2}-\d{2}$/.test(value) ? value + time : value);
    if (micros === null) return { error: { [name]: ["Enter a valid date/time."] } };
    bounds[key] = micros;
  }
  let cursor: Position | null = null;
  const raw = params.get("cursor");
  if (raw !== null) {
    cursor = decodeCursor(raw);
    if (cursor === null) return { error: { detail: "Invalid cursor" } };
  }
  return { ...bounds, descending: sort === "-created", pageSize, cursor };
}

/**
 * Microseconds since the epoch of an ISO date-time, null if it is not one. Extra fraction digits
 * are dropped, as Django's parser drops them; no offset means UTC.
 */
export function microsOf(text: string): bigint | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$/
    .exec(text);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s = "00", fraction = "", zone = "Z"] = m;
  // Date.parse would roll 2026-02-30 over to March; a real calendar date round-trips.
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return null;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone}`);
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * 1000n + BigInt((fraction + "000000").slice(0, 6));
}

// ---- responses ------------------------------------------------------------------------------

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function statusFault(
  { status, retryAfter, body, headers: extra }: Extract<Fault, { kind: "status" }>,
): Response {
  const headers: Record<string, string> = {
    ...(retryAfter === undefined ? {} : { "Retry-After": retryAfter }),
    ...extra,
  };
  if (body !== undefined) {
    return new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });
  }
  const detail = status === 429
    ? "Request was throttled."
    : status >= 500
    ? "Service temporarily unavailable, try again later."
    : "Request failed.";
  return json(status, { detail }, headers);
}

/** Sends the status, headers and first `afterBytes` bytes of a response, then drops the line. */
function dropAfter(body: Uint8Array, afterBytes: number, like: Response): Response {
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (afterBytes > 0) controller.enqueue(body.slice(0, afterBytes));
      // Ending short of the promised content-length makes Deno.serve drop the connection; an
      // erroring stream would too, but Deno.serve logs its stack trace.
      controller.close();
    },
  });
  const headers = new Headers(like.headers);
  headers.set("content-length", String(body.length));
  return new Response(stream, { status: like.status, headers });
}

/** One invalid call object: a plausible call with exactly one defect. */
function invalidCall(serial: number): Record<string, unknown> {
  const n = String(serial + 1).padStart(12, "0");
  const call: Record<string, unknown> = {
    callId: `badca11d-0000-4000-8000-${n}`,
    created: "2026-10-01T12:00:00.000001Z",
    joined: "2026-10-01T12:00:00.500000Z",
    ended: "2026-10-01T12:01:00.500000Z",
    endReason: "hangup",
    billedDuration: "61s",
    billingStatus: "BILLING_STATUS_BILLED",
    shortSummary: null,
    summary: null,
    agent: null,
    agentId: null,
    metadata: {},
    recordingEnabled: false,
  };
  const defect = INVALID_CALL_DEFECTS[serial % INVALID_CALL_DEFECTS.length].defect;
  if (defect === "missing callId") delete call.callId;
  if (defect === "created is not a date-time") call.created = "yesterday";
  if (defect === "unknown endReason") call.endReason = "exploded";
  if (defect === "callId is not a uuid") call.callId = `call-${n}`;
  if (defect === "billedDuration has no s suffix") call.billedDuration = "61 seconds";
  if (defect === "created has no offset") call.created = "2026-10-01T12:00:00.000001";
  return call;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
