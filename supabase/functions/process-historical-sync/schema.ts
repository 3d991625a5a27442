// Body of process-historical-sync (docs/ARCHITECTURE.md §6), as pg_cron's dispatcher posts it.
import { z } from "zod";

export const ProcessBody = z.strictObject({
  /** The cron_job_logs row this invocation completes. */
  cron_log_id: z.guid().optional(),
  /** Claim only this job. */
  job_id: z.guid().optional(),
});
