// The page step alone: record_sync_page fed pages that were fetched, validated and mapped
// before the clock starts, one after the other on one claimed job, as the processor calls
// it. Three passes over the same account and agency, each a job of its own:
//
//   new:       no call is in `calls` yet: every call is inserted;
//   unchanged: every call is there already, written by the first job, and Ultravox sends
//              the same objects: all skipped, nothing refreshed;
//   changed:   every call is there already and Ultravox's object differs (the summary was
//              rewritten): all skipped and refreshed in place, raw object included.
//
// Each page step is timed on its own; the statements the page-step connection sent are
// counted. Against the tightest ceiling (bench/ceiling.ts) the new pass shows what the page
// step costs beyond a plain INSERT: the fence, the counters, max_calls, the lease, the
// refresh check, all in the one statement.
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { mapPage } from "../supabase/functions/_shared/sync/job_runner.ts";
import { syncStore } from "../supabase/functions/_shared/sync/store.ts";
import { generateAccount } from "../tools/stand_in_ultravox/accounts.ts";
import type { FakeCall } from "../tools/stand_in_ultravox/server.ts";
import type { CeilingRuns } from "./ceiling.ts";
import {
  ACCOUNT_DAYS,
  countingConnection,
  createAgency,
  createJob,
  deleteAgencies,
  vacuum,
} from "./database.ts";
import { formatSpread, median, num, type Row, type Spread, spread } from "./stats.ts";

export const PAGE_STEP_CASES = ["new", "unchanged", "changed"] as const;
export type PageStepCase = (typeof PAGE_STEP_CASES)[number];

export interface PassResult {
  pages: number;
  wallMs: number;
  callsPerSec: number;
  /** The median page step of the pass, and the mean. */
  medianPageMs: number;
  meanPageMs: number;
  imported: number;
  skipped: number;
  refreshed: number;
  /** Statements the page-step connection sent during the pass (all of them record_sync_page). */
  statements: number;
}

export interface PageStepResult {
  calls: number;
  pageSize: number;
  /** Average size of a page's JSON parameter (the page's rows, raw objects included). */
  payloadBytesPerPage: number;
  passes: Record<PageStepCase, PassResult>;
}

/** The object Ultravox sends on the second look: the same call with its summary rewritten. */
function changed(call: FakeCall): FakeCall {
  return { ...call, summary: `${call.summary ?? ""} (summary revised)`.trim() };
}

/** Mapped pages, as the processor sends them (JSON text plus the invalid objects). */
function pagesOf(calls: FakeCall[], pageSize: number) {
  const pages = [];
  for (let i = 0; i < calls.length; i += pageSize) {
    const { callsJson, invalid } = mapPage(calls.slice(i, i + pageSize));
    pages.push({ callsJson, invalid });
  }
  return pages;
}

export async function measurePageStep(
  sql: Sql,
  opts: { seed: number; count: number; pageSize: number },
): Promise<PageStepResult> {
  const calls = generateAccount({ seed: opts.seed, count: opts.count, days: ACCOUNT_DAYS });
  const original = pagesOf(calls, opts.pageSize);
  const revised = pagesOf(calls.map(changed), opts.pageSize);
  const payloadBytesPerPage = original.reduce(
    (sum, p) => sum + new TextEncoder().encode(p.callsJson).length,
    0,
  ) / original.length;
  const agencyId = await createAgency(sql, "page-step-has-no-key-use");
  const { sql: db, counts } = countingConnection();
  try {
    const store = syncStore(db);
    await db`select 1`; // connected before the clock starts
    const pass = async (pages: typeof original): Promise<PassResult> => {
      await vacuum(sql); // every pass starts from a settled table
      const jobId = await createJob(sql, agencyId);
      const holder = crypto.randomUUID();
      const [job] = await store.claim(holder, 1, 120, 10, jobId);
      if (!job) throw new Error("the page-step job could not be claimed");
      counts.statements = 0;
      let cursor: string | null = null;
      const times: number[] = [];
      let imported = 0, skipped = 0, refreshed = 0;
      for (let i = 0; i < pages.length; i++) {
        const nextCursor = i + 1 < pages.length ? `page-${i + 1}` : null;
        const started = performance.now();
        const outcome = await store.walkOf(holder, job).recordPage({
          fromCursor: cursor,
          nextCursor,
          ...pages[i],
          total: calls.length,
          leaseSeconds: 120,
          pageSize: 100,
          maxAttempts: 10,
        });
        times.push(performance.now() - started);
        if (!outcome) throw new Error("the page-step job was fenced out");
        imported += outcome.page_imported;
        skipped += outcome.page_skipped;
        refreshed += outcome.page_refreshed;
        cursor = nextCursor;
      }
      const wallMs = times.reduce((a, b) => a + b, 0);
      return {
        pages: pages.length,
        wallMs,
        callsPerSec: calls.length / (wallMs / 1000),
        medianPageMs: median(times),
        meanPageMs: wallMs / pages.length,
        imported,
        skipped,
        refreshed,
        statements: counts.statements,
      };
    };
    // In this order: the first pass writes the rows the other two find.
    const passes = {
      new: await pass(original),
      unchanged: await pass(original),
      changed: await pass(revised),
    };
    return { calls: calls.length, pageSize: opts.pageSize, payloadBytesPerPage, passes };
  } finally {
    await db.end();
    await deleteAgencies(sql, [agencyId]);
  }
}

