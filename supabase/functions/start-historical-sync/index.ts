// POST start-historical-sync: an owner or admin starts a historical sync for their agency.
// 201 {job} (pending); a processor request for that job is queued through pg_net at once,
// so it starts within seconds, without waiting for the next cron tick. The engine itself is
// not imported here: only process-historical-sync bundles it.
import { type Config, config } from "../_shared/platform/config.ts";
import type { Sql } from "../_shared/platform/db.ts";
import { requireUser } from "../_shared/http/auth.ts";
import { ApiError } from "../_shared/http/errors.ts";
import { json, lazyHandler, readBody, requireMethod, withCors } from "../_shared/http/request.ts";
import { instantFromDate } from "../_shared/time.ts";
import { activeJob, jobViews } from "../_shared/jobs/rows.ts";
import type { JobRow } from "../_shared/jobs/view.ts";
import { MANAGERS, requireActionAllowed, requireAgencyRole } from "../_shared/jobs/access.ts";
import { logUnexpected } from "../_shared/http/errors.ts";
import { serviceSql } from "../_shared/platform/db.ts";
import { startBody } from "./schema.ts";

export interface StartDeps {
  sql: Sql;
  config: Config;
  now: () => Date;
  /** Gets the new job processed soon; quick, and never fails the reply. */
  kick: (jobId: string) => Promise<void> | void;
}

export function makeHandler(deps: StartDeps) {
  return withCors(async (req) => {
    requireMethod(req, "POST");
    const body = await readBody(req);
    const { userId } = await requireUser(req, deps.config);
    const now = deps.now();
    const input = startBody(now).parse(body.json());
    await requireAgencyRole(deps.sql, userId, input.agency_id, MANAGERS);
    await requireActionAllowed(deps.sql, input.agency_id, deps.config.SYNC_USER_ACTIONS_PER_MINUTE);

    const active = await activeJob(deps.sql, input.agency_id);
    if (active) throw alreadyActive(active.id);
    const [{ has_key }] = await deps.sql<{ has_key: boolean }[]>`
      select public.agency_has_ultravox_api_key(${input.agency_id}::uuid) as has_key`;
    if (!has_key) {
      throw new ApiError(
        422,
        "ultravox_key_missing",
        "This agency has no Ultravox API key yet. Add one, then start the sync again.",
      );
    }
    // A catch-up starts SYNC_CATCH_UP_OVERLAP_HOURS before the newest date_to of the
    // agency's completed jobs (null: none completed, a full sync), never after date_to.
    // (least() ignores a null argument, so the null is kept out of it: no row, a null date_from.)
    const dateFrom = input.catch_up
      ? deps.sql`(select least(f.v, ${input.date_to}::timestamptz - interval '1 microsecond')
                    from public.catch_up_from(${input.agency_id}::uuid,
                                              ${deps.config.SYNC_CATCH_UP_OVERLAP_HOURS}::integer) as f(v)
                   where f.v is not null)`
      : deps.sql`${input.date_from}::timestamptz`;
    // Empty when another start won the race: the unique index on active jobs decides.
    const [job] = await deps.sql<JobRow[]>`
      select * from public.create_sync_job(
        ${input.agency_id}::uuid, ${dateFrom}, ${input.date_to}::timestamptz,
        ${input.max_calls}::integer, ${instantFromDate(now).iso}::timestamptz,
        'user', ${input.catch_up}::boolean, ${deps.config.SYNC_SLICES}::integer)`;
    if (!job) throw alreadyActive((await activeJob(deps.sql, input.agency_id))?.id ?? null);

    await deps.kick(job.id);
    const [view] = await jobViews(deps.sql, [job], {
      now,
      leaseSeconds: deps.config.SYNC_LEASE_SECONDS,
    });
    return json({ job: view }, 201);
  });
}

function alreadyActive(jobId: string | null) {
  return new ApiError(
    409,
    "sync_already_active",
    "This agency already has a sync in progress. Wait for it to finish or cancel it.",
    { job_id: jobId },
  );
}

/**
 * Queues `{job_id, wait: false}` to process-historical-sync through pg_net, as many times
 * as the job's claimable slices need (request_sync_continuation). Without the
 * Vault secrets (dispatch not set up) it queues nothing and the next cron tick starts the
 * job; any other failure is logged, and the tick starts the job too.
 */
export function kickThroughPgNet(sql: Sql): (jobId: string) => Promise<void> {
  return async (jobId) => {
    try {
      await sql`select public.request_sync_continuation(${jobId}::uuid)`;
    } catch (e) {
      logUnexpected(e, "kick_failed");
    }
  };
}

export default {
  fetch: lazyHandler(() => {
    const sql = serviceSql("user");
    return makeHandler({
      sql,
      config: config(),
      now: () => new Date(),
      kick: kickThroughPgNet(sql),
    });
  }),
} satisfies Deno.ServeDefaultExport;
