// POST cancel-historical-sync: an owner or admin cancels a job of their agency. 200 {job};
// cancelling a cancelled job again is fine; a completed or failed one is a 409.
import { type Config, config } from "../_shared/platform/config.ts";
import type { Sql } from "../_shared/platform/db.ts";
import { requireUser } from "../_shared/http/auth.ts";
import { instantFromDate } from "../_shared/time.ts";
import { ApiError } from "../_shared/http/errors.ts";
import { json, lazyHandler, readBody, requireMethod, withCors } from "../_shared/http/request.ts";
import { jobViews, loadJob } from "../_shared/jobs/rows.ts";
import type { JobRow } from "../_shared/jobs/view.ts";
import { MANAGERS, requireActionAllowed, requireJobRole } from "../_shared/jobs/access.ts";
import { serviceSql } from "../_shared/platform/db.ts";
import { CancelBody } from "./schema.ts";

export interface CancelDeps {
  sql: Sql;
  config: Config;
  now: () => Date;
}

export function makeHandler(deps: CancelDeps) {
  return withCors(async (req) => {
    requireMethod(req, "POST");
    const body = await readBody(req);
    const { userId } = await requireUser(req, deps.config);
    const { job_id } = CancelBody.parse(body.json());
    const target = await requireJobRole(deps.sql, userId, job_id, MANAGERS);
    await requireActionAllowed(
      deps.sql,
      target.agency_id,
      deps.config.SYNC_USER_ACTIONS_PER_MINUTE,
    );

    const now = deps.now();
    // Empty when the job is no longer active: already cancelled is fine, finished is not.
    const [cancelled] = await deps.sql<JobRow[]>`
      select * from public.cancel_sync_job(${job_id}::uuid, ${
      instantFromDate(now).iso
    }::timestamptz)`;
    const job = cancelled ?? await loadJob(deps.sql, job_id);
    if (!job) throw new ApiError(404, "not_found", "No such sync job."); // deleted meanwhile
    if (job.status !== "cancelled") {
      throw new ApiError(
        409,
        "job_already_finished",
        `The job has already finished (${job.status}); there is nothing to cancel.`,
        { job_id: job.id, status: job.status },
      );
    }
    const [view] = await jobViews(deps.sql, [job], {
      now,
      leaseSeconds: deps.config.SYNC_LEASE_SECONDS,
    });
    return json({ job: view });
  });
}

export default {
  fetch: lazyHandler(() =>
    makeHandler({ sql: serviceSql("user"), config: config(), now: () => new Date() })
  ),
} satisfies Deno.ServeDefaultExport;
