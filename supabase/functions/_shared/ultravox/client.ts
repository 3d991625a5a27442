// Reads pages of calls from Ultravox (GET /api/calls), retrying what may pass and failing fast on
// what will not. One listCalls() is one page; the caller walks the pages with nextCursor.
//
// Facts this relies on are in docs/ULTRAVOX.md: X-API-Key auth, `next` is an absolute URL whose
// `cursor` we take out and resend with our own parameters, 429/503 carry Retry-After, a cursor
// the server cannot decode gets 404. What the engine does with each error kind is in
// docs/ARCHITECTURE.md §5 ("Paging", "Errors", "Resuming by time").

import {
  cursorRejectedError,
  excerptOf,
  oversizedPageError,
  permanentError,
  rateLimitedError,
  transientError,
  UltravoxError,
  withoutKeyPrefixAtEnd,
} from "./errors.ts";

export interface ListCallsParams {
  /** Inclusive lower bound on `created`; null = from the first call. */
  fromDate: string | null;
  /** Inclusive upper bound on `created`. */
  toDate: string;
  pageSize: number;
  /** From the previous page's nextCursor; null for the first page. */
  cursor: string | null;
}

export interface CallsPage {
  /** The call objects as received, unvalidated (see call.ts). */
  results: unknown[];
  /** null when this was the last page. */
  nextCursor: string | null;
  /**
   * Ultravox's count of the filtered calls; null (unknown) when absent, not a non-negative
   * integer, or beyond the Postgres `integer` range the job's total_calls column holds.
   */
  total: number | null;
  /** HTTP requests this page took, retries included. */
  requests: number;
}

export interface UltravoxClientOptions {
  /** ULTRAVOX_API_BASE, ending with /api (a trailing slash is tolerated). */
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source in [0, 1). */
  random?: () => number;
  /** Per request, headers and body together. */
  timeoutMs?: number;
  /** Per page, the first request included. */
  maxAttempts?: number;
  baseDelayMs?: number;
  /**
   * Cap on any single wait (so a wait never outlasts a job's lease): backoff steps stop growing
   * here, and a Retry-After longer than this is not waited at all but thrown as `rate_limited`.
   */
  maxDelayMs?: number;
  /** Clock for HTTP-date Retry-After values and the deadline. */
  now?: () => number;
  /**
   * No retry is waited for past this instant (per `now`): the invocation must end inside
   * the platform's wall clock, and a later one picks the page up again.
   */
  deadline?: number;
  /**
   * The largest page body read (SYNC_MAX_PAGE_BYTES): reading stops past it and the page fails
   * as a transient error, without a retry. Error bodies are read up to 64 KiB only.
   */
  maxPageBytes?: number;
}

export interface UltravoxClient {
  listCalls(params: ListCallsParams): Promise<CallsPage>;
  /** GET /api/deleted_calls: tombstones `{callId, created, deletionTime, …}`, same paging. */
  listDeletedCalls(params: ListCallsParams): Promise<CallsPage>;
}

export const CLIENT_DEFAULTS = {
  timeoutMs: 30_000,
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 20_000,
  maxPageBytes: 16 * 1024 * 1024,
} as const;

/** What is kept of an error body: enough for an excerpt, never the whole of a huge one. */
const ERROR_BODY_MAX_BYTES = 64 * 1024;

/** total_calls is an `integer` column. */
const PG_INTEGER_MAX = 2_147_483_647;

/** What one HTTP request came to. */
type Attempt =
  | { kind: "page"; page: Omit<CallsPage, "requests"> }
  | { kind: "permanent"; status: number; excerpt: string }
  | { kind: "cursor_rejected"; status: number; excerpt: string }
  | { kind: "oversized"; status: number }
  | {
    kind: "retry";
    problem: string;
    status: number | null;
    retryAfterMs: number | null;
    excerpt: string;
  };

