// What the fault tests share: a processor config aimed at the stand-in, fresh accounts,
// running a job to its end, pausing the cron schedule, row locks held from the test's side,
// and the exactness check every import ends with (lost, duplicated, counter mismatches).
import "../../support/dev_env.ts";
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../../supabase/functions/_shared/platform/config.ts";
import { connect, type Sql } from "../../../supabase/functions/_shared/platform/db.ts";
import type { JobRow } from "../../../supabase/functions/_shared/jobs/view.ts";
import {
  processHistoricalSync,
  type RunSummary,
} from "../../../supabase/functions/_shared/sync/processor.ts";
import { TEST_DB_URL } from "../../support/db.ts";
import type { FakeCall } from "../../../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../../../tools/stand_in_ultravox/accounts.ts";

export type { Sql };
export { TEST_DB_URL };

/** generateAccount's accounts end here; jobs cover everything up to it. */
export const JOB_DATE_TO = "2026-11-01T00:00:00.000000Z";

/** A connection of the test's own (timestamptz as ISO strings). End it yourself. */
export function dbSql(max = 4): Sql {
  return connect(TEST_DB_URL, { max });
}

/** A fresh account, newest first; a random seed so no two tests share a callId. */
export function freshAccount(count: number): FakeCall[] {
  const seed = crypto.getRandomValues(new Uint32Array(1))[0];
  return generateAccount({ seed, count, days: 30 });
}

/** The processor's config aimed at `apiBase`: small pages, short leases, no page budget. */
export function syncConfig(apiBase: string, overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig(),
    ULTRAVOX_API_BASE: apiBase,
    SYNC_PAGE_SIZE: 10,
    SYNC_LEASE_SECONDS: 2,
    SYNC_MAX_PAGES_PER_RUN: 100,
    SYNC_TIME_BUDGET_MS: 60_000,
    ...overrides,
  };
}

/** The same config as the environment of a child processor. */
export function configEnv(config: Config): Record<string, string> {
  return {
    SUPABASE_DB_URL: TEST_DB_URL,
    ULTRAVOX_API_BASE: config.ULTRAVOX_API_BASE,
    SYNC_PAGE_SIZE: String(config.SYNC_PAGE_SIZE),
    SYNC_LEASE_SECONDS: String(config.SYNC_LEASE_SECONDS),
    SYNC_MAX_PAGES_PER_RUN: String(config.SYNC_MAX_PAGES_PER_RUN),
    SYNC_TIME_BUDGET_MS: String(config.SYNC_TIME_BUDGET_MS),
    SYNC_MAX_JOBS_PER_RUN: String(config.SYNC_MAX_JOBS_PER_RUN),
    SYNC_MAX_ATTEMPTS: String(config.SYNC_MAX_ATTEMPTS),
  };
}

/** Injected into the processor: retries and Retry-After never wait for real. */
export const noSleep = (_ms: number): Promise<void> => Promise.resolve();
export const quiet = (_event: Record<string, unknown>): void => {};

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function pagesFor(calls: number, pageSize: number): number {
  return Math.max(1, Math.ceil(calls / pageSize));
}

/** A pending job through create_sync_job, as start-historical-sync makes it. */
export async function createJob(
  sql: Sql,
  agencyId: string,
  opts: { dateFrom?: string | null; dateTo?: string; maxCalls?: number | null } = {},
): Promise<string> {
  const [job] = await sql<{ id: string }[]>`
    select id from public.create_sync_job(
      ${agencyId}::uuid, ${opts.dateFrom ?? null}::timestamptz,
      ${opts.dateTo ?? JOB_DATE_TO}::timestamptz, ${opts.maxCalls ?? null}::integer)`;
  assert.ok(job, `create_sync_job refused a job for agency ${agencyId}`);
  return job.id;
}

export async function loadJob(sql: Sql, jobId: string): Promise<JobRow> {
  const [job] = await sql<JobRow[]>`
    select * from public.historical_sync_jobs where id = ${jobId}::uuid`;
  assert.ok(job, `no job ${jobId}`);
  return job;
}

export async function jobStatus(sql: Sql, jobId: string): Promise<string> {
  return (await loadJob(sql, jobId)).status;
}

export const ACTIVE = new Set(["pending", "in_progress"]);

/**
 * Pauses the pg_cron schedule of process-historical-sync (docs/ARCHITECTURE.md §8) and returns the restore.
 * A schedule someone else paused is left paused.
 */
export async function pauseCron(sql: Sql): Promise<() => Promise<void>> {
  const [job] = await sql<{ jobid: string; active: boolean }[]>`
    select jobid::text, active from cron.job where jobname = 'process-historical-sync'`;
  if (!job?.active) return () => Promise.resolve();
  await sql`select cron.alter_job(${job.jobid}::bigint, active := false)`;
  return async () => {
    await sql`select cron.alter_job(${job.jobid}::bigint, active := true)`;
  };
}

