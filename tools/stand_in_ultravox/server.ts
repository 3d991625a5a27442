// A stand-in for the Ultravox REST API, faithful to docs/ULTRAVOX.md: GET /api/calls and
// GET /api/deleted_calls for several accounts on one server, told apart by X-API-Key as Ultravox
// does, paged the way Django REST Framework's CursorPagination pages (see pagination.ts).
// Calls change after they are listed (updateCall, deleteCall, auto_delete retention), and a test
// queues faults per account: slow answers, 429/5xx with Retry-After, dropped connections, cut or
// mangled bodies, invalid or odd call objects, calls arriving mid-walk. Fault rules aim the same
// faults at the requests a predicate picks (e.g. one time slice of a sliced walk), where
// concurrent walkers make the queue's order a race.

import { DEFAULT_BAD_CREATED, invalidCall, oddCall } from "./bad_objects.ts";
import { fakeKey } from "./accounts.ts";
import {
  type Cursor,
  decodeCursor,
  encodeCursor,
  type Entry,
  Listing,
  type ListPage,
  type ListQuery,
  readPageSize,
} from "./pagination.ts";
import { isoOfMicros, microsOf } from "./time.ts";

export { FUTURE_END_REASON, INVALID_CALL_DEFECTS, ODD_CALL_FIELDS } from "./bad_objects.ts";
export { fakeKey } from "./accounts.ts";
export { microsOf } from "./time.ts";

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
  retentionPolicy?: string | null;
  [field: string]: unknown;
}

/** What a call's fields become; `callId` and `created` never change. */
export type CallPatch = { [field: string]: unknown; callId?: never; created?: never };

/** A tombstone of GET /api/deleted_calls. */
export interface DeletedCall {
  callId: string;
  accountId: string;
  created: string;
  deletionTime: string;
  joined: string | null;
  ended: string | null;
  maxDuration: string | null;
  endReason: string | null;
  recordingEnabled: boolean;
  hadSummary: boolean;
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
  /**
   * `count` objects that cannot be stored (INVALID_CALL_DEFECTS), mixed into this one page of
   * /api/calls on top of its calls. Not part of the account: `total` and later walks do not
   * see them (addInvalidCalls makes lasting ones).
   */
  | { kind: "invalidCalls"; count: number }
  /** The same with storable calls with odd fields (ODD_CALL_FIELDS); addOddCalls makes lasting ones. */
  | { kind: "oddCalls"; count: number }
  /** These calls exist from this request on (new calls arriving during a walk). */
  | { kind: "addCalls"; calls: FakeCall[] };

/** A fault, for `times` consecutive requests (default 1), after `latencyMs` of waiting (default 0). */
export type FaultSpec = Fault & { times?: number; latencyMs?: number };

export interface RecordedRequest {
  /** 1 for the first request this account's log recorded. */
  n: number;
  method: string;
  path: string;
  /** The query string as received, e.g. "toDate=…&sort=-created". */
  search: string;
  query: Record<string, string>;
  keyPresent: boolean;
  /** The key was the account's current one. */
  keyOk: boolean;
  /** Date.now() on arrival. */
  at: number;
  /** Date.now() once answered (0 until then). */
  doneAt: number;
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

/** A request as a fault rule sees it: where it went and its query as received. */
export interface RuleRequest {
  path: string;
  query: Record<string, string>;
}

/**
 * A fault for the requests `match` picks, whatever their order: e.g. a 429 storm on one time
 * slice of a sliced walk only (createdOverlaps), or a slow answer for every page after the
 * first (those carrying a cursor).
 */
export interface FaultRule {
  match: (req: RuleRequest) => boolean;
  /** As in the queue; `times` and `latencyMs` of a FaultSpec mean the same here. */
  fault: Fault & { latencyMs?: number };
  /** Matching requests it is given to (default: every one, until removed). */
  times?: number;
}

/** What add() returns: how often the rule was given, and its removal (the storm ends). */
export interface RuleHandle {
  readonly hits: number;
  remove(): void;
}

/**
 * Rules tried before the queue, first added first: a request a rule takes leaves the queue
 * untouched (the queue's next fault goes to the next request no rule takes).
 */
export class FaultRules {
  #rules: { rule: FaultRule; left: number; hits: number }[] = [];

