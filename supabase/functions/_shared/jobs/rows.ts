// Reads of historical_sync_jobs shared by the functions. State changes go through the SQL
// transition functions (create_sync_job, cancel_sync_job, …), never through here.
import type { Sql } from "../platform/db.ts";
import {
  type JobEngineState,
  type JobRow,
  type JobView,
  toJobView,
  type ViewOptions,
} from "./view.ts";

export async function loadJob(sql: Sql, jobId: string): Promise<JobRow | null> {
  const [row] = await sql<JobRow[]>`
    select * from public.historical_sync_jobs where id = ${jobId}::uuid`;
  return row ?? null;
}

/** The agency's pending or in_progress job (at most one: a unique index says so). */
export async function activeJob(sql: Sql, agencyId: string): Promise<JobRow | null> {
  const [row] = await sql<JobRow[]>`
    select * from public.historical_sync_jobs
     where agency_id = ${agencyId}::uuid and status in ('pending', 'in_progress')
     order by created_at desc, id desc
     limit 1`;
  return row ?? null;
}

/**
 * The agency's jobs, newest first, its active job, and when its last successful sync ended
 * (the newest completed_at of a completed job), read from one snapshot.
 */
export async function agencyJobs(
  sql: Sql,
  agencyId: string,
  limit: number,
): Promise<{ jobs: JobRow[]; active: JobRow | null; lastCompletedAt: string | null }> {
  return await sql.begin("isolation level repeatable read read only", async (tx) => {
    const jobs = await tx<JobRow[]>`
      select * from public.historical_sync_jobs
       where agency_id = ${agencyId}::uuid
       order by created_at desc, id desc
       limit ${limit}`;
    const active = await activeJob(tx as unknown as Sql, agencyId);
    const [{ last }] = await tx<{ last: string | null }[]>`
      select max(completed_at) as last from public.historical_sync_jobs
       where agency_id = ${agencyId}::uuid and status = 'completed'`;
    return { jobs: [...jobs], active, lastCompletedAt: last };
  });
}

/** The jobs as views: each row with its engine state (one read for all of them). */
export async function jobViews(
  sql: Sql,
  rows: readonly JobRow[],
  opts: ViewOptions,
): Promise<JobView[]> {
  if (rows.length === 0) return [];
  const states = await sql<(JobEngineState & { job_id: string })[]>`
    select l.job_id, l.refreshed_calls, l.trigger, l.unreadable_calls, l.unreadable_fields,
           l.catch_up, l.deleted_marked,
           -- a sliced job waits out the latest Retry-After among its unfinished slices
           case when l.sliced then s.not_before else l.not_before end as not_before,
           case when l.sliced then jsonb_build_object('total', s.total, 'done', s.done) end as slices
      from public.historical_sync_job_leases l
      left join lateral (
        select count(*)::int as total, (count(*) filter (where x.done))::int as done,
               max(x.not_before) filter (where not x.done) as not_before
          from public.historical_sync_job_slices x
         where x.job_id = l.job_id
      ) s on l.sliced
     where l.job_id = any (${rows.map((r) => r.id)}::uuid[])`;
  const byId = new Map(states.map(({ job_id, ...state }) => [job_id, state]));
  return rows.map((row) => toJobView(row, opts, byId.get(row.id)));
}
