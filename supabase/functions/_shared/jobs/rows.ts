// Reads of historical_sync_jobs shared by the functions. State changes go through the SQL
// transition functions (create_sync_job, cancel_sync_job, …), never through here.
import type { Sql } from "../platform/db.ts";
import type { JobRow } from "./view.ts";

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

/** The agency's jobs, newest first, and its active job, read from one snapshot. */
export async function agencyJobs(
  sql: Sql,
  agencyId: string,
  limit: number,
): Promise<{ jobs: JobRow[]; active: JobRow | null }> {
  return await sql.begin("isolation level repeatable read read only", async (tx) => {
    const jobs = await tx<JobRow[]>`
      select * from public.historical_sync_jobs
       where agency_id = ${agencyId}::uuid
       order by created_at desc, id desc
       limit ${limit}`;
    const active = await activeJob(tx as unknown as Sql, agencyId);
    return { jobs: [...jobs], active };
  });
}
