// The processor's SQL: one call of a state-change function per operation (see the
// migration 20261201000200_sync_engine_state.sql). Nothing here composes a state change
// out of several statements.
import type { Sql } from "../platform/db.ts";
import type { CallRow } from "../ultravox/call.ts";

/** A piece of claimed work: a job's own walk, or one slice of a sliced job. */
export interface ClaimedJob {
  id: string;
  agency_id: string;
  /** The walk's range: the slice's, or the job's. */
  date_from: string | null;
  date_to: string;
  cursor: string | null;
  max_calls: number | null;
  /** Which walk the job is in: its calls, then (a catch-up) the deleted calls. */
  phase: "calls" | "deleted_calls";
  deleted_cursor: string | null;
  /** The slice walked; null for the job's own walk. */
  slice_no: number | null;
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
  /** A slice's step: its range now (a split may have narrowed it), and when it is done the
   * slice this worker goes on with (null: none). */
  slice_date_from?: string | null;
  slice_date_to?: string;
  next_slice_no?: number | null;
  next_date_from?: string | null;
  next_date_to?: string | null;
  next_cursor?: string | null;
}

export interface InvalidCall {
  ord: number;
  call_id: string | null;
  reason: string;
  /** Its `created` when readable: a slice counts it only inside its range. */
  created?: string | null;
}

/** A storable call of the page with its position in it (API order) and unreadable fields. */
export type PageRow = CallRow & { ord: number; unreadable: string[] };

export interface PageWrite {
  fromCursor: string | null;
  nextCursor: string | null;
  /** JSON array of PageRow: serialized once, sent as text (postgres.js would re-encode a jsonb parameter). */
  callsJson: string;
  invalid: InvalidCall[];
  total: number | null;
  leaseSeconds: number;
  /** SYNC_PAGE_SIZE: a slice's remainder under two pages is not split. */
  pageSize: number;
  /** SYNC_MAX_ATTEMPTS: a slice out of attempts is not handed on to this worker. */
  maxAttempts: number;
  /** A slice's step may hand this worker another slice when its walk ends (its budget allows). */
  takeNext?: boolean;
}