export interface ProcessorDepsLite {
  sql: Sql;
  config: Config;
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  log?: (event: Record<string, unknown>) => void;
}

export interface RunLog {
  /** Invocations that claimed the job. */
  invocations: number;
  /** Invocations that could not claim it (a live lease elsewhere). */
  unclaimed: number;
  /** record_sync_page calls that succeeded, summed over the invocations. */
  pages: number;
  imported: number;
  skipped: number;
  failed: number;
  status: string;
  runs: RunSummary[];
}

/**
 * processHistoricalSync({jobId}) again and again, as cron ticks would, until the job is no
 * longer active. An invocation that cannot claim the job (a dead worker's lease) is retried
 * until `waitMs` has passed. `between` runs after each invocation that claimed the job and
 * left it active, before the next one (e.g. a clock moving past a Retry-After).
 */
export async function runUntilDone(
  deps: ProcessorDepsLite,
  jobId: string,
  opts: {
    maxInvocations?: number;
    waitMs?: number;
    between?: (run: RunSummary) => Promise<void>;
  } = {},
): Promise<RunLog> {
  const maxInvocations = opts.maxInvocations ?? 40;
  const deadline = Date.now() + (opts.waitMs ?? 15_000);
  const log: RunLog = {
    invocations: 0,
    unclaimed: 0,
    pages: 0,
    imported: 0,
    skipped: 0,
    failed: 0,
    status: "pending",
    runs: [],
  };
  while (true) {
    const run = await processHistoricalSync({ log: quiet, ...deps }, { jobId });
    log.runs.push(run);
    const job = run.jobs[0];
    if (!job) {
      log.unclaimed++;
      log.status = await jobStatus(deps.sql, jobId);
      if (!ACTIVE.has(log.status)) return log;
      if (Date.now() > deadline) throw new Error(`job ${jobId} stayed unclaimable`);
      await delay(50);
      continue;
    }
    log.invocations++;
    log.pages += job.pages;
    log.imported += job.imported;
    log.skipped += job.skipped;
    log.failed += job.failed;
    log.status = job.status;
    if (!ACTIVE.has(job.status)) return log;
    if (log.invocations >= maxInvocations) {
      throw new Error(`job ${jobId} still ${job.status} after ${maxInvocations} invocations`);
    }
    await opts.between?.(run);
  }
}

// ---- exactness ---------------------------------------------------------------------------

export interface Expectation {
  /** The calls the walk must count, in API order (in range, up to the cap). */
  seen: readonly FakeCall[];
  /** Invalid objects the walk must count as failed. */
  invalid?: number;
  /**
   * callIds another agency of the test may hold (then skipped here). Without it every seen
   * call must be imported by this job and skipped must be 0.
   */
  heldElsewhere?: ReadonlySet<string>;
  status?: string;
  total?: number | null;
  /** Successful page steps the walk takes; compared with `pagesRecorded`. */
  pages?: number;
  pagesRecorded?: number;
  errorMessage?: string | RegExp;
}

export interface JobCheck {
  lost: number;
  duplicated: number;
  mismatches: string[];
  job: JobRow;
  rows: number;
}

/** Compares a job with what its walk must have produced. Read-only. */
export async function checkJob(sql: Sql, jobId: string, exp: Expectation): Promise<JobCheck> {
  const job = await loadJob(sql, jobId);
  type Row = { id: string; agency_id: string; job_id: string | null };
  const rows: Row[] = await sql<Row[]>`
    select ultravox_call_id::text as id, agency_id::text, historical_sync_job_id::text as job_id
      from public.calls
     where historical_sync_job_id = ${jobId}::uuid
        or ultravox_call_id = any (${exp.seen.map((c) => c.callId)}::uuid[])`;
  const mine = rows.filter((r) => r.job_id === jobId);
  const byId = new Map<string, Row[]>();
  for (const r of rows) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  const seenIds = new Set(exp.seen.map((c) => c.callId));
  const invalid = exp.invalid ?? 0;
  const mismatches: string[] = [];

  let lost = 0;
  for (const call of exp.seen) {
    const held = byId.get(call.callId) ?? [];
    const here = held.some((r) => r.job_id === jobId && r.agency_id === job.agency_id);
    const elsewhere = exp.heldElsewhere?.has(call.callId) && held.length > 0;
    if (!here && !elsewhere) lost++;
  }
  const distinct = new Set(rows.map((r) => r.id)).size;
  const expectedProcessed = exp.seen.length + invalid;
  const duplicated = rows.length - distinct +
    Math.max(0, job.processed_calls - expectedProcessed);

  const mismatch = (what: string, actual: unknown, expected: unknown) => {
    if (actual !== expected) mismatches.push(`${what}: ${actual} (expected ${expected})`);
  };
  mismatch(
    "processed = imported + skipped + failed",
    job.processed_calls,
    job.imported_calls + job.skipped_calls + job.failed_calls,
  );
  mismatch("imported_calls vs the job's rows in calls", job.imported_calls, mine.length);
  mismatch("processed_calls", job.processed_calls, expectedProcessed);
  mismatch("failed_calls", job.failed_calls, invalid);
  if (exp.heldElsewhere) {
    mismatch("imported + skipped", job.imported_calls + job.skipped_calls, exp.seen.length);
  } else {
    mismatch("imported_calls", job.imported_calls, exp.seen.length);
    mismatch("skipped_calls", job.skipped_calls, 0);
  }
  const strays = mine.filter((r) => !seenIds.has(r.id)).length;
  mismatch("rows outside the walk", strays, 0);
  mismatch("status", job.status, exp.status ?? "completed");
  if (exp.total !== undefined) mismatch("total_calls", job.total_calls, exp.total);
  if (exp.pages !== undefined && exp.pagesRecorded !== undefined) {
    mismatch("page steps recorded", exp.pagesRecorded, exp.pages);
  }
  if (exp.errorMessage !== undefined) {
    const ok = typeof exp.errorMessage === "string"
      ? job.error_message === exp.errorMessage
      : exp.errorMessage.test(job.error_message ?? "");
    if (!ok) mismatches.push(`error_message: ${job.error_message} (expected ${exp.errorMessage})`);
  }
  return { lost, duplicated, mismatches, job, rows: mine.length };
}

