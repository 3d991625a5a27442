// Input of get-sync-status (docs/ARCHITECTURE.md §6): `?job_id=` or `?agency_id=&limit=`, or the same
// fields as a JSON body (supabase-js `functions.invoke` posts). Exactly one of the ids.
import { z } from "zod";

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

export type StatusQuery =
  | { job_id: string }
  | { agency_id: string; limit: number };

export const StatusInput = z
  .strictObject({
    job_id: z.guid().optional(),
    agency_id: z.guid().optional(),
    limit: z.number().int().min(1).max(MAX_LIMIT).optional(),
  })
  .transform((input, ctx): StatusQuery => {
    if (input.job_id !== undefined && input.agency_id !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["agency_id"],
        message: "Give either job_id or agency_id, not both.",
      });
      return z.NEVER;
    }
    if (input.job_id !== undefined) {
      if (input.limit !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["limit"],
          message: "limit applies to agency_id only.",
        });
        return z.NEVER;
      }
      return { job_id: input.job_id };
    }
    if (input.agency_id !== undefined) {
      return { agency_id: input.agency_id, limit: input.limit ?? DEFAULT_LIMIT };
    }
    ctx.addIssue({ code: "custom", path: ["job_id"], message: "Give job_id or agency_id." });
    return z.NEVER;
  });

/** Query parameters as the body would carry them: a numeric `limit` becomes a number. */
export function fromQuery(query: Record<string, string | string[]>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...query };
  if (typeof query.limit === "string" && /^[+-]?\d+(\.\d+)?$/.test(query.limit)) {
    out.limit = Number(query.limit);
  }
  return out;
}
