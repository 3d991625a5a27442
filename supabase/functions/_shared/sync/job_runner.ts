// Walks one piece of claimed work (a job's own walk, or a slice of a sliced job) page by
// page until the range ends, the cap is reached, the job is cancelled, or the invocation's
// budget runs out. While a page is written, the next one is already being fetched (its
// cursor is known from `next`). A slice that ends goes on with the slice its last page step
// handed over (one nobody held, or the older part of the largest remaining one).
import { type CallsPage, createUltravoxClient } from "../ultravox/client.ts";
import { parseCall, readableCreated } from "../ultravox/call.ts";
import { UltravoxError } from "../ultravox/errors.ts";
import type { Budget } from "./budget.ts";
import type { ClaimedJob, InvalidCall, PageRow, PageWrite, SyncStore, WalkSteps } from "./store.ts";
import { BrokenSourceError, walkGuard } from "./walk_guard.ts";
import { walkDeletedCalls } from "./deleted_walk.ts";

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
  /** SYNC_MAX_PAGE_BYTES: a page body is not read past this size. */
  maxPageBytes: number;
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

/**
 * Splits a page into the rows to store (as the JSON record_sync_page takes, each with the
 * fields stored as null for an unexpected shape) and the objects that cannot be stored,
 * keeping API order, plus the `created` of every storable call (for the paging guards).
 */
export function mapPage(
  results: unknown[],
): Pick<PageWrite, "callsJson" | "invalid"> & { createds: string[] } {
  const calls: PageRow[] = [];
  const invalid: InvalidCall[] = [];
  const createds: string[] = [];
  for (let ord = 0; ord < results.length; ord++) {
    const parsed = parseCall(results[ord]);
    if (parsed.ok) {
      calls.push({ ord, ...parsed.row, unreadable: parsed.unreadable });
      createds.push(parsed.row.created_at);
    } else {
      invalid.push({
        ord,
        call_id: parsed.callId,
        reason: parsed.reason,
        created: readableCreated(results[ord]),
      });
    }
  }
  return { callsJson: JSON.stringify(calls), invalid, createds };
}

/** A page as fetched, already mapped: what the page step sends, and where to go next. */
type MappedPage = Omit<CallsPage, "results"> & ReturnType<typeof mapPage>;

