// Closing the cron_job_logs row a dispatch opened (docs/ARCHITECTURE.md §7). The SQL function
// public.complete_cron_log(p_id, p_status, p_result, p_error) decides what an unknown or
// already closed id means (nothing): callers need not look first.
import type { Sql } from "../_shared/platform/db.ts";

export interface CronLogOutcome {
  status: "completed" | "failed";
  result?: unknown;
  error?: string;
}

export async function completeCronLog(sql: Sql, id: string, outcome: CronLogOutcome) {
  // Sent as text and cast in SQL: a parameter the server types as jsonb would be
  // JSON-encoded again by postgres.js (a JSON string instead of an object).
  const result = outcome.result === undefined ? null : JSON.stringify(outcome.result);
  await sql`
    select public.complete_cron_log(
      ${id}::uuid, ${outcome.status}::text, ${result}::text::jsonb, ${
    outcome.error ?? null
  }::text)`;
}