export function assertExact(check: JobCheck, label = "") {
  const where = label ? ` (${label})` : "";
  assert.equal(check.lost, 0, `calls lost${where}`);
  assert.equal(check.duplicated, 0, `calls duplicated${where}`);
  assert.deepEqual(check.mismatches, [], `counter mismatches${where}`);
}

// ---- waiting and locks ------------------------------------------------------------------

/** Polls `probe` until it returns something truthy; throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  while (true) {
    const value = await probe();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(opts.intervalMs ?? 2);
  }
}

export interface Lease {
  holder: string | null;
  expires_at: string | null;
  /** Seconds until expiry by the database clock (negative once expired). */
  left: number | null;
}

export async function leaseOf(sql: Sql, jobId: string): Promise<Lease | null> {
  const [row] = await sql<Lease[]>`
    select holder::text, expires_at,
           extract(epoch from expires_at - clock_timestamp())::float8 as left
      from public.historical_sync_job_leases where job_id = ${jobId}::uuid`;
  return row ?? null;
}

/** Sleeps until the job's lease has run out by the database clock. */
export async function waitForLeaseExpiry(sql: Sql, jobId: string): Promise<void> {
  const lease = await leaseOf(sql, jobId);
  if (lease?.left && lease.left > 0) await delay(Math.ceil(lease.left * 1000) + 30);
}

/** A claim at `p_now` = expiry − 1 ms, which must take nothing (and so changes nothing). */
export async function claimJustBeforeExpiry(sql: Sql, jobId: string): Promise<number> {
  const rows = await sql`
    select c.id from public.historical_sync_job_leases l,
           public.claim_sync_jobs(gen_random_uuid(), 1, 60, l.job_id,
                                  l.expires_at - interval '1 millisecond') c
     where l.job_id = ${jobId}::uuid and l.holder is not null`;
  return rows.length;
}

export interface HeldLock {
  /** Backend pid of the connection holding the lock. */
  pid: number;
  release(): Promise<void>;
}

/** Opens a transaction on a reserved connection, runs `lock` in it, and keeps it open. */
export async function holdLock(sql: Sql, lock: (conn: Sql) => Promise<unknown>): Promise<HeldLock> {
  const conn = await sql.reserve();
  try {
    await conn`begin`;
    const [{ pid }] = await conn<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await lock(conn as unknown as Sql);
    let released = false;
    return {
      pid,
      async release() {
        if (released) return;
        released = true;
        try {
          await conn`rollback`;
        } finally {
          conn.release();
        }
      },
    };
  } catch (e) {
    conn.release();
    throw e;
  }
}

export interface Blocked {
  pid: number;
  query: string;
}

/** Backends waiting on a lock `pid` holds. */
export async function blockedBy(sql: Sql, pid: number): Promise<Blocked[]> {
  return await sql<Blocked[]>`
    select pid, query from pg_stat_activity
     where ${pid}::int = any (pg_blocking_pids(pid))`;
}

export async function backendAlive(sql: Sql, pid: number): Promise<boolean> {
  const rows = await sql`select 1 from pg_stat_activity where pid = ${pid}::int`;
  return rows.length > 0;
}

export async function terminateBackend(sql: Sql, pid: number): Promise<void> {
  await sql`select pg_terminate_backend(${pid}::int)`;
}

/** Runs `fn` in a transaction that is always rolled back (its effects are only seen inside). */
export async function inRolledBackTransaction<T>(
  sql: Sql,
  fn: (tx: Sql) => Promise<T>,
): Promise<T> {
  const conn = await sql.reserve();
  try {
    await conn`begin`;
    try {
      return await fn(conn as unknown as Sql);
    } finally {
      await conn`rollback`;
    }
  } finally {
    conn.release();
  }
}
