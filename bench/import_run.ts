// One import end to end: a fresh agency and job over a whole stand-in account, then
// processHistoricalSync invocations back to back (as the dispatcher would call them, minus
// the minute between ticks) until the job completes. Measures wall time, the processor's
// CPU, and every SQL statement it sent, counted through postgres.js's `debug` hook.
import process from "node:process";
import { loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import type { Config } from "../supabase/functions/_shared/platform/config.ts";
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import { processHistoricalSync } from "../supabase/functions/_shared/sync/processor.ts";
import { countCalls, createAgency, createJob, DB_URL, jobRow } from "./database.ts";

export interface ImportOptions {
  /** The stand-in's base URL and the account's key there. */
  apiBase: string;
  apiKey: string;
  pageSize: number;
  maxPagesPerRun: number;
}

export interface ImportResult {
  status: string;
  calls: number;
  imported: number;
  skipped: number;
  failed: number;
  pages: number;
  invocations: number;
  wallMs: number;
  callsPerSec: number;
  /** The processor's statements (BEGIN/COMMIT excluded; postgres.js sends none here). */
  statements: number;
  /** Statements of the page steps themselves (record_sync_page). */
  pageStatements: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  cpuMsPerPage: number;
  agencyId: string;
  jobId: string;
}

/** Counts what a connection sends: every query, and the record_sync_page calls among them. */
export function countingConnection(url = DB_URL) {
  const counts = { statements: 0, pageStatements: 0, texts: [] as string[] };
  const sql = connect(url, {
    debug: (_conn: number, query: string) => {
      if (/^\s*(begin|commit|rollback)\b/i.test(query)) return;
      counts.statements++;
      if (query.includes("record_sync_page")) counts.pageStatements++;
    },
  });
  return { sql, counts };
}

export function benchConfig(overrides: Partial<Config>): Config {
  return { ...loadConfig(), ...overrides };
}

/**
 * Imports the account behind `apiKey` into a new agency. `setup` is the bench's connection
 * (agency, job, checks: not counted); the processor gets a counting connection of its own.
 * The caller deletes the agency.
 */
export async function measureImport(setup: Sql, opts: ImportOptions): Promise<ImportResult> {
  const config = benchConfig({
    ULTRAVOX_API_BASE: opts.apiBase,
    SYNC_PAGE_SIZE: opts.pageSize,
    SYNC_MAX_PAGES_PER_RUN: opts.maxPagesPerRun,
  });
  const agencyId = await createAgency(setup, opts.apiKey);
  const { sql, counts } = countingConnection();
  try {
    await sql`select 1`; // a warm worker's connection is open already
    counts.statements = 0;
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    const jobId = await createJob(setup, agencyId);
    let pages = 0;
    let invocations = 0;
    let status = "pending";
    while (status === "pending" || status === "in_progress") {
      const run = await processHistoricalSync({ sql, config, log: () => {} }, { jobId });
      invocations++;
      const job = run.jobs[0];
      if (!job) throw new Error(`job ${jobId} could not be claimed`);
      pages += job.pages;
      status = job.status;
      if (job.pages === 0 && status === "in_progress") {
        throw new Error("an invocation made no progress");
      }
    }
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpu0);
    const row = await jobRow(setup, jobId);
    const calls = await countCalls(setup, agencyId);
    return {
      status: row.status,
      calls,
      imported: row.imported_calls,
      skipped: row.skipped_calls,
      failed: row.failed_calls,
      pages,
      invocations,
      wallMs,
      callsPerSec: calls / (wallMs / 1000),
      statements: counts.statements,
      pageStatements: counts.pageStatements,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuMsPerPage: (cpu.user + cpu.system) / 1000 / pages,
      agencyId,
      jobId,
    };
  } finally {
    await sql.end();
  }
}
