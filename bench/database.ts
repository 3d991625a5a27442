// The bench's own SQL: agencies and jobs to measure with, the paused cron schedule, and
// cleaning up afterwards. Runs on a connection of its own, so none of it is counted as
// the processor's statements.
import { dbUrl } from "../scripts/db/local_cluster.ts";
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";

export const DB_URL = dbUrl();

/** Every agency the bench creates has this name, so a crashed run can be cleaned up too. */
export const BENCH_AGENCY_NAME = "bench (delete me)";

/** The end of every generated account (ultravox_accounts.ts's default `end`). */
export const ACCOUNT_END = "2026-11-01T00:00:00Z";

export function benchSql(): Sql {
  return connect(DB_URL, { max: 4 });
}

export interface BenchJob {
  agencyId: string;
  jobId: string;
}

/** A fresh agency with an Ultravox key. */
export async function createAgency(sql: Sql, apiKey: string): Promise<string> {
  const [{ id }] = await sql<{ id: string }[]>`
    insert into public.agencies (name) values (${BENCH_AGENCY_NAME}) returning id`;
  await sql`select public.set_agency_ultravox_api_key(${id}, ${apiKey})`;
  return id;
}

/** A pending job over the whole account, every call (max_calls null). */
export async function createJob(sql: Sql, agencyId: string): Promise<string> {
  const [job] = await sql<{ id: string }[]>`
    select id from public.create_sync_job(${agencyId}, null, ${ACCOUNT_END}, null)`;
  if (!job) throw new Error(`agency ${agencyId} already has an active job`);
  return job.id;
}

export async function jobRow(sql: Sql, jobId: string) {
  const [row] = await sql<
    {
      status: string;
      processed_calls: number;
      imported_calls: number;
      skipped_calls: number;
      failed_calls: number;
    }[]
  >`
    select status, processed_calls, imported_calls, skipped_calls, failed_calls
      from public.historical_sync_jobs where id = ${jobId}`;
  return row;
}

export async function countCalls(sql: Sql, agencyId: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.calls where agency_id = ${agencyId}`;
  return n;
}

/**
 * Deletes agencies (their jobs and calls cascade) and their Vault keys. With no ids, every
 * agency the bench ever made. Then vacuums calls, so the next run starts from the same
 * state instead of wading through dead rows.
 */
export async function deleteAgencies(sql: Sql, ids?: string[]) {
  const rows = ids
    ? await sql<{ id: string }[]>`
        delete from public.agencies where id = any(${ids}::uuid[]) returning id`
    : await sql<{ id: string }[]>`
        delete from public.agencies where name = ${BENCH_AGENCY_NAME} returning id`;
  const names = rows.map((r) => `ultravox_api_key:${r.id}`);
  if (names.length > 0) await sql`delete from vault.secrets where name = any(${names}::text[])`;
  await sql`vacuum (analyze) public.calls, public.historical_sync_jobs,
                             public.historical_sync_job_leases`;
}

/**
 * Active jobs that are not the bench's: a processor claiming without a job id would take
 * them, so the bench refuses to run beside them.
 */
export async function foreignActiveJobs(sql: Sql): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n
      from public.historical_sync_jobs j join public.agencies a on a.id = j.agency_id
     where j.status in ('pending', 'in_progress') and a.name <> ${BENCH_AGENCY_NAME}`;
  return n;
}

/** The cron jobs withCronPaused has paused and not yet restored. */
const pausedByUs = new Set<number>();

/**
 * Runs `fn` with the process-historical-sync schedule paused (the dispatcher would otherwise
 * hand the bench's jobs to whatever serves the functions), and restores it whatever happens.
 */
export async function withCronPaused<T>(sql: Sql, fn: () => Promise<T>): Promise<T> {
  const paused = await sql<{ jobid: number }[]>`
    select jobid from cron.job where jobname = 'process-historical-sync' and active`;
  for (const { jobid } of paused) {
    await sql`select cron.alter_job(${jobid}, active := false)`;
    pausedByUs.add(jobid);
  }
  try {
    return await fn();
  } finally {
    await restoreCron(sql);
  }
}

/** Re-activates what withCronPaused paused (also from a signal handler, on a fresh connection). */
export async function restoreCron(sql: Sql) {
  for (const jobid of pausedByUs) {
    await sql`select cron.alter_job(${jobid}, active := true)`;
    pausedByUs.delete(jobid);
  }
}
