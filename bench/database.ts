// The bench's own SQL: agencies and jobs to measure with, the paused cron schedule, the
// dispatcher's Vault secrets pointed at the bench's server, counting a connection's
// statements, and cleaning up afterwards. The bench's own connection is never counted as
// the processor's.
import { dbUrl } from "../scripts/db/local_cluster.ts";
import { putVaultSecret } from "../scripts/local/vault_secrets.ts";
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";

export const DB_URL = dbUrl();

/** Every agency the bench creates has this name, so a crashed run can be cleaned up too. */
export const BENCH_AGENCY_NAME = "bench (delete me)";

/** The end of every generated account (generateAccount's default `end`). */
export const ACCOUNT_END = "2026-11-01T00:00:00Z";

/** Generated accounts spread their calls over this many days before ACCOUNT_END. */
export const ACCOUNT_DAYS = 365;

export function benchSql(): Sql {
  return connect(DB_URL, { max: 4 });
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
 * A connection that counts what it sends: every statement (BEGIN/COMMIT/ROLLBACK left out;
 * the processor sends none), and the record_sync_page calls among them, through
 * postgres.js's `debug` hook, which it calls once per query.
 */
export function countingConnection(url = DB_URL) {
  const counts = { statements: 0, pageStatements: 0 };
  const sql = connect(url, {
    debug: (_conn: number, query: string) => {
      if (/^\s*(begin|commit|rollback)\b/i.test(query)) return;
      counts.statements++;
      if (query.includes("record_sync_page")) counts.pageStatements++;
    },
  });
  return { sql, counts };
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
  await vacuum(sql);
}

/** Settles the tables the bench writes (dead rows gone, statistics fresh). */
export async function vacuum(sql: Sql) {
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

/**
 * Waits (up to `timeoutMs`) until no other agency has an active job, for the measurements
 * whose processors claim any job; false if the database did not fall quiet in time.
 */
export async function waitForQuiet(sql: Sql, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while ((await foreignActiveJobs(sql)) > 0) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
  return true;
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

/** Pauses again what withCronPaused paused, should someone have re-activated it meanwhile. */
export async function keepCronPaused(sql: Sql) {
  for (const jobid of pausedByUs) {
    await sql`select cron.alter_job(${jobid}, active := false)
               from cron.job where jobid = ${jobid} and active`;
  }
}

/** Re-activates what withCronPaused paused (also from a signal handler, on a fresh connection). */
export async function restoreCron(sql: Sql) {
  for (const jobid of pausedByUs) {
    await sql`select cron.alter_job(${jobid}, active := true)`;
    pausedByUs.delete(jobid);
  }
}

const DISPATCH_SECRETS = ["project_url", "functions_secret_key"] as const;
type DispatchSecrets = Partial<Record<(typeof DISPATCH_SECRETS)[number], string>>;

/** The dispatcher's secrets as withDispatchSecrets found them, until it puts them back. */
let secretsBefore: DispatchSecrets | null = null;

/**
 * Runs `fn` with the dispatcher's Vault secrets (project_url, functions_secret_key) pointing
 * at the bench's own server, and puts back what was there (or nothing) whatever happens.
 */
export async function withDispatchSecrets<T>(
  sql: Sql,
  secrets: { projectUrl: string; secretKey: string },
  fn: () => Promise<T>,
): Promise<T> {
  const rows = await sql<{ name: keyof DispatchSecrets; value: string }[]>`
    select name, decrypted_secret as value from vault.decrypted_secrets
     where name = any(${DISPATCH_SECRETS as unknown as string[]}::text[])`;
  secretsBefore = Object.fromEntries(rows.map((r) => [r.name, r.value]));
  try {
    await putDispatchSecrets(sql, secrets);
    return await fn();
  } finally {
    await restoreDispatchSecrets(sql);
  }
}

/** Points the dispatcher at `projectUrl` (again: a `deno task serve` elsewhere rewrites them). */
export async function putDispatchSecrets(
  sql: Sql,
  secrets: { projectUrl: string; secretKey: string },
) {
  await putVaultSecret(sql, "project_url", secrets.projectUrl);
  await putVaultSecret(sql, "functions_secret_key", secrets.secretKey);
}

/** Puts back what withDispatchSecrets replaced (also from a signal handler). */
export async function restoreDispatchSecrets(sql: Sql) {
  const before = secretsBefore;
  if (!before) return;
  for (const name of DISPATCH_SECRETS) {
    const value = before[name];
    if (value !== undefined) await putVaultSecret(sql, name, value);
    else await sql`delete from vault.secrets where name = ${name}`;
  }
  secretsBefore = null;
}
