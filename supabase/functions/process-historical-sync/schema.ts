// Body of process-historical-sync (docs/ARCHITECTURE.md §6), as pg_cron's dispatcher posts it.
import { z } from "zod";

export const ProcessBody = z.strictObject({
  /** The cron_job_logs row this invocation completes. */
  cron_log_id: z.guid().optional(),
  /** Claim only this job. */
  job_id: z.guid().optional(),
  /**
   * false: answer 202 at once and run in the background (what pg_net's callers send, so a
   * request is never held open for a run); true: answer 200 with the run's summary.
   */
  wait: z.boolean().default(true),
});

export type ProcessInput = z.infer<typeof ProcessBody>;