export function createUltravoxClient(opts: UltravoxClientOptions): UltravoxClient {
  const baseUrl = opts.baseUrl.replace(/\/+$/, "");
  const apiKey = opts.apiKey;
  // Looked up at call time, so a test that swaps globalThis.fetch is still honoured.
  const doFetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = opts.random ?? Math.random;
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? CLIENT_DEFAULTS.timeoutMs;
  const maxAttempts = Math.max(1, opts.maxAttempts ?? CLIENT_DEFAULTS.maxAttempts);
  const baseDelayMs = opts.baseDelayMs ?? CLIENT_DEFAULTS.baseDelayMs;
  const maxDelayMs = opts.maxDelayMs ?? CLIENT_DEFAULTS.maxDelayMs;
  const deadline = opts.deadline ?? Infinity;
  const maxPageBytes = opts.maxPageBytes ?? CLIENT_DEFAULTS.maxPageBytes;

  async function attemptOnce(url: URL, sentCursor: string | null): Promise<Attempt> {
    // One signal for headers and body: a server that stalls mid-body times out too.
    const limitMs = Math.max(1, Math.min(timeoutMs, deadline - now()));
    const signal = AbortSignal.timeout(limitMs);
    let status: number | null = null;
    try {
      const res = await doFetch(url, {
        headers: { "X-API-Key": apiKey, Accept: "application/json" },
        // A redirect would carry the key to wherever it points; treat it as an error instead.
        redirect: "manual",
        signal,
      });
      status = res.status;
      const isPage = res.status >= 200 && res.status < 300;
      // Always read (or cancel) the body, also on errors: an unread body leaks the connection.
      // A page over the limit is useless; an error body only matters for its first bytes.
      const body = isPage
        ? await readBody(res, maxPageBytes, false)
        : await readBody(res, Math.min(ERROR_BODY_MAX_BYTES, maxPageBytes), true);
      if (body.cut && isPage) return { kind: "oversized", status: res.status };
      return judge(
        res,
        body.cut ? withoutKeyPrefixAtEnd(body.text, apiKey) : body.text,
        sentCursor,
      );
    } catch (err) {
      return {
        kind: "retry",
        problem: networkProblem(err, signal, limitMs, apiKey),
        status,
        retryAfterMs: null,
        excerpt: "",
      };
    }
  }

  function judge(res: Response, body: string, sentCursor: string | null): Attempt {
    if (res.status >= 200 && res.status < 300) {
      let page = parsePage(body);
      // A next that repeats the cursor just sent would walk the same page forever.
      if (typeof page !== "string" && sentCursor !== null && page.nextCursor === sentCursor) {
        page = "body is not a calls page (next repeats the cursor sent)";
      }
      if (typeof page !== "string") return { kind: "page", page };
      const excerpt = excerptOf(body, apiKey);
      return { kind: "retry", problem: page, status: res.status, retryAfterMs: null, excerpt };
    }
    // Only now: a good page can be 200 kB, not worth scanning for an excerpt nobody reads.
    const excerpt = excerptOf(body, apiKey);
    // DRF's answer to a cursor it cannot decode; without a cursor, a 404 means a wrong base URL.
    if (res.status === 404 && sentCursor !== null) {
      return { kind: "cursor_rejected", status: 404, excerpt };
    }
    if (res.status === 429 || res.status >= 500) {
      const retryAfterMs = res.status === 429 || res.status === 503
        ? parseRetryAfter(res.headers.get("Retry-After"), now())
        : null;
      return {
        kind: "retry",
        problem: `HTTP ${res.status}`,
        status: res.status,
        retryAfterMs,
        excerpt,
      };
    }
    return { kind: "permanent", status: res.status, excerpt };
  }

  /** Equal jitter: at least half the capped exponential step, so a struggling server gets air. */
  function backoffMs(failedAttempt: number): number {
    const step = Math.min(maxDelayMs, baseDelayMs * 2 ** (failedAttempt - 1));
    return Math.floor(step / 2 + random() * (step / 2));
  }

  async function list(resource: ListResource, params: ListCallsParams): Promise<CallsPage> {
    const url = callsUrl(baseUrl, params, resource);
    for (let attempt = 1;; attempt++) {
      const outcome = await attemptOnce(url, params.cursor);
      if (outcome.kind === "page") return { ...outcome.page, requests: attempt };
      if (outcome.kind === "permanent") {
        throw permanentError({
          status: outcome.status,
          bodyExcerpt: outcome.excerpt,
          attempts: attempt,
          path: `/${resource}`,
        });
      }
      if (outcome.kind === "cursor_rejected") {
        throw cursorRejectedError({
          status: outcome.status,
          bodyExcerpt: outcome.excerpt,
          attempts: attempt,
        });
      }
      if (outcome.kind === "oversized") {
        throw oversizedPageError({
          limitBytes: maxPageBytes,
          status: outcome.status,
          attempts: attempt,
        });
      }
      const asked = outcome.retryAfterMs;
      // A Retry-After is honoured exactly or not at all: one that does not fit (past maxDelayMs,
      // which keeps every wait inside the lease, or past the deadline) is handed to the engine,
      // which releases the job until then instead of spending attempts on it.
      if (asked !== null && (asked > maxDelayMs || now() + asked >= deadline)) {
        throw rateLimitedError({
          status: outcome.status ?? 429,
          retryAfterMs: asked,
          bodyExcerpt: outcome.excerpt,
          attempts: attempt,
        });
      }
      const wait = asked ?? backoffMs(attempt);
      if (attempt >= maxAttempts || now() + wait >= deadline) {
        throw transientError({
          problem: outcome.problem,
          status: outcome.status,
          retryAfterMs: outcome.retryAfterMs,
          bodyExcerpt: outcome.excerpt,
          attempts: attempt,
        });
      }
      await sleep(wait);
    }
  }

  return {
    listCalls: (params) => list("calls", params),
    listDeletedCalls: (params) => list("deleted_calls", params),
  };
}

