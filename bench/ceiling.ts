// The ceiling: what Postgres takes over the importer's kind of connection (postgres.js via
// db.ts connect(), prepare: false) when nothing else is in the way. The same calls, mapped to
// the same columns the importer writes (raw jsonb included) before the clock starts, go in
// by one INSERT … ON CONFLICT DO NOTHING per page: no HTTP, no validation, no bookkeeping.
//
// Two forms of that INSERT:
//   "values": a multi-row VALUES list, one bound parameter per column and row, serialized by
//             postgres.js as it sends each page (the ceiling the throughput target is set
//             against);
//   "jsonb":  each page as one JSON parameter unpacked by jsonb_to_recordset (the form
//             record_sync_page takes), serialized before the clock starts: Postgres's side
//             only, the tightest ceiling. The importer overlaps its own client work with the
//             previous page's write, so it can beat the sequential "values" loop.
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import { parseCall } from "../supabase/functions/_shared/ultravox/call.ts";
import { generateAccount } from "../tools/stand_in_ultravox/accounts.ts";
import { ACCOUNT_DAYS, createAgency, createJob, DB_URL, deleteAgencies } from "./database.ts";
import { formatSpread, type Row, type Spread, spread } from "./stats.ts";

export type CeilingForm = "values" | "jsonb";

export interface CeilingResult {
  form: CeilingForm;
  calls: number;
  /** Rows the INSERTs reported (all of them, on a database that did not hold the calls yet). */
  inserted: number;
  pageSize: number;
  wallMs: number;
  callsPerSec: number;
}

const COLUMNS = [
  "agency_id",
  "ultravox_call_id",
  "ultravox_agent_id",
  "created_at",
  "joined_at",
  "ended_at",
  "end_reason",
  "duration_seconds",
  "billed_duration_seconds",
  "short_summary",
  "summary",
  "recording_enabled",
  "metadata",
  "raw",
  "source",
  "historical_sync_job_id",
] as const;

type CallRow = Record<(typeof COLUMNS)[number], unknown>;

function insertPage(db: Sql, page: CallRow[] | string) {
  if (typeof page !== "string") {
    return db`
      insert into public.calls ${db(page as never, ...COLUMNS)}
      on conflict (ultravox_call_id) do nothing`;
  }
  return db`
    insert into public.calls (
      agency_id, ultravox_call_id, ultravox_agent_id, created_at, joined_at, ended_at,
      end_reason, duration_seconds, billed_duration_seconds, short_summary, summary,
      recording_enabled, metadata, raw, source, historical_sync_job_id)
    select r.agency_id, r.ultravox_call_id, r.ultravox_agent_id, r.created_at, r.joined_at,
           r.ended_at, r.end_reason, r.duration_seconds, r.billed_duration_seconds,
           r.short_summary, r.summary, r.recording_enabled, r.metadata, r.raw, r.source,
           r.historical_sync_job_id
      from jsonb_to_recordset(${page}::text::jsonb) as r(
        agency_id uuid, ultravox_call_id uuid, ultravox_agent_id uuid, created_at timestamptz,
        joined_at timestamptz, ended_at timestamptz, end_reason text, duration_seconds numeric,
        billed_duration_seconds numeric, short_summary text, summary text,
        recording_enabled boolean, metadata jsonb, raw jsonb, source text,
        historical_sync_job_id uuid)
    on conflict (ultravox_call_id) do nothing`;
}

/**
 * Inserts the account `{seed, count}` page by page and deletes it again. `sql` is the bench's
 * own connection (for the agency and the clean-up); the inserts get a fresh connection, as
 * the importer does.
 */
export async function measureCeiling(
  sql: Sql,
  opts: { seed: number; count: number; pageSize: number; form?: CeilingForm },
): Promise<CeilingResult> {
  const form = opts.form ?? "values";
  const agencyId = await createAgency(sql, "ceiling-has-no-key-use");
  try {
    // The importer stamps its job id on every row (a foreign key checked per row): so do we.
    const jobId = await createJob(sql, agencyId);
    const rows: CallRow[] = generateAccount({
      seed: opts.seed,
      count: opts.count,
      days: ACCOUNT_DAYS,
    })
      .map((c) => {
        const parsed = parseCall(c);
        if (!parsed.ok) throw new Error(`generated call ${c.callId} is invalid: ${parsed.reason}`);
        return {
          ...parsed.row,
          agency_id: agencyId,
          source: "historical_sync",
          historical_sync_job_id: jobId,
        };
      });
    const pages: (CallRow[] | string)[] = [];
    for (let i = 0; i < rows.length; i += opts.pageSize) {
      const page = rows.slice(i, i + opts.pageSize);
      pages.push(form === "values" ? page : JSON.stringify(page));
    }

    const db = connect(DB_URL);
    try {
      await db`select 1`; // connected before the clock starts, as a warm edge worker is
      let inserted = 0;
      const started = performance.now();
      for (const page of pages) inserted += (await insertPage(db, page)).count;
      const wallMs = performance.now() - started;
      return {
        form,
        calls: rows.length,
        inserted,
        pageSize: opts.pageSize,
        wallMs,
        callsPerSec: rows.length / (wallMs / 1000),
      };
    } finally {
      await db.end();
    }
  } finally {
    await deleteAgencies(sql, [agencyId]);
  }
}

/** The runs of both forms, by page size. */
export interface CeilingRuns {
  values: Record<number, CeilingResult[]>;
  jsonb: Record<number, CeilingResult[]>;
}

export interface CeilingFigures {
  values: Record<number, Spread>;
  jsonb: Record<number, Spread>;
}

export function ceilingFigures(runs: CeilingRuns, pageSizes: number[]): CeilingFigures {
  const rate = (rs: CeilingResult[]) => spread(rs.map((r) => r.callsPerSec));
  return {
    values: Object.fromEntries(pageSizes.map((ps) => [ps, rate(runs.values[ps])])),
    jsonb: Object.fromEntries(pageSizes.map((ps) => [ps, rate(runs.jsonb[ps])])),
  };
}

export function ceilingRows(f: CeilingFigures, pageSizes: number[]): Row[] {
  const perPage = (by: Record<number, Spread>) =>
    pageSizes.map((ps) => `page ${ps}: **${formatSpread(by[ps])}** calls/s`).join("<br>");
  return [
    {
      figure: "Ceiling: one multi-row `INSERT … VALUES … ON CONFLICT DO NOTHING` per page, " +
        "same columns, postgres.js, serialized as sent",
      target: "—",
      result: perPage(f.values),
    },
    {
      figure: "Tightest ceiling: one `INSERT … SELECT FROM jsonb_to_recordset($1)` per page, " +
        "serialized before the clock",
      target: "—",
      result: perPage(f.jsonb),
    },
  ];
}
