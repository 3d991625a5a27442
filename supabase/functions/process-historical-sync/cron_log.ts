// Reporting a run on the cron_job_logs row a dispatch opened (docs/ARCHITECTURE.md §7). The
// SQL function public.report_sync_run(p_id, p_run, p_error) adds the run's summary and closes
// the row once every request the dispatch posted has reported; an unknown or already closed
// id means nothing, so callers need not look first.
import type { Sql } from "../_shared/platform/db.ts";

export type CronLogOutcome =
  | { status: "completed"; result: unknown }
  | { status: "failed"; error: string };

export async function reportToCronLog(sql: Sql, id: string, outcome: CronLogOutcome) {
  // Sent as text and cast in SQL: a parameter the server types as jsonb would be
  // JSON-encoded again by postgres.js (a JSON string instead of an object).
  const run = outcome.status === "completed" ? JSON.stringify(outcome.result) : null;
  const error = outcome.status === "failed" ? outcome.error : null;
  await sql`select 1 from public.report_sync_run(${id}::uuid, ${run}::text::jsonb, ${error}::text)`;
}