// ── figures ─────────────────────────────────────────────────────────────────────────

export interface PassFigures {
  /** Each run's median page step. */
  msPerPage: Spread;
  /** Against the new pass of the same run. */
  ratioToNew: Spread;
  statementsPerPageStep: Spread;
  /** Per page step, from the first run (they are counts, the same every run). */
  imported: number;
  skipped: number;
  refreshed: number;
}

export interface PageStepFigures {
  /** The new pass as a rate, and against the tightest ceiling of the same run. */
  callsPerSec: Spread;
  ratioToJsonbCeiling: Spread;
  pageSize: number;
  pages: number;
  payloadKb: number;
  passes: Record<PageStepCase, PassFigures>;
}

export function pageStepFigures(runs: PageStepResult[], ceiling: CeilingRuns): PageStepFigures {
  const pageSize = runs[0].pageSize;
  const passes = {} as Record<PageStepCase, PassFigures>;
  for (const c of PAGE_STEP_CASES) {
    const first = runs[0].passes[c];
    passes[c] = {
      msPerPage: spread(runs.map((r) => r.passes[c].medianPageMs)),
      ratioToNew: spread(runs.map((r) => r.passes[c].medianPageMs / r.passes.new.medianPageMs)),
      statementsPerPageStep: spread(runs.map((r) => r.passes[c].statements / r.passes[c].pages)),
      imported: first.imported / first.pages,
      skipped: first.skipped / first.pages,
      refreshed: first.refreshed / first.pages,
    };
  }
  return {
    callsPerSec: spread(runs.map((r) => r.passes.new.callsPerSec)),
    ratioToJsonbCeiling: spread(
      runs.map((r, k) => r.passes.new.callsPerSec / ceiling.jsonb[pageSize][k].callsPerSec),
    ),
    pageSize,
    pages: runs[0].passes.new.pages,
    payloadKb: runs[0].payloadBytesPerPage / 1024,
    passes,
  };
}

const CASE_TEXT: Record<PageStepCase, string> = {
  new: "all new (inserted)",
  unchanged: "all already stored, unchanged (skipped, not refreshed)",
  changed: "all already stored, changed upstream (skipped and refreshed)",
};

export function pageStepRows(f: PageStepFigures): Row[] {
  const rows: Row[] = [{
    figure: `Page step alone: \`record_sync_page\` on pages mapped beforehand, all new, ` +
      `page ${f.pageSize}`,
    target: "—",
    result: `${formatSpread(f.callsPerSec)} calls/s = ${formatSpread(f.ratioToJsonbCeiling, 2)} ` +
      `× tightest ceiling; each page's JSON parameter ≈ ${num(f.payloadKb)} KB`,
  }];
  for (const c of PAGE_STEP_CASES) {
    const x = f.passes[c];
    const per = `${num(x.imported)} imported, ${num(x.skipped)} skipped, ` +
      `${num(x.refreshed)} refreshed`;
    rows.push({
      figure: `Page step per ${f.pageSize}-call page, ${CASE_TEXT[c]} (median page of ` +
        `${num(f.pages)})`,
      target: "—",
      result: `**${formatSpread(x.msPerPage, 1)} ms**` +
        (c === "new" ? "" : ` = **${formatSpread(x.ratioToNew, 2)} ×** all new`) +
        `; ${per} per page; **${
          formatSpread(x.statementsPerPageStep, 2)
        }** statement per page step`,
    });
  }
  return rows;
}
