// Scale-out: many agencies' jobs, drained by 1, 2 or 4 processors running at once. A processor
// is what the dispatcher's HTTP calls amount to: invocations of processHistoricalSync back to
// back, each claiming up to SYNC_MAX_JOBS_PER_RUN jobs with no job id, until a claim comes back
// empty. Each processor has its own connection pool, as each edge worker does.
import { loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import { processHistoricalSync } from "../supabase/functions/_shared/sync/processor.ts";
import { createAgency, createJob, DB_URL } from "./database.ts";
import { formatSpread, num, type Row, type Spread, spread } from "./stats.ts";

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
  /** What the processors logged as a problem of the bench's jobs (job_error, job_failed, …). */
  problems: Record<string, unknown>[];
  /**
   * Jobs of other sessions the processors claimed: they claim any job, so on a database
   * shared with someone else's tests one created mid-run is taken (and walked against the
   * stand-in, which refuses its key). Not part of the figures; should be empty.
   */
  foreignJobs: string[];
  agencyIds: string[];
}

/** Creates one agency and job per key, then drains them. The caller deletes the agencies. */
export async function measureScaleOut(setup: Sql, opts: ScaleOutOptions): Promise<ScaleOutResult> {
  const config = {
    ...loadConfig(),
    ULTRAVOX_API_BASE: opts.apiBase,
    SYNC_PAGE_SIZE: opts.pageSize,
    SYNC_MAX_PAGES_PER_RUN: opts.maxPagesPerRun,
    SYNC_MAX_JOBS_PER_RUN: opts.maxJobsPerRun,
  };
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
    const foreign = new Set<string>();
    const log = (event: Record<string, unknown>) => {
      if (event.event === "job_finished") return;
      if (typeof event.job_id === "string" && !jobIds.includes(event.job_id)) return;
      problems.push(event);
    };
    for (const agencyId of agencyIds) jobIds.push(await createJob(setup, agencyId));
    await Promise.all(pools.map(async (sql) => {
      for (;;) {
        const run = await processHistoricalSync({ sql, config, log });
        if (run.jobs.length === 0) return;
        invocations++;
        for (const job of run.jobs) {
          if (jobIds.includes(job.id)) pages += job.pages;
          else foreign.add(job.id);
        }
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
      foreignJobs: [...foreign],
      agencyIds,
    };
  } finally {
    await Promise.all(pools.map((sql) => sql.end()));
  }
}

// ── figures ─────────────────────────────────────────────────────────────────────────

export interface ScaleOutSettings {
  scaleAgencies: number;
  scaleCalls: number;
  scaleProcessors: number[];
  latencyMs: number;
  defaultPageSize: number;
  maxJobsPerRun: number;
}

export interface ScaleOutFigures {
  wallMs: Spread;
  callsPerSec: Spread;
  /** Against one processor (the first count) of the same run. */
  speedup: Spread;
  invocations: number;
  /** Problems the processors logged over all runs, by event (job_error, job_fenced_out, …). */
  problems: Record<string, number>;
  /** Other sessions' jobs the processors claimed over all runs (see ScaleOutResult). */
  foreignJobs: number;
  /** Rounds of jobs: ceil(jobs / (processors × SYNC_MAX_JOBS_PER_RUN)). */
  waves: number;
  /** The wall time neither more processors nor a faster engine can beat. */
  boundMs: number;
}

/**
 * Each job's pages follow one another: at best one page per latency. Every job here fits one
 * invocation, so p processors take the jobs in waves of p × SYNC_MAX_JOBS_PER_RUN, and no
 * wave is shorter than one job. All of them together cannot insert faster than the tightest
 * ceiling (`ceilingCallsPerSec`) either.
 */
export function scaleOutFigures(
  runs: Record<number, ScaleOutResult[]>,
  s: ScaleOutSettings,
  ceilingCallsPerSec: number,
): Record<number, ScaleOutFigures> {
  const pagesPerJob = Math.ceil(s.scaleCalls / s.defaultPageSize);
  const one = runs[s.scaleProcessors[0]];
  const out: Record<number, ScaleOutFigures> = {};
  for (const p of s.scaleProcessors) {
    const waves = Math.ceil(s.scaleAgencies / (p * s.maxJobsPerRun));
    const problems: Record<string, number> = {};
    for (const e of runs[p].flatMap((x) => x.problems)) {
      problems[String(e.event)] = (problems[String(e.event)] ?? 0) + 1;
    }
    out[p] = {
      wallMs: spread(runs[p].map((x) => x.wallMs)),
      callsPerSec: spread(runs[p].map((x) => x.callsPerSec)),
      speedup: spread(runs[p].map((x, k) => one[k].wallMs / x.wallMs)),
      invocations: runs[p][0].invocations,
      problems,
      foreignJobs: runs[p].reduce((n, x) => n + (x.foreignJobs?.length ?? 0), 0),
      waves,
      boundMs: Math.max(
        waves * pagesPerJob * s.latencyMs,
        (s.scaleAgencies * s.scaleCalls) / ceilingCallsPerSec * 1000,
      ),
    };
  }
  return out;
}

export function scaleOutRows(f: Record<number, ScaleOutFigures>, s: ScaleOutSettings): Row[] {
  const first = s.scaleProcessors[0];
  const last = s.scaleProcessors.at(-1)!;
  return s.scaleProcessors.map((p) => {
    const x = f[p];
    const problems = (Object.keys(x.problems).length === 0
      ? "no errors logged"
      : Object.entries(x.problems).map(([event, n]) =>
        `${n} × \`${event}\``
      ).join(", ")) +
      (x.foreignJobs === 0 ? "" : `; ${x.foreignJobs} job(s) of another session claimed`);
    return {
      figure: `Scale-out: ${s.scaleAgencies} agencies × ${num(s.scaleCalls)} calls, ` +
        `${s.latencyMs} ms per page, ${p} processor(s)`,
      target: p === last && p !== first ? `≥ 3 × ${first} processor` : "—",
      result: `${formatSpread(x.wallMs)} ms, ${formatSpread(x.callsPerSec)} calls/s, ` +
        `**${formatSpread(x.speedup, 2)} ×** (bound: ${num(x.boundMs)} ms, ${x.waves} wave(s) ` +
        `of jobs; ${problems})`,
      ...(p === last && p !== first ? { met: x.speedup.median >= 3 } : {}),
    };
  });
}