  add(rule: FaultRule): RuleHandle {
    const times = rule.times ?? Infinity;
    if (!(times >= 1) || (times !== Infinity && !Number.isInteger(times))) {
      throw new RangeError(`times must be ≥ 1: ${times}`);
    }
    const entry = { rule, left: times, hits: 0 };
    this.#rules.push(entry);
    return {
      get hits() {
        return entry.hits;
      },
      remove: () => void (this.#rules = this.#rules.filter((e) => e !== entry)),
    };
  }

  clear(): void {
    this.#rules = [];
  }

  /** @internal the server's side: the fault of the first rule that takes this request. */
  take(req: RuleRequest): FaultSpec | null {
    const entry = this.#rules.find((e) => e.left > 0 && e.rule.match(req));
    if (entry === undefined) return null;
    entry.left--;
    entry.hits++;
    return entry.rule.fault;
  }
}

/**
 * A rule's match: requests of /api/calls whose created range (fromDate, toDate; a missing one is
 * unbounded) shares an instant with [from, to] (inclusive; null: unbounded).
 */
export function createdOverlaps(
  from: string | null,
  to: string | null,
): (req: RuleRequest) => boolean {
  const bound = (v: string | null | undefined) => (v == null ? null : microsOf(v));
  const [lo, hi] = [bound(from), bound(to)];
  return ({ path, query }) => {
    if (path !== "/api/calls") return false;
    const [qFrom, qTo] = [bound(query.fromDate), bound(query.toDate)];
    return (qTo === null || lo === null || qTo >= lo) &&
      (qFrom === null || hi === null || qFrom <= hi);
  };
}

export interface FakeAccountOptions {
  /** DEFAULT_API_KEY for a server's first account, fakeKey() for the others. */
  apiKey?: string;
  /** The accountId of its tombstones; a random uuid by default. */
  accountId?: string;
  /** Tied calls (same `created`) are listed in the order given. */
  calls?: FakeCall[];
  deletedCalls?: DeletedCall[];
  /** Added to every request of this account. */
  latencyMs?: number;
}

export interface FakeUltravoxOptions extends FakeAccountOptions {
  /** More accounts on the same server, after the one the other options describe. */
  accounts?: FakeAccountOptions[];
  /** Larger pageSize values are served this many objects. */
  maxPageSize?: number;
  /** Objects per page when the request names no valid pageSize. */
  defaultPageSize?: number;
  /** `total` is optional upstream; a test can leave it out. */
  includeTotal?: boolean;
  /** 0 = ephemeral. */
  port?: number;
  /**
   * The API root written into `next`/`previous` (default: this server's own). Point it elsewhere
   * to prove a client takes only the cursor out of `next` and never requests it.
   */
  linkBase?: string;
}

/** One Ultravox account on the stand-in. */
export interface AccountHandle {
  readonly accountId: string;
  /** The key currently accepted; null once revoked. */
  readonly apiKey: string | null;
  /** Newest first, as the default sort lists them (without the objects of addInvalidCalls). */
  readonly calls: readonly FakeCall[];
  /** Tombstones, newest `created` first, as /api/deleted_calls lists them. */
  readonly deletedCalls: readonly DeletedCall[];
  /** Every request carrying this account's key, current or former. */
  readonly requests: RecordedRequest[];
  readonly faults: FaultQueue;
  /** Faults for the requests a predicate picks, tried before the queue. */
  readonly faultRules: FaultRules;
  /** Added to every request from now on. */
  latencyMs: number;
  addCalls(calls: FakeCall[]): void;
  /**
   * Changes a listed call (e.g. running → ended → billed) and returns it as now listed. A call
   * with `retentionPolicy: "auto_delete"` that is billed by it is deleted at once.
   */
  updateCall(callId: string, patch: CallPatch): FakeCall;
  /** Takes a call off /api/calls and lists its tombstone (deletionTime: now by default). */
  deleteCall(callId: string, deletionTime?: string): DeletedCall;
  /** Deletes every billed call with `retentionPolicy: "auto_delete"`, as Ultravox later does. */
  expireAutoDelete(): DeletedCall[];
  /**
   * Lasting objects that cannot be stored (INVALID_CALL_DEFECTS, continuing the account's
   * rotation), each listed just after one of the newest `amongNewest` listed objects (default:
   * all), spread evenly. `total` counts them; `calls` leaves them out.
   */
  addInvalidCalls(count: number, opts?: { amongNewest?: number }): Record<string, unknown>[];
  /** Lasting odd calls (ODD_CALL_FIELDS), placed the same way; they are ordinary calls then. */
  addOddCalls(count: number, opts?: { amongNewest?: number }): FakeCall[];
  /** Rotate (a new key) or revoke (null) the accepted key. */
  setKey(key: string | null): void;
}

/** The server; as an AccountHandle it is its first account. */
export interface FakeUltravox extends AccountHandle {
  /** http://127.0.0.1:<port>/api */
  readonly baseUrl: string;
  readonly accounts: readonly AccountHandle[];
  /** Another account on this server, from now on. */
  addAccount(opts?: FakeAccountOptions): AccountHandle;
  close(): Promise<void>;
  /** `await using fake = await startFakeUltravox()` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

export const DEFAULT_API_KEY = "Zk3pQ9aB.k2Vf8sLw0qR7tYx1mN4cE6hJ9uP3dG5z";

/** The billing statuses of a call not billed yet; any other one means billing is over. */
const UNBILLED = new Set([undefined, null, "BILLING_STATUS_PENDING", "BILLING_STATUS_UNSPECIFIED"]);

/** A listed object: a call, or an object that is not one (addInvalidCalls). */
interface Listed {
  body: Record<string, unknown>;
  isCall: boolean;
}

class Account implements AccountHandle {
  readonly accountId: string;
  readonly requests: RecordedRequest[] = [];
  readonly faults = new FaultQueue();
  readonly faultRules = new FaultRules();
  latencyMs: number;
  /** Keys this account had before; requests with them are still logged here. */
  readonly formerKeys = new Set<string>();
  readonly listing = new Listing<Listed>();
  readonly tombstones = new Listing<DeletedCall>();
  /** The rotation of invalid and odd objects, shared by faults and lasting ones. */
  invalidSerial = 0;
  oddSerial = 0;
  #key: string | null;
  #byId = new Map<string, Entry<Listed>>();
  #deletedIds = new Set<string>();
  /** Whether another account of the server holds a key now. */
  #keyTaken: (key: string) => boolean;

