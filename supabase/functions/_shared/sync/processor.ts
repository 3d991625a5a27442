// process-historical-sync's engine: claims up to SYNC_MAX_JOBS_PER_RUN pieces of work (jobs'
// own walks, slices of sliced jobs) under one holder id, walks them concurrently within one
// shared budget, and reports what this invocation did per job. Every state change is one SQL
// function call (store.ts).
import type { Config } from "../platform/config.ts";
import type { Sql } from "../platform/db.ts";
import { invocationBudget } from "./budget.ts";
import { type JobRunSummary, runJob } from "./job_runner.ts";
import { syncStore } from "./store.ts";

export type { JobRunSummary };

export const RETRY_GRACE_MS = 60_000;

export interface RunSummary {
  jobs: JobRunSummary[];
  duration_ms: number;
}

export interface ProcessorDeps {
  sql: Sql;
  config: Config;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  log?: (event: Record<string, unknown>) => void;
}

export function stderrLog(event: Record<string, unknown>) {
  console.error(JSON.stringify({ at: new Date().toISOString(), ...event }));
}

export async function processHistoricalSync(
  deps: ProcessorDeps,
  opts: { jobId?: string } = {},
): Promise<RunSummary> {
  const started = performance.now();
  const cfg = deps.config;
  const store = syncStore(deps.sql);
  const holder = crypto.randomUUID();
  const log = deps.log ?? stderrLog;

  const jobs = await store.claim(
    holder,
    cfg.SYNC_MAX_JOBS_PER_RUN,
    cfg.SYNC_LEASE_SECONDS,
    cfg.SYNC_MAX_ATTEMPTS,
    opts.jobId ?? null,
  );
  const budget = invocationBudget({
    maxPages: cfg.SYNC_MAX_PAGES_PER_RUN,
    timeBudgetMs: cfg.SYNC_TIME_BUDGET_MS,
  });
  // A page started just before the time budget ends may still retry for one grace period;
  // with the defaults an invocation ends within ~110 s, inside the platform's 150 s.
  const retryDeadline = Date.now() + cfg.SYNC_TIME_BUDGET_MS + RETRY_GRACE_MS;
  const unfinished: string[] = [];
  const ctx = {
    store,
    holder,
    budget,
    apiBase: cfg.ULTRAVOX_API_BASE,
    pageSize: cfg.SYNC_PAGE_SIZE,
    maxPageBytes: cfg.SYNC_MAX_PAGE_BYTES,
    leaseSeconds: cfg.SYNC_LEASE_SECONDS,
    maxAttempts: cfg.SYNC_MAX_ATTEMPTS,
    retryDeadline,
    leftUnfinished: (jobId: string) => void unfinished.push(jobId),
    fetch: deps.fetch,
    sleep: deps.sleep,
    log,
  };
  const results = mergeByJob(await Promise.all(jobs.map((job) => runJob(ctx, job))));
  // Work is left: ours, stopped by the budget; or, after a run that made progress, other
  // work its share of a tick left claimable (a failing job waits for a later tick). The
  // next invocations start now, not at the next cron tick; without them the tick still
  // continues, so a failure here is no loss.
  const progressed = results.some((r) => r.pages > 0);
  if (unfinished.length > 0 || progressed) {
    const requestIds = await store.requestContinuation(unfinished.length === 0).catch((e) => {
      log({ event: "continuation_failed", message: e instanceof Error ? e.message : String(e) });
      return null;
    });
    if (unfinished.length > 0 || (requestIds?.length ?? 0) > 0) {
      log({ event: "continuation", job_ids: [...new Set(unfinished)], request_ids: requestIds });
    }
  }
  return { jobs: results, duration_ms: Math.round(performance.now() - started) };
}

const FINAL = new Set(["completed", "failed", "cancelled"]);

/** One entry per job: the slices of a job walked in this invocation, added up. */
function mergeByJob(runs: JobRunSummary[]): JobRunSummary[] {
  const byId = new Map<string, JobRunSummary>();
  for (const run of runs) {
    const seen = byId.get(run.id);
    if (!seen) {
      byId.set(run.id, { ...run });
      continue;
    }
    seen.pages += run.pages;
    seen.imported += run.imported;
    seen.skipped += run.skipped;
    seen.refreshed += run.refreshed;
    seen.failed += run.failed;
    // The job's status is one: a slice that saw it end saw the status after the run.
    if (FINAL.has(run.status)) seen.status = run.status;
  }
  return [...byId.values()];
}
