// Scale-out: many agencies' jobs, drained by 1, 2 or 4 processors running at once. A processor
// is what the dispatcher's HTTP calls amount to: invocations of processHistoricalSync back to
// back, each claiming up to SYNC_MAX_JOBS_PER_RUN jobs with no job id, until a claim comes back
// empty. Each processor has its own connection pool, as each edge worker does.
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import { processHistoricalSync } from "../supabase/functions/_shared/sync/processor.ts";
import { createAgency, createJob, DB_URL } from "./database.ts";
import { benchConfig } from "./import_run.ts";

export interface ScaleOutOptions {
  apiBase: string;
  /** One agency (and job) per key. */
  apiKeys: string[];
  processors: number;
  pageSize: number;
  maxPagesPerRun: number;
  maxJobsPerRun: number;
}

export interface ScaleOutResult {
  processors: number;
  jobs: number;
  completedJobs: number;
  calls: number;
  pages: number;
  invocations: number;
  wallMs: number;
  callsPerSec: number;
  /** What the processors logged as a problem (job_error, job_failed, job_fenced_out). */
  problems: Record<string, unknown>[];
  agencyIds: string[];
}

/** Creates one agency and job per key, then drains them. The caller deletes the agencies. */
export async function measureScaleOut(setup: Sql, opts: ScaleOutOptions): Promise<ScaleOutResult> {
  const config = benchConfig({
    ULTRAVOX_API_BASE: opts.apiBase,
    SYNC_PAGE_SIZE: opts.pageSize,
    SYNC_MAX_PAGES_PER_RUN: opts.maxPagesPerRun,
    SYNC_MAX_JOBS_PER_RUN: opts.maxJobsPerRun,
  });
  const agencyIds: string[] = [];
  for (const key of opts.apiKeys) agencyIds.push(await createAgency(setup, key));
  const pools = Array.from({ length: opts.processors }, () => connect(DB_URL));
  try {
    await Promise.all(pools.map((sql) => sql`select 1`));
    let pages = 0;
    let invocations = 0;
    const started = performance.now();
    const jobIds: string[] = [];
    const problems: Record<string, unknown>[] = [];
    const log = (event: Record<string, unknown>) => {
      if (event.event !== "job_finished") problems.push(event);
    };
    for (const agencyId of agencyIds) jobIds.push(await createJob(setup, agencyId));
    await Promise.all(pools.map(async (sql) => {
      for (;;) {
        const run = await processHistoricalSync({ sql, config, log });
        if (run.jobs.length === 0) return;
        invocations++;
        for (const job of run.jobs) pages += job.pages;
      }
    }));
    const wallMs = performance.now() - started;
    const [row] = await setup<{ completed: number; calls: number }[]>`
      select (select count(*)::int from public.historical_sync_jobs
               where id = any(${jobIds}::uuid[]) and status = 'completed') as completed,
             (select count(*)::int from public.calls
               where agency_id = any(${agencyIds}::uuid[])) as calls`;
    return {
      processors: opts.processors,
      jobs: jobIds.length,
      completedJobs: row.completed,
      calls: row.calls,
      pages,
      invocations,
      wallMs,
      callsPerSec: row.calls / (wallMs / 1000),
      problems,
      agencyIds,
    };
  } finally {
    await Promise.all(pools.map((sql) => sql.end()));
  }
}
