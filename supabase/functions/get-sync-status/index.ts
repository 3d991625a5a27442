// GET/POST get-sync-status: any member reads one job ({job}) or the agency's latest jobs
// ({jobs, active_job}).
import { type Config, config } from "../_shared/platform/config.ts";
import type { Sql } from "../_shared/platform/db.ts";
import { requireUser } from "../_shared/http/auth.ts";
import {
  json,
  lazyHandler,
  queryObject,
  readBody,
  requireMethod,
  withCors,
} from "../_shared/http/request.ts";
import { agencyJobs, jobViews } from "../_shared/jobs/rows.ts";
import { ANY_MEMBER, requireAgencyRole, requireJobRole } from "../_shared/jobs/access.ts";
import { serviceSql } from "../_shared/platform/db.ts";
import { fromQuery, StatusInput } from "./schema.ts";

export interface StatusDeps {
  sql: Sql;
  config: Config;
  now: () => Date;
}

export function makeHandler(deps: StatusDeps) {
  return withCors(async (req) => {
    const method = requireMethod(req, "GET", "POST");
    const body = method === "POST" ? await readBody(req) : null;
    const { userId } = await requireUser(req, deps.config);
    const input = StatusInput.parse(body ? body.json() : fromQuery(queryObject(req.url)));

    const view = { now: deps.now(), leaseSeconds: deps.config.SYNC_LEASE_SECONDS };
    if ("job_id" in input) {
      const job = await requireJobRole(deps.sql, userId, input.job_id, ANY_MEMBER);
      const [one] = await jobViews(deps.sql, [job], view);
      return json({ job: one });
    }
    await requireAgencyRole(deps.sql, userId, input.agency_id, ANY_MEMBER);
    const { jobs, active, lastCompletedAt } = await agencyJobs(
      deps.sql,
      input.agency_id,
      input.limit,
    );
    const views = await jobViews(deps.sql, active ? [...jobs, active] : jobs, view);
    return json({
      jobs: views.slice(0, jobs.length),
      active_job: active ? views[jobs.length] : null,
      last_completed_at: lastCompletedAt,
    });
  });
}

export default {
  fetch: lazyHandler(() =>
    makeHandler({ sql: serviceSql("user"), config: config(), now: () => new Date() })
  ),
} satisfies Deno.ServeDefaultExport;
