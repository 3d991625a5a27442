// Body of start-historical-sync (docs/ARCHITECTURE.md §6). Dates keep their microseconds and come out
// as canonical UTC strings; a future date_to becomes now, and the range is checked after.
import { z } from "zod";
import { type Instant, instantFromDate, parseDateBound } from "../_shared/time.ts";

export const MAX_CALLS_LIMIT = 1_000_000;
export const DEFAULT_MAX_CALLS = 100;

const DATE_HINT =
  "Expected an ISO 8601 date-time with an offset (Z or ±hh:mm) or a date YYYY-MM-DD.";

function dateBound(bound: "from" | "to") {
  return z.string().transform((text, ctx): Instant => {
    const instant = parseDateBound(text, bound);
    if (instant === null) {
      ctx.addIssue({ code: "custom", message: DATE_HINT, input: text });
      return z.NEVER;
    }
    return instant;
  });
}

export interface StartInput {
  agency_id: string;
  /** Canonical UTC ("….ffffffZ"), or null for the beginning of time. */
  date_from: string | null;
  /** Canonical UTC, never in the future. */
  date_to: string;
  max_calls: number | null;
  /**
   * A catch-up: date_from is worked out from the agency's completed jobs (date_from stays
   * null here), its deleted calls are walked too, and max_calls defaults to null.
   */
  catch_up: boolean;
}

/** The schema for a request handled at `now` (which a future or missing date_to becomes). */
export function startBody(now: Date) {
  return z
    .strictObject({
      agency_id: z.guid(),
      date_from: dateBound("from").nullable().optional(),
      date_to: dateBound("to").optional(),
      max_calls: z.number().int().min(1).max(MAX_CALLS_LIMIT).nullable().optional(),
      catch_up: z.boolean().default(false),
    })
    .transform((body, ctx): StartInput => {
      if (body.catch_up && body.date_from !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["catch_up"],
          message:
            "catch_up works out date_from itself (from the agency's last completed sync); send one or the other.",
        });
        return z.NEVER;
      }
      const current = instantFromDate(now);
      const to = body.date_to === undefined || body.date_to.micros > current.micros
        ? current
        : body.date_to;
      const from = body.date_from ?? null;
      if (from !== null && from.micros >= to.micros) {
        ctx.addIssue({
          code: "custom",
          path: ["date_from"],
          message: "date_from must be before date_to (a date_to in the future counts as now).",
        });
        return z.NEVER;
      }
      return {
        agency_id: body.agency_id,
        date_from: from?.iso ?? null,
        date_to: to.iso,
        max_calls: body.max_calls !== undefined
          ? body.max_calls
          : body.catch_up
          ? null
          : DEFAULT_MAX_CALLS,
        catch_up: body.catch_up,
      };
    });
}