export function syncStore(sql: Sql) {
  return {
    /**
     * Leases claimable work (jobs' own walks and slices), least recently touched first,
     * counting an attempt on each (see claim_sync_work).
     */
    async claim(
      holder: string,
      limit: number,
      leaseSeconds: number,
      maxAttempts: number,
      jobId: string | null,
    ) {
      return await sql<ClaimedJob[]>`
        select id, agency_id, date_from, date_to, cursor, max_calls, phase, deleted_cursor,
               slice_no
          from public.claim_sync_work(${holder}, ${limit}, ${leaseSeconds}, ${jobId},
                                      p_max_attempts => ${maxAttempts})`;
    },

    /** The steps of one claimed walk, bound to its job or slice and our holder id. */
    walkOf(holder: string, work: Pick<ClaimedJob, "id" | "slice_no">): WalkSteps {
      return work.slice_no === null
        ? jobWalk(sql, holder, work.id)
        : sliceWalk(sql, holder, work.id, work.slice_no);
    },

    async apiKey(agencyId: string): Promise<string | null> {
      const [row] = await sql<{ key: string | null }[]>`
        select public.get_agency_ultravox_api_key(${agencyId}) as key`;
      return row?.key ?? null;
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

    /**
     * Queues the next invocations through pg_net, as many as the claimable work needs (at
     * least one; with `onlyIfWork`, none when nothing is claimable); null when dispatch is
     * not set up.
     */
    async requestContinuation(onlyIfWork = false): Promise<string[] | null> {
      const [row] = await sql<{ request_ids: string[] | null }[]>`
        select public.request_sync_continuation(null, ${onlyIfWork}) as request_ids`;
      return row.request_ids;
    },

    async status(jobId: string): Promise<string | null> {
      const [row] = await sql<{ status: string }[]>`
        select status from public.historical_sync_jobs where id = ${jobId}`;
      return row?.status ?? null;
    },
  };
}

export type SyncStore = ReturnType<typeof syncStore>;

/** What a walker does to the state of the walk it holds: each one SQL function call. */
export interface WalkSteps {
  /** The page step; null when the fence failed (cancelled, or moved by another worker). */
  recordPage(p: PageWrite): Promise<PageOutcome | null>;
  renew(leaseSeconds: number): Promise<boolean>;
  /** Drops the lease; with `notBefore` (ISO) no worker claims the walk before then. */
  release(notBefore?: string | null): Promise<void>;
  recordError(cursor: string | null, message: string, maxAttempts: number): Promise<string | null>;
  fail(cursor: string | null, message: string): Promise<string | null>;
  /** The created of the oldest call the walk has counted (where it resumes by time). */
  oldestCounted(): Promise<string | null>;
}

function jobWalk(sql: Sql, holder: string, jobId: string): WalkSteps {
  return {
    async recordPage(p) {
      const [row] = await sql<PageOutcome[]>`
        select * from public.record_sync_page(
          ${jobId}, ${holder}, ${p.fromCursor}, ${p.nextCursor},
          ${p.callsJson}::text::jsonb, ${JSON.stringify(p.invalid)}::text::jsonb,
          ${p.total}, ${p.leaseSeconds})`;
      return row ?? null;
    },
    async renew(leaseSeconds) {
      const rows =
        await sql`select 1 from public.renew_sync_lease(${jobId}, ${holder}, ${leaseSeconds})`;
      return rows.length === 1;
    },
    async release(notBefore = null) {
      await sql`select 1 from public.release_sync_job(${jobId}, ${holder}, ${notBefore})`;
    },
    async recordError(cursor, message, maxAttempts) {
      const [row] = await sql<{ status: string }[]>`
        select status from public.record_sync_error(
          ${jobId}, ${holder}, ${cursor}, ${message}, ${maxAttempts})`;
      return row?.status ?? null;
    },
    async fail(cursor, message) {
      const [row] = await sql<{ status: string }[]>`
        select status from public.fail_sync_job(${jobId}, ${holder}, ${cursor}, ${message})`;
      return row?.status ?? null;
    },
    async oldestCounted() {
      const [row] = await sql<{ at: string | null }[]>`
        select oldest_counted_at as at from public.historical_sync_job_leases
         where job_id = ${jobId}`;
      return row?.at ?? null;
    },
  };
}

function sliceWalk(sql: Sql, holder: string, jobId: string, sliceNo: number): WalkSteps {
  return {
    async recordPage(p) {
      // Remainders under two pages are not worth a split: walking them is as quick.
      const [row] = await sql<PageOutcome[]>`
        select * from public.record_sync_slice_page(
          ${jobId}, ${sliceNo}, ${holder}, ${p.fromCursor}, ${p.nextCursor},
          ${p.callsJson}::text::jsonb, ${JSON.stringify(p.invalid)}::text::jsonb,
          ${p.total}, ${p.leaseSeconds}, ${2 * p.pageSize}, ${p.maxAttempts},
          ${p.takeNext ?? true})`;
      return row ?? null;
    },
    async renew(leaseSeconds) {
      const rows = await sql`
        select 1 from public.renew_sync_slice_lease(${jobId}, ${sliceNo}, ${holder}, ${leaseSeconds})`;
      return rows.length === 1;
    },
    async release(notBefore = null) {
      await sql`
        select 1 from public.release_sync_slice(${jobId}, ${sliceNo}, ${holder}, ${notBefore})`;
    },
    async recordError(cursor, message, maxAttempts) {
      const [row] = await sql<{ status: string }[]>`
        select status from public.record_sync_slice_error(
          ${jobId}, ${sliceNo}, ${holder}, ${cursor}, ${message}, ${maxAttempts})`;
      return row?.status ?? null;
    },
    async fail(cursor, message) {
      const [row] = await sql<{ status: string }[]>`
        select status from public.fail_sync_slice(
          ${jobId}, ${sliceNo}, ${holder}, ${cursor}, ${message})`;
      return row?.status ?? null;
    },
    async oldestCounted() {
      const [row] = await sql<{ at: string | null }[]>`
        select oldest_counted_at as at from public.historical_sync_job_slices
         where job_id = ${jobId} and slice_no = ${sliceNo}`;
      return row?.at ?? null;
    },
  };
}