/** The longest Retry-After honoured; a longer one is read as this, and asked again then. */
export const MAX_NOT_BEFORE_MS = 3_600_000;

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
  let walk: WalkSteps = store.walkOf(holder, job);

  let apiKey: string | null;
  try {
    apiKey = await store.apiKey(job.agency_id);
  } catch (error) {
    summary.status = await recordFailure(ctx, walk, job.id, cursor, error);
    return summary;
  }
  if (!apiKey) {
    try {
      summary.status = (await walk.fail(cursor, MISSING_KEY_MESSAGE)) ??
        (await store.status(job.id)) ?? "failed";
      ctx.log({ event: "job_failed", job_id: job.id, reason: "ultravox_key_missing" });
    } catch {
      // The database itself is failing: the lease runs out and a later run tries again. The
      // other jobs of this invocation walk on.
    }
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
    maxPageBytes: ctx.maxPageBytes,
  });
  // The range sent: the walk's (a slice's lower bound narrows when a split takes its older
  // part); the upper bound, after Ultravox rejected a saved cursor, the oldest call counted
  // so far (docs/ARCHITECTURE.md §5 "Resuming by time").
  let fromDate = job.date_from;
  let toDate = job.date_to;
  // A page is mapped (validated, serialized for the page step) as soon as it arrives, that
  // is while the page before it is being written, and only its JSON is kept from then on.
  const fetchPage = (c: string | null): Promise<MappedPage> =>
    client.listCalls({
      fromDate,
      toDate,
      pageSize: ctx.pageSize,
      cursor: c,
    }).then(({ results, ...page }) => ({ ...page, ...mapPage(results) }));
  let guard = walkGuard(cursor);
  let resumable = true; // one resume by time, then again only after a page lands
  const heartbeat = setInterval(() => {
    walk.renew(ctx.leaseSeconds).catch(() => {});
  }, Math.max(1000, Math.floor(leaseMs / 3)));

  // The calls walk is over when the job is already in its deleted-calls walk, or once its
  // last page moved it there (a catch-up).
  let callsDone = job.phase === "deleted_calls";
  let inFlight: Promise<MappedPage> | null = !callsDone && ctx.budget.takePage()
    ? settleLater(fetchPage(cursor))
    : null;
  try {
    while (inFlight) {
      let page: MappedPage;
      try {
        page = await inFlight;
      } catch (error) {
        if (!(isCursorRejected(error) && resumable)) throw error;
        // Ultravox could not decode the saved cursor: walk on from the oldest call counted,
        // without a cursor; the page step never counts a call at that instant twice.
        resumable = false;
        toDate = (await walk.oldestCounted()) ?? toDate;
        // Nothing newer than toDate is listed from here: pages before the resume (one that
        // crossed a split's cut, say) no longer bound what the next page may hold.
        guard.resumeBelow(toDate);
        ctx.log({ event: "cursor_rejected", job_id: job.id, resume_to_date: toDate });
        inFlight = settleLater(fetchPage(null));
        continue;
      }
      inFlight = null;
      const nextCursor = page.nextCursor;
      guard.check(page.createds, nextCursor);
      if (nextCursor !== null && ctx.budget.takePage()) {
        inFlight = settleLater(fetchPage(nextCursor));
      }

      // A slice's last page: if the budget allows a page more, the step may hand this worker
      // another slice (that page is then its first); otherwise it hands nothing on.
      const nextPageTaken = nextCursor === null && job.slice_no !== null && ctx.budget.takePage();
      const outcome = await walk.recordPage({
        takeNext: nextPageTaken,
        fromCursor: cursor,
        nextCursor,
        callsJson: page.callsJson,
        invalid: page.invalid,
        total: page.total,
        leaseSeconds: ctx.leaseSeconds,
        pageSize: ctx.pageSize,
        maxAttempts: ctx.maxAttempts,
      });
      if (nextPageTaken && outcome?.next_slice_no == null) ctx.budget.returnPage();
      if (!outcome) {
        // Fenced out: cancelled, or another worker took over. Nothing of the page landed.
        summary.status = (await store.status(job.id)) ?? "cancelled";
        discard(ctx, inFlight);
        ctx.log({ event: "job_fenced_out", job_id: job.id, status: summary.status });
        return summary;
      }
      summary.pages++;
      resumable = true;
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
      if (outcome.slice_date_from !== undefined) fromDate = outcome.slice_date_from;
      if (nextCursor === null && outcome.next_slice_no != null) {
        // This slice is done; the step leased us the next one: walk it from where it stands
        // (its start, or the cursor a walker before us left it at).
        ctx.log({ event: "slice_next", job_id: job.id, slice_no: outcome.next_slice_no });
        walk = store.walkOf(holder, { id: job.id, slice_no: outcome.next_slice_no });
        cursor = outcome.next_cursor ?? null;
        fromDate = outcome.next_date_from ?? null;
        toDate = outcome.next_date_to!;
        guard = walkGuard(cursor);
        resumable = true;
        inFlight = settleLater(fetchPage(cursor)); // on the page taken for it above
        continue;
      }
      if (nextCursor === null && job.slice_no !== null) {
        // This slice is done and nothing is left to hand over: the other slices' walkers
        // finish the job.
        discard(ctx, inFlight);
        ctx.log({ event: "slice_finished", job_id: job.id });
        return summary;
      }
      // The calls walk ends at the end of the range, or at max_calls: a catch-up then goes on
      // to its deleted calls, and a page fetched past the cap is dropped, never written.
      if (
        nextCursor === null || (job.max_calls !== null && outcome.imported_calls >= job.max_calls)
      ) {
        callsDone = true;
        discard(ctx, inFlight);
        inFlight = null;
      }
    }
    if (callsDone) {
      const deleted = await walkDeletedCalls({
        store,
        client,
        budget: ctx.budget,
        holder,
        pageSize: ctx.pageSize,
        leaseSeconds: ctx.leaseSeconds,
        job,
        cursor: job.phase === "deleted_calls" ? job.deleted_cursor : null,
      });
      summary.pages += deleted.pages;
      if (deleted.status === "fenced") {
        summary.status = (await store.status(job.id)) ?? "cancelled";
        ctx.log({ event: "job_fenced_out", job_id: job.id, status: summary.status });
        return summary;
      }
      if (deleted.status !== "budget") {
        summary.status = deleted.status;
        ctx.log({ event: "job_finished", job_id: job.id, status: deleted.status });
        return summary;
      }
    }
    // Budget spent: let the next invocation continue at once.
    await walk.release();
    if (summary.pages > 0) ctx.leftUnfinished(job.id);
    return summary;
  } catch (error) {
    discard(ctx, inFlight);
    summary.status = await recordFailure(
      ctx,
      walk,
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

function isCursorRejected(error: unknown): boolean {
  return error instanceof UltravoxError && error.kind === "cursor_rejected";
}

async function recordFailure(
  ctx: JobRunContext,
  walk: WalkSteps,
  jobId: string,
  cursor: string | null,
  error: unknown,
): Promise<string> {
  if (error instanceof UltravoxError && error.kind === "rate_limited") {
    // Too long to wait out here: no worker claims the job before Ultravox asked, and the
    // attempt is not counted (docs/ARCHITECTURE.md §5 "Errors").
    const waitMs = Math.min(error.retryAfterMs ?? 0, MAX_NOT_BEFORE_MS);
    const notBefore = new Date(Date.now() + waitMs).toISOString();
    ctx.log({ event: "job_rate_limited", job_id: jobId, not_before: notBefore });
    try {
      await walk.release(notBefore);
    } catch {
      // The database itself is failing: the lease runs out and a later run resumes.
    }
    return "in_progress";
  }
  const permanent = (error instanceof UltravoxError && error.kind === "permanent") ||
    error instanceof BrokenSourceError;
  const message = error instanceof UltravoxError || error instanceof KeyRotatedError ||
      error instanceof BrokenSourceError
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
      ? await walk.fail(cursor, message)
      : await walk.recordError(cursor, message, ctx.maxAttempts);
    return status ?? (await ctx.store.status(jobId)) ?? "in_progress";
  } catch {
    // The database itself is failing: the lease runs out and a later run resumes.
    return "in_progress";
  }
}
