// The processor's SQL: one call of a state-change function per operation (see the
// migration 20261201000200_sync_engine_state.sql). Nothing here composes a state change
// out of several statements.
import type { Sql } from "../platform/db.ts";
import type { CallRow } from "../ultravox/call.ts";

export interface ClaimedJob {
  id: string;
  agency_id: string;
  date_from: string | null;
  date_to: string;
  cursor: string | null;
  max_calls: number | null;
  /** Which walk the job is in: its calls, then (a catch-up) the deleted calls. */
  phase: "calls" | "deleted_calls";
  deleted_cursor: string | null;
}

export interface PageOutcome {
  status: "pending" | "in_progress" | "completed" | "failed" | "cancelled";
  processed_calls: number;
  imported_calls: number;
  skipped_calls: number;
  failed_calls: number;
  page_imported: number;
  page_skipped: number;
  page_failed: number;
  page_refreshed: number;
}

export interface InvalidCall {
  ord: number;
  call_id: string | null;
  reason: string;
}

/** A storable call of the page with its position in it (API order) and unreadable fields. */
export type PageRow = CallRow & { ord: number; unreadable: string[] };

export interface PageWrite {
  jobId: string;
  holder: string;
  fromCursor: string | null;
  nextCursor: string | null;
  /** JSON array of PageRow: serialized once, sent as text (postgres.js would re-encode a jsonb parameter). */
  callsJson: string;
  invalid: InvalidCall[];
  total: number | null;
  leaseSeconds: number;
}

export function syncStore(sql: Sql) {
  return {
    /** Leases claimable jobs, counting an attempt on each (see claim_sync_jobs). */
    async claim(
      holder: string,
      limit: number,
      leaseSeconds: number,
      maxAttempts: number,
      jobId: string | null,
    ) {
      // The join reads the statement's snapshot, from before the claim: a job that had no
      // engine-state row yet (one inserted without create_sync_job) gets its row from this
      // very claim, unseen here, with the defaults (phase 'calls', no deleted-calls cursor).
      // An inner join would lease such a job, count an attempt, and never walk it.
      return await sql<ClaimedJob[]>`
        select c.id, c.agency_id, c.date_from, c.date_to, c.cursor, c.max_calls,
               coalesce(l.phase, 'calls') as phase, l.deleted_cursor
          from public.claim_sync_jobs(${holder}, ${limit}, ${leaseSeconds}, ${jobId},
                                     p_max_attempts => ${maxAttempts}) c
          left join public.historical_sync_job_leases l on l.job_id = c.id
         where c.status = 'in_progress'`;
    },

    async apiKey(agencyId: string): Promise<string | null> {
      const [row] = await sql<{ key: string | null }[]>`
        select public.get_agency_ultravox_api_key(${agencyId}) as key`;
      return row?.key ?? null;
    },

    /** The page step; null when the fence failed (cancelled, or moved by another worker). */
    async recordPage(p: PageWrite): Promise<PageOutcome | null> {
      const [row] = await sql<PageOutcome[]>`
        select * from public.record_sync_page(
          ${p.jobId}, ${p.holder}, ${p.fromCursor}, ${p.nextCursor},
          ${p.callsJson}::text::jsonb, ${JSON.stringify(p.invalid)}::text::jsonb,
          ${p.total}, ${p.leaseSeconds})`;
      return row ?? null;
    },

    /** A deleted-calls page step; null when the fence failed. */
    async recordDeletedPage(p: {
      jobId: string;
      holder: string;
      fromCursor: string | null;
      nextCursor: string | null;
      tombstones: unknown[];
      leaseSeconds: number;
    }): Promise<{ status: PageOutcome["status"]; page_marked: number } | null> {
      const [row] = await sql<{ status: PageOutcome["status"]; page_marked: number }[]>`
        select status, page_marked from public.record_deleted_page(
          ${p.jobId}, ${p.holder}, ${p.fromCursor}, ${p.nextCursor},
          ${JSON.stringify(p.tombstones)}::text::jsonb, ${p.leaseSeconds})`;
      return row ?? null;
    },

    async renew(jobId: string, holder: string, leaseSeconds: number): Promise<boolean> {
      const rows =
        await sql`select 1 from public.renew_sync_lease(${jobId}, ${holder}, ${leaseSeconds})`;
      return rows.length === 1;
    },

    /** Drops the lease; with `notBefore` (ISO) no worker claims the job before then. */
    async release(jobId: string, holder: string, notBefore: string | null = null) {
      await sql`select 1 from public.release_sync_job(${jobId}, ${holder}, ${notBefore})`;
    },

    async recordError(
      jobId: string,
      holder: string,
      cursor: string | null,
      message: string,
      maxAttempts: number,
    ): Promise<string | null> {
      const [row] = await sql<{ status: string }[]>`
        select status from public.record_sync_error(
          ${jobId}, ${holder}, ${cursor}, ${message}, ${maxAttempts})`;
      return row?.status ?? null;
    },

    async fail(jobId: string, holder: string, cursor: string | null, message: string) {
      const [row] = await sql<{ status: string }[]>`
        select status from public.fail_sync_job(${jobId}, ${holder}, ${cursor}, ${message})`;
      return row?.status ?? null;
    },

    /** Queues the next invocation through pg_net; null when dispatch is not set up. */
    async requestContinuation(): Promise<string | null> {
      const [row] = await sql<{ request_id: string | null }[]>`
        select public.request_sync_continuation() as request_id`;
      return row.request_id;
    },

    /** The created of the oldest call the job has counted (where a walk resumes by time). */
    async oldestCounted(jobId: string): Promise<string | null> {
      const [row] = await sql<{ at: string | null }[]>`
        select oldest_counted_at as at from public.historical_sync_job_leases
         where job_id = ${jobId}`;
      return row?.at ?? null;
    },

    async status(jobId: string): Promise<string | null> {
      const [row] = await sql<{ status: string }[]>`
        select status from public.historical_sync_jobs where id = ${jobId}`;
      return row?.status ?? null;
    },
  };
}

export type SyncStore = ReturnType<typeof syncStore>;
