// Who may do what (docs/ARCHITECTURE.md §6): authorization checked in code against agency_members.
// An unknown agency answers like one the caller is not a member of (403); a job of an
// agency the caller is not a member of answers like no job at all (404).
import type { Sql } from "../platform/db.ts";
import { ApiError } from "../http/errors.ts";
import type { JobRow } from "./view.ts";

export type AgencyRole = "owner" | "admin" | "member";

/** Roles that may start and cancel syncs. */
export const MANAGERS: readonly AgencyRole[] = ["owner", "admin"];
/** Every role may read status. */
export const ANY_MEMBER: readonly AgencyRole[] = ["owner", "admin", "member"];

export async function agencyRole(
  sql: Sql,
  agencyId: string,
  userId: string,
): Promise<AgencyRole | null> {
  const [row] = await sql<{ role: AgencyRole }[]>`
    select role from public.agency_members
     where agency_id = ${agencyId}::uuid and user_id = ${userId}::uuid`;
  return row?.role ?? null;
}

/** 403 unless the user has one of `roles` in the agency (an unknown agency included). */
export async function requireAgencyRole(
  sql: Sql,
  userId: string,
  agencyId: string,
  roles: readonly AgencyRole[],
): Promise<AgencyRole> {
  const role = await agencyRole(sql, agencyId, userId);
  if (role === null) {
    throw new ApiError(403, "forbidden", "You are not a member of this agency.");
  }
  if (!roles.includes(role)) {
    throw new ApiError(
      403,
      "forbidden",
      `Your role (${role}) may not do this; it needs ${roles.join(" or ")}.`,
    );
  }
  return role;
}

/** The job, when the user belongs to its agency with one of `roles`: else 404 / 403. */
export async function requireJobRole(
  sql: Sql,
  userId: string,
  jobId: string,
  roles: readonly AgencyRole[],
): Promise<JobRow> {
  const [row] = await sql<(JobRow & { caller_role: AgencyRole | null })[]>`
    select j.*, m.role as caller_role
      from public.historical_sync_jobs j
      left join public.agency_members m
        on m.agency_id = j.agency_id and m.user_id = ${userId}::uuid
     where j.id = ${jobId}::uuid`;
  if (!row || row.caller_role === null) {
    throw new ApiError(404, "not_found", "No such sync job.");
  }
  const { caller_role: role, ...job } = row;
  if (!roles.includes(role)) {
    throw new ApiError(
      403,
      "forbidden",
      `Your role (${role}) may not do this; it needs ${roles.join(" or ")}.`,
    );
  }
  return job;
}

/**
 * 429 rate_limited, with Retry-After, once the agency has started or cancelled
 * SYNC_USER_ACTIONS_PER_MINUTE times in the last minute; otherwise counts this action. The
 * count lives in the database, so every isolate shares it.
 */
export async function requireActionAllowed(
  sql: Sql,
  agencyId: string,
  perMinute: number,
): Promise<void> {
  const [{ wait }] = await sql<{ wait: number }[]>`
    select public.note_sync_user_action(${agencyId}::uuid, ${perMinute}::integer) as wait`;
  if (wait > 0) {
    throw new ApiError(
      429,
      "rate_limited",
      `This agency started or cancelled syncs ${perMinute} times in the last minute; try again in ${wait} s.`,
      { retry_after_seconds: wait },
      { "Retry-After": String(wait) },
    );
  }
}