  constructor(opts: FakeAccountOptions, key: string, keyTaken: (key: string) => boolean) {
    this.#keyTaken = keyTaken;
    this.accountId = opts.accountId ?? crypto.randomUUID();
    this.latencyMs = opts.latencyMs ?? 0;
    this.#key = key;
    if (opts.calls) this.addCalls(opts.calls);
    for (const t of opts.deletedCalls ?? []) this.#addTombstone(t);
  }

  get apiKey(): string | null {
    return this.#key;
  }

  get calls(): FakeCall[] {
    return this.listing.entries().filter((e) => e.item.isCall).map((e) => e.item.body as FakeCall);
  }

  get deletedCalls(): DeletedCall[] {
    return this.tombstones.items();
  }

  addCalls(calls: FakeCall[]): void {
    const added: { item: Listed; micros: bigint }[] = [];
    const ids = new Set<string>();
    for (const call of calls) {
      if (
        this.#byId.has(call.callId) || this.#deletedIds.has(call.callId) || ids.has(call.callId)
      ) {
        throw new Error(`duplicate callId ${call.callId}`);
      }
      const micros = microsOf(call.created);
      if (micros === null) throw new Error(`bad created ${call.created} on ${call.callId}`);
      ids.add(call.callId);
      added.push({ item: { body: call, isCall: true }, micros });
    }
    for (const entry of this.listing.add(added)) {
      this.#byId.set((entry.item.body as FakeCall).callId, entry);
    }
  }

