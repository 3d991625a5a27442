// Walks one claimed job page by page until the range ends, the cap is reached, the job
// is cancelled, or the invocation's budget runs out. While a page is written, the next
// one is already being fetched (its cursor is known from `next`).
import { type CallsPage, createUltravoxClient } from "../ultravox/client.ts";
import { parseCall, unstorableText } from "../ultravox/call.ts";
import { UltravoxError } from "../ultravox/errors.ts";
import type { Budget } from "./budget.ts";
import type { ClaimedJob, InvalidCall, PageRow, PageWrite, SyncStore } from "./store.ts";

export interface JobRunSummary {
  id: string;
  status: string;
  pages: number;
  imported: number;
  skipped: number;
  /** Of `skipped`: calls that existed and were refreshed because they changed upstream. */
  refreshed: number;
  failed: number;
}

export interface JobRunContext {
  store: SyncStore;
  holder: string;
  budget: Budget;
  apiBase: string;
  pageSize: number;
  leaseSeconds: number;
  maxAttempts: number;
  /** Called for a job that made progress and stopped only because the budget ran out. */
  leftUnfinished: (jobId: string) => void;
  /** Epoch ms after which a page's retries give up (the invocation must end in time). */
  retryDeadline: number;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  log: (event: Record<string, unknown>) => void;
}

export const MISSING_KEY_MESSAGE =
  "No Ultravox API key is set for this agency. Set one with set_agency_ultravox_api_key, then start a new sync.";

// JSON.stringify escapes exactly the characters Postgres refuses (U+0000, lone surrogates),
// so one test of the page's JSON finds them without walking every call.
const MAYBE_UNSTORABLE = /\\u0000|\\ud[89a-f]/;

/**
 * Splits a page into the rows to upsert (as the JSON record_sync_page takes) and the calls
 * that failed validation, keeping API order. A call holding text Postgres cannot store is
 * a failed call too, instead of failing the whole page on every retry.
 */
export function mapPage(results: unknown[]): Pick<PageWrite, "callsJson" | "invalid"> {
  let calls: PageRow[] = [];
  const invalid: InvalidCall[] = [];
  for (let ord = 0; ord < results.length; ord++) {
    const parsed = parseCall(results[ord]);
    if (parsed.ok) calls.push({ ord, ...parsed.row });
    else invalid.push({ ord, call_id: parsed.callId, reason: parsed.reason });
  }
  let callsJson = JSON.stringify(calls);
  if (MAYBE_UNSTORABLE.test(callsJson)) {
    calls = calls.filter((row) => {
      const reason = unstorableText(row.raw);
      if (reason !== null) invalid.push({ ord: row.ord, call_id: row.ultravox_call_id, reason });
      return reason === null;
    });
    invalid.sort((a, b) => a.ord - b.ord);
    callsJson = JSON.stringify(calls);
  }
  return { callsJson, invalid };
}

/** A page as fetched, already mapped: what the page step sends, and where to go next. */
type MappedPage = Omit<CallsPage, "results"> & Pick<PageWrite, "callsJson" | "invalid">;