/** The lists the importer pages through: the calls, and the tombstones of deleted ones. */
export type ListResource = "calls" | "deleted_calls";

/**
 * The request for one page; `cursor` is the only thing taken from Ultravox's `next`.
 * /deleted_calls takes the list's filters but no `sort` (docs/ULTRAVOX.md).
 */
export function callsUrl(
  baseUrl: string,
  p: ListCallsParams,
  resource: ListResource = "calls",
): URL {
  if (!Number.isInteger(p.pageSize) || p.pageSize < 1) {
    throw new RangeError(`pageSize must be a positive integer, got ${p.pageSize}`);
  }
  const url = new URL(`${baseUrl.replace(/\/+$/, "")}/${resource}`);
  if (p.fromDate !== null) url.searchParams.set("fromDate", p.fromDate);
  url.searchParams.set("toDate", p.toDate);
  if (resource === "calls") url.searchParams.set("sort", "-created");
  url.searchParams.set("pageSize", String(p.pageSize));
  if (p.cursor !== null) url.searchParams.set("cursor", p.cursor);
  return url;
}

/**
 * The `cursor` query parameter of a page's `next` URL. null and "" mean "no more pages" (both
 * are seen in the wild). Throws a TypeError for anything else without a cursor: restarting from
 * page one or stopping early would both be silent data errors.
 */
export function cursorFromNext(next: unknown): string | null {
  if (next === null || next === undefined || next === "") return null;
  if (typeof next !== "string") throw new TypeError(`next is a ${typeof next}, not a URL`);
  let url: URL;
  try {
    // The base only resolves a relative `next`; nothing is ever requested from it.
    url = new URL(next, "http://next.invalid/");
  } catch {
    throw new TypeError("next is not a URL");
  }
  const cursor = url.searchParams.get("cursor");
  if (cursor === null || cursor === "") throw new TypeError("next has no cursor");
  return cursor;
}

/** A page, or why the body is not one (worth a retry: proxies truncate and mangle bodies). */
function parsePage(body: string): Omit<CallsPage, "requests"> | string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return "invalid JSON body";
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return "body is not a calls page";
  }
  const { results, next, total } = json as Record<string, unknown>;
  if (!Array.isArray(results)) return "body is not a calls page (no results array)";
  let nextCursor: string | null;
  try {
    nextCursor = cursorFromNext(next);
  } catch (err) {
    return `body is not a calls page (${(err as Error).message})`;
  }
  return { results, nextCursor, total: readTotal(total) };
}

/** `total` when it is a count the job can store, else null (unknown): never rely on it. */
function readTotal(total: unknown): number | null {
  return Number.isSafeInteger(total) && (total as number) >= 0 &&
      (total as number) <= PG_INTEGER_MAX
    ? total as number
    : null;
}

/**
 * The body as text, read as a stream up to `limitBytes`: past it, reading stops, the rest is
 * cancelled (never buffered) and `cut` is true, `text` then holding the first `limitBytes`.
 * Unless `keepHead`, a Content-Length over the limit cancels the body unread.
 */
async function readBody(
  res: Response,
  limitBytes: number,
  keepHead: boolean,
): Promise<{ text: string; cut: boolean }> {
  const body = res.body;
  if (body === null) return { text: "", cut: false };
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (!keepHead && declared > limitBytes) {
    await body.cancel().catch(() => {});
    return { text: "", cut: true };
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let cut = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (size + value.byteLength > limitBytes) {
        chunks.push(value.subarray(0, limitBytes - size));
        size = limitBytes;
        cut = true;
        break;
      }
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    if (cut) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  let bytes: Uint8Array;
  if (chunks.length === 1) bytes = chunks[0];
  else {
    bytes = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, at);
      at += chunk.byteLength;
    }
  }
  // Decoded as Response.text() does: UTF-8, a BOM dropped, bad bytes as U+FFFD.
  return { text: new TextDecoder().decode(bytes), cut };
}

/** Retry-After as milliseconds from `nowMs`: delay-seconds or an HTTP-date; null if neither. */
export function parseRetryAfter(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const ms = Number(text) * 1000;
    // Past 285,000 years the number is noise, not a wait anybody can honour.
    return Number.isSafeInteger(ms) ? ms : null;
  }
  // Only an HTTP-date (IMF-fixdate and its obsolete forms) has a weekday name or a comma.
  if (!/[a-z]/i.test(text)) return null;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - nowMs);
}

function networkProblem(err: unknown, signal: AbortSignal, timeoutMs: number, apiKey: string) {
  const name = err instanceof Error || err instanceof DOMException ? err.name : "";
  if (name === "TimeoutError" || (signal.aborted && name === "AbortError")) {
    return `timed out after ${timeoutMs} ms`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return `network error: ${excerptOf(message, apiKey).slice(0, 120)}`;
}

export { UltravoxError };