  updateCall(callId: string, patch: CallPatch): FakeCall {
    const entry = this.#entry(callId);
    for (const field of ["callId", "created"]) {
      if (field in patch) throw new Error(`updateCall cannot change ${field}`);
    }
    // A new object, so a call shared with another account or held by a test stays as it was.
    const call = { ...(entry.item.body as FakeCall), ...patch } as FakeCall;
    entry.item = { body: call, isCall: true };
    if (call.retentionPolicy === "auto_delete" && !UNBILLED.has(call.billingStatus)) {
      this.deleteCall(callId);
    }
    return call;
  }

  deleteCall(callId: string, deletionTime = isoOfMicros(BigInt(Date.now()) * 1000n)): DeletedCall {
    const entry = this.#entry(callId);
    const call = entry.item.body as FakeCall;
    this.listing.remove(entry);
    this.#byId.delete(callId);
    return this.#addTombstone({
      callId,
      accountId: this.accountId,
      created: call.created,
      deletionTime,
      joined: call.joined ?? null,
      ended: call.ended ?? null,
      maxDuration: call.maxDuration ?? null,
      endReason: call.endReason ?? null,
      recordingEnabled: call.recordingEnabled ?? false,
      hadSummary: call.summary != null || call.shortSummary != null,
    });
  }

  expireAutoDelete(): DeletedCall[] {
    return this.calls
      .filter((c) => c.retentionPolicy === "auto_delete" && !UNBILLED.has(c.billingStatus))
      .map((c) => this.deleteCall(c.callId));
  }

  addInvalidCalls(count: number, opts: { amongNewest?: number } = {}): Record<string, unknown>[] {
    const objects = this.#anchors(count, opts.amongNewest).map((at) => ({
      item: { body: invalidCall(this.invalidSerial++, isoOfMicros(at)), isCall: false },
      micros: at,
    }));
    this.listing.add(objects);
    return objects.map((o) => o.item.body);
  }

  addOddCalls(count: number, opts: { amongNewest?: number } = {}): FakeCall[] {
    const calls = this.#anchors(count, opts.amongNewest)
      .map((at) => oddCall(this.oddSerial++, isoOfMicros(at)) as FakeCall);
    this.addCalls(calls);
    return calls;
  }

  setKey(key: string | null): void {
    if (key !== null && key !== this.#key && this.#keyTaken(key)) {
      throw new Error(`another account has the key ${key}`);
    }
    if (this.#key !== null) this.formerKeys.add(this.#key);
    if (key !== null) this.formerKeys.delete(key);
    this.#key = key;
  }

  #entry(callId: string): Entry<Listed> {
    const entry = this.#byId.get(callId);
    if (entry === undefined) throw new Error(`no listed call ${callId}`);
    return entry;
  }

  #addTombstone(t: DeletedCall): DeletedCall {
    const micros = microsOf(t.created);
    if (micros === null) throw new Error(`bad created ${t.created} on tombstone ${t.callId}`);
    this.tombstones.add([{ item: t, micros }]);
    this.#deletedIds.add(t.callId);
    return t;
  }

  /** The instants of `count` objects spread evenly among the newest `among` listed ones. */
  #anchors(count: number, among = Infinity): bigint[] {
    const listed = this.listing.entries();
    const k = Math.min(among, listed.length);
    if (k === 0) return Array(count).fill(microsOf(DEFAULT_BAD_CREATED)!);
    return Array.from({ length: count }, (_, i) => {
      const at = Math.min(k - 1, Math.floor(((i + 1) * k) / (count + 1)));
      return listed[at].micros;
    });
  }
}

