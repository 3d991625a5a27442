// The page step alone: record_sync_page fed pages that were fetched, validated and mapped
// before the clock starts, one after the other on one job, as the processor calls it. Set
// against the ceiling it shows what the importer's SQL costs beyond a plain INSERT: the
// fence, the counters, max_calls, the lease, all in the one statement.
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import { mapPage } from "../supabase/functions/_shared/sync/job_runner.ts";
import { syncStore } from "../supabase/functions/_shared/sync/store.ts";
import { generateAccount } from "../tools/stand_in_ultravox/accounts.ts";
import { createAgency, createJob, DB_URL, deleteAgencies } from "./database.ts";

export interface PageStepResult {
  calls: number;
  imported: number;
  pageSize: number;
  /** Average size of a page's JSON parameter (the page's rows, raw objects included). */
  payloadBytesPerPage: number;
  wallMs: number;
  callsPerSec: number;
}

export async function measurePageStep(
  sql: Sql,
  opts: { seed: number; count: number; pageSize: number },
): Promise<PageStepResult> {
  const calls = generateAccount({ seed: opts.seed, count: opts.count, days: 365 });
  const pages = [];
  for (let i = 0; i < calls.length; i += opts.pageSize) {
    pages.push(mapPage(calls.slice(i, i + opts.pageSize)));
  }
  const payloadBytesPerPage = pages.reduce(
    (sum, p) => sum + new TextEncoder().encode(p.callsJson).length,
    0,
  ) / pages.length;
  const agencyId = await createAgency(sql, "page-step-has-no-key-use");
  const db = connect(DB_URL);
  try {
    const jobId = await createJob(sql, agencyId);
    const store = syncStore(db);
    const holder = crypto.randomUUID();
    const [job] = await store.claim(holder, 1, 120, 10, jobId);
    if (!job) throw new Error("the page-step job could not be claimed");
    let cursor: string | null = null;
    let imported = 0;
    const started = performance.now();
    for (let i = 0; i < pages.length; i++) {
      const nextCursor = i + 1 < pages.length ? `page-${i + 1}` : null;
      const outcome = await store.recordPage({
        jobId,
        holder,
        fromCursor: cursor,
        nextCursor,
        ...pages[i],
        total: calls.length,
        leaseSeconds: 120,
      });
      if (!outcome) throw new Error("the page-step job was fenced out");
      imported += outcome.page_imported;
      cursor = nextCursor;
    }
    const wallMs = performance.now() - started;
    return {
      calls: calls.length,
      imported,
      pageSize: opts.pageSize,
      payloadBytesPerPage,
      wallMs,
      callsPerSec: calls.length / (wallMs / 1000),
    };
  } finally {
    await db.end();
    await deleteAgencies(sql, [agencyId]);
  }
}
