// POST process-historical-sync: the backend (pg_cron's dispatcher, a continuation, a start's
// kick) runs the processor. Secret key in `apikey` only. `wait: true` → 200 {jobs,
// duration_ms}; `wait: false` → 202 {accepted: true} at once, the same run going on in the
// background. With a cron_log_id, the run reports its summary (or its error) on that log row,
// which closes once every run its dispatch started has reported (docs/ARCHITECTURE.md §6, §7).
import { type Config, config } from "../_shared/platform/config.ts";
import type { Sql } from "../_shared/platform/db.ts";
import { type CronLogOutcome, reportToCronLog } from "./cron_log.ts";
import { requireSecretKey } from "../_shared/http/auth.ts";
import { logUnexpected, redact } from "../_shared/http/errors.ts";
import { json, lazyHandler, readBody, requireMethod, withCors } from "../_shared/http/request.ts";
import { serviceSql } from "../_shared/platform/db.ts";
import { runInBackground } from "../_shared/platform/background.ts";
import { processHistoricalSync, type RunSummary } from "../_shared/sync/processor.ts";
import { ProcessBody, type ProcessInput } from "./schema.ts";

export interface ProcessDeps {
  sql: Sql;
  config: Config;
  /** One processor run (all claimable jobs, or only `jobId`). */
  process: (opts: { jobId?: string }) => Promise<RunSummary>;
}

export function makeHandler(deps: ProcessDeps) {
  return withCors(async (req) => {
    requireMethod(req, "POST");
    const body = await readBody(req);
    await requireSecretKey(req, deps.config);
    const input = ProcessBody.parse(body.json({ emptyAs: {} }));
    if (!input.wait) {
      runInBackground(() => run(deps, input), "process_failed");
      return json({ accepted: true }, 202);
    }
    return json(await run(deps, input));
  });
}

/** One processor run, reported on the cron log row it was handed. */
async function run(deps: ProcessDeps, input: ProcessInput) {
  let summary: RunSummary;
  try {
    summary = await deps.process(input.job_id ? { jobId: input.job_id } : {});
  } catch (e) {
    if (input.cron_log_id) {
      const message = e instanceof Error ? e.message : String(e);
      await reportRun(deps.sql, input.cron_log_id, { status: "failed", error: redact(message) });
    }
    throw e; // → 500 internal_error (or the background log), logged
  }
  const reply = { jobs: summary.jobs, duration_ms: summary.duration_ms };
  if (input.cron_log_id) {
    await reportRun(deps.sql, input.cron_log_id, { status: "completed", result: reply });
  }
  return reply;
}

/** The run's outcome stands even if its log row cannot be updated: log that and go on. */
async function reportRun(sql: Sql, id: string, outcome: CronLogOutcome) {
  try {
    await reportToCronLog(sql, id, outcome);
  } catch (e) {
    logUnexpected(e, "cron_log_not_completed");
  }
}

export default {
  fetch: lazyHandler(() => {
    const sql = serviceSql("processor");
    const cfg = config();
    return makeHandler({
      sql,
      config: cfg,
      process: (opts) => processHistoricalSync({ sql, config: cfg }, opts),
    });
  }),
} satisfies Deno.ServeDefaultExport;