export function startFakeUltravox(opts: FakeUltravoxOptions = {}): Promise<FakeUltravox> {
  const maxPageSize = opts.maxPageSize ?? 100;
  const defaultPageSize = opts.defaultPageSize ?? 20;
  const includeTotal = opts.includeTotal ?? true;
  const accounts: Account[] = [];
  const keyTaken = (key: string) => accounts.some((a) => a.apiKey === key);
  const addAccount = (o: FakeAccountOptions, fallbackKey: string): Account => {
    const key = o.apiKey ?? fallbackKey;
    if (keyTaken(key)) throw new Error(`another account has the key ${key}`);
    const account = new Account(o, key, keyTaken);
    accounts.push(account);
    return account;
  };
  addAccount(opts, DEFAULT_API_KEY);
  for (const o of opts.accounts ?? []) addAccount(o, fakeKey());

  // Aborted by close(), so a slow answer a client gave up on does not hold the server open.
  const closing = new AbortController();

  /** The account a key belongs to (now or before); anything else is the first account's. */
  function route(given: string | null): Account {
    if (given === null) return accounts[0];
    return accounts.find((a) => a.apiKey === given) ??
      accounts.find((a) => a.formerKeys.has(given)) ?? accounts[0];
  }

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const given = req.headers.get("X-API-Key");
    const account = route(given);
    const spec = account.faultRules.take({
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
    }) ?? account.faults.take();
    const record: RecordedRequest = {
      n: account.requests.length + 1,
      method: req.method,
      path: url.pathname,
      search: url.search.replace(/^\?/, ""),
      query: Object.fromEntries(url.searchParams),
      keyPresent: given !== null,
      keyOk: given !== null && given === account.apiKey,
      at: Date.now(),
      doneAt: 0,
      fault: spec?.kind ?? null,
      status: 0,
    };
    account.requests.push(record);

    const wait = account.latencyMs + (spec?.latencyMs ?? 0) +
      (spec?.kind === "latency" ? spec.ms : 0);
    if (wait > 0) await sleep(wait, closing.signal);
    if (spec?.kind === "addCalls") account.addCalls(spec.calls);

    let res: Response;
    if (spec?.kind === "status") {
      res = statusFault(spec);
    } else if (spec?.kind === "malformed") {
      res = new Response(spec.body ?? "<html><body><h1>502 Bad Gateway</h1></body></html>", {
        headers: { "content-type": spec.contentType ?? "text/html" },
      });
    } else {
      res = answer(req, url, given, account, spec);
      if (spec?.kind === "truncated") {
        const text = await res.text();
        res = new Response(text.slice(0, Math.floor(text.length / 2)), res);
      } else if (spec?.kind === "reset") {
        res = dropAfter(new Uint8Array(await res.arrayBuffer()), spec.afterBytes ?? 0, res);
      }
    }
    record.status = res.status;
    record.doneAt = Date.now();
    return res;
  }

  /** What Ultravox itself would answer. */
  function answer(
    req: Request,
    url: URL,
    given: string | null,
    account: Account,
    spec: FaultSpec | null,
  ): Response {
    const list = url.pathname === "/api/calls"
      ? "calls"
      : url.pathname === "/api/deleted_calls"
      ? "deleted_calls"
      : null;
    if (list === null) return json(404, { detail: "Not found." });
    if (given === null) {
      return json(401, { detail: "Authentication credentials were not provided." });
    }
    if (given !== account.apiKey) return json(403, { detail: "Invalid API key." });
    if (req.method !== "GET") return json(405, { detail: `Method "${req.method}" not allowed.` });

    // The deleted-calls list has no sort parameter: one given is ignored, as unknown ones are.
    const q = readQuery(url.searchParams, list === "calls", defaultPageSize, maxPageSize);
    if ("status" in q) return json(q.status, q.body);
    const page: ListPage<unknown> = list === "deleted_calls"
      ? account.tombstones.page(q)
      : withBodies(account.listing.page(q));
    const linkBase = opts.linkBase?.replace(/\/+$/, "") ?? `${url.origin}/api`;
    // DRF's replace_query_param: the request's parameters, the cursor set, sorted by name.
    const link = (cursor: Cursor | null) => {
      if (cursor === null) return null;
      const params = new URLSearchParams(url.searchParams);
      params.set("cursor", encodeCursor(cursor));
      params.sort();
      return `${linkBase}/${list}?${params}`;
    };
    if (list === "calls" && spec?.kind === "invalidCalls") {
      mixIn(page.results, spec.count, () => invalidCall(account.invalidSerial++));
    }
    if (list === "calls" && spec?.kind === "oddCalls") {
      mixIn(page.results, spec.count, () => oddCall(account.oddSerial++));
    }
    return json(200, {
      next: link(page.next),
      previous: link(page.previous),
      ...(includeTotal ? { total: page.total } : {}),
      results: page.results,
    });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: opts.port ?? 0, onListen() {} },
    handle,
  );

  const first = accounts[0];
  const fake: FakeUltravox = {
    baseUrl: `http://127.0.0.1:${server.addr.port}/api`,
    accounts,
    addAccount: (o = {}) => addAccount(o, fakeKey()),
    get accountId() {
      return first.accountId;
    },
    get apiKey() {
      return first.apiKey;
    },
    get calls() {
      return first.calls;
    },
    get deletedCalls() {
      return first.deletedCalls;
    },
    requests: first.requests,
    faults: first.faults,
    faultRules: first.faultRules,
    get latencyMs() {
      return first.latencyMs;
    },
    set latencyMs(ms: number) {
      first.latencyMs = ms;
    },
    addCalls: (calls) => first.addCalls(calls),
    updateCall: (callId, patch) => first.updateCall(callId, patch),
    deleteCall: (callId, deletionTime) => first.deleteCall(callId, deletionTime),
    expireAutoDelete: () => first.expireAutoDelete(),
    addInvalidCalls: (count, o) => first.addInvalidCalls(count, o),
    addOddCalls: (count, o) => first.addOddCalls(count, o),
    setKey: (key) => first.setKey(key),
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

function withBodies(page: ListPage<Listed>): ListPage<unknown> {
  return { ...page, results: page.results.map((l) => l.body) };
}

/** Spread through the page, so a mapper cannot get away with checking its ends only. */
function mixIn(results: unknown[], count: number, make: () => unknown): void {
  for (let i = 0; i < count; i++) {
    results.splice(Math.floor(((i + 1) * results.length) / (count + 1)), 0, make());
  }
}

// ---- query parameters, as Ultravox reads them ----------------------------------------------

function readQuery(
  params: URLSearchParams,
  sortable: boolean,
  defaultPageSize: number,
  maxPageSize: number,
): ListQuery | { status: number; body: Record<string, unknown> } {
  const sort = sortable ? params.get("sort") ?? "-created" : "-created";
  if (sort !== "-created" && sort !== "created") {
    return {
      status: 400,
      body: { sort: [`Select a valid choice. ${sort} is not one of the choices.`] },
    };
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
    if (micros === null) return { status: 400, body: { [name]: ["Enter a valid date/time."] } };
    bounds[key] = micros;
  }
  // Filters are checked before the paginator reads its cursor, as DRF's view does.
  let cursor: Cursor | null = null;
  const raw = params.get("cursor");
  if (raw !== null) {
    cursor = decodeCursor(raw);
    if (cursor === null) return { status: 404, body: { detail: "Invalid cursor" } };
  }
  return {
    ...bounds,
    descending: sort === "-created",
    pageSize: readPageSize(params.get("pageSize"), defaultPageSize, maxPageSize),
    cursor,
  };
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