export async function runJob(ctx: JobRunContext, job: ClaimedJob): Promise<JobRunSummary> {
  const summary: JobRunSummary = {
    id: job.id,
    status: "in_progress",
    pages: 0,
    imported: 0,
    skipped: 0,
    refreshed: 0,
    failed: 0,
  };
  const { store, holder } = ctx;
  let cursor = job.cursor;

  let apiKey: string | null;
  try {
    apiKey = await store.apiKey(job.agency_id);
  } catch (error) {
    summary.status = await recordFailure(ctx, job.id, cursor, error);
    return summary;
  }
  if (!apiKey) {
    summary.status = (await store.fail(job.id, holder, cursor, MISSING_KEY_MESSAGE)) ??
      (await store.status(job.id)) ?? "failed";
    ctx.log({ event: "job_failed", job_id: job.id, reason: "ultravox_key_missing" });
    return summary;
  }

  // No single wait may outlast the lease: cap Retry-After/backoff well inside it, and a
  // heartbeat renews the lease while a request is retried.
  const leaseMs = ctx.leaseSeconds * 1000;
  const client = createUltravoxClient({
    baseUrl: ctx.apiBase,
    apiKey,
    fetch: ctx.fetch,
    sleep: ctx.sleep,
    maxDelayMs: Math.min(20_000, Math.floor(leaseMs / 4)),
    timeoutMs: Math.min(30_000, Math.floor(leaseMs / 3)),
    deadline: ctx.retryDeadline,
  });
  // A page is mapped (validated, serialized for the page step) as soon as it arrives, that
  // is while the page before it is being written, and only its JSON is kept from then on.
  const fetchPage = (c: string | null): Promise<MappedPage> =>
    client.listCalls({
      fromDate: job.date_from,
      toDate: job.date_to,
      pageSize: ctx.pageSize,
      cursor: c,
    }).then(({ results, ...page }) => ({ ...page, ...mapPage(results) }));
  const heartbeat = setInterval(() => {
    store.renew(job.id, holder, ctx.leaseSeconds).catch(() => {});
  }, Math.max(1000, Math.floor(leaseMs / 3)));

  let inFlight: Promise<MappedPage> | null = ctx.budget.takePage()
    ? settleLater(fetchPage(cursor))
    : null;
  try {
    while (inFlight) {
      const page = await inFlight;
      inFlight = null;
      const nextCursor = page.nextCursor;
      if (nextCursor !== null && ctx.budget.takePage()) {
        inFlight = settleLater(fetchPage(nextCursor));
      }

      const outcome = await store.recordPage({
        jobId: job.id,
        holder,
        fromCursor: cursor,
        nextCursor,
        callsJson: page.callsJson,
        invalid: page.invalid,
        total: page.total,
        leaseSeconds: ctx.leaseSeconds,
      });
      if (!outcome) {
        // Fenced out: cancelled, or another worker took over. Nothing of the page landed.
        summary.status = (await store.status(job.id)) ?? "cancelled";
        discard(ctx, inFlight);
        ctx.log({ event: "job_fenced_out", job_id: job.id, status: summary.status });
        return summary;
      }
      summary.pages++;
      summary.imported += outcome.page_imported;
      summary.skipped += outcome.page_skipped;
      summary.refreshed += outcome.page_refreshed;
      summary.failed += outcome.page_failed;
      summary.status = outcome.status;
      cursor = nextCursor;
      if (outcome.status !== "in_progress") {
        discard(ctx, inFlight);
        ctx.log({ event: "job_finished", job_id: job.id, status: outcome.status });
        return summary;
      }
    }
    // Budget spent: let the next invocation continue at once.
    await store.release(job.id, holder);
    if (summary.pages > 0) ctx.leftUnfinished(job.id);
    return summary;
  } catch (error) {
    discard(ctx, inFlight);
    summary.status = await recordFailure(
      ctx,
      job.id,
      cursor,
      await keyRotatedSince(ctx, job, apiKey, error) ? new KeyRotatedError() : error,
    );
    return summary;
  } finally {
    clearInterval(heartbeat);
  }
}

/** A prefetch may reject before it is awaited; mark it handled so it is not "uncaught". */
function settleLater<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

function discard(ctx: JobRunContext, inFlight: Promise<unknown> | null) {
  if (inFlight) ctx.budget.returnPage();
}

/** Ultravox refused the key this run started with, but Vault already holds another one. */
class KeyRotatedError extends Error {
  constructor() {
    super(
      "Ultravox rejected the API key this run started with; a new key has been set since and the next run uses it.",
    );
  }
}

async function keyRotatedSince(
  ctx: JobRunContext,
  job: ClaimedJob,
  usedKey: string,
  error: unknown,
): Promise<boolean> {
  if (!(error instanceof UltravoxError) || (error.status !== 401 && error.status !== 403)) {
    return false;
  }
  const current = await ctx.store.apiKey(job.agency_id).catch(() => null);
  return current !== null && current !== usedKey;
}

async function recordFailure(
  ctx: JobRunContext,
  jobId: string,
  cursor: string | null,
  error: unknown,
): Promise<string> {
  const permanent = error instanceof UltravoxError && error.kind === "permanent";
  const message = error instanceof UltravoxError || error instanceof KeyRotatedError
    ? error.message
    : "Importing failed unexpectedly; it will be retried on the next run.";
  ctx.log({
    event: permanent ? "job_failed" : "job_error",
    job_id: jobId,
    status_code: error instanceof UltravoxError ? error.status : null,
    message: error instanceof UltravoxError ? error.message : String(error),
  });
  try {
    const status = permanent
      ? await ctx.store.fail(jobId, ctx.holder, cursor, message)
      : await ctx.store.recordError(jobId, ctx.holder, cursor, message, ctx.maxAttempts);
    return status ?? (await ctx.store.status(jobId)) ?? "in_progress";
  } catch {
    // The database itself is failing: the lease runs out and a later run resumes.
    return "in_progress";
  }
}
