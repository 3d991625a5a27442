// A catch-up's second walk (docs/ARCHITECTURE.md §5 "Deleted calls"): the tombstones of
// GET /api/deleted_calls for the job's range, page by page, each page marking the agency's
// matching calls `ultravox_deleted_at` in one fenced transaction (record_deleted_page). It
// shares the job's budget, lease and fences with the calls walk, and resumes from its own
// cursor after a crash.
import { readTimestamp } from "../time.ts";
import type { UltravoxClient } from "../ultravox/client.ts";
import type { Budget } from "./budget.ts";
import type { SyncStore } from "./store.ts";
import { walkGuard } from "./walk_guard.ts";

export interface Tombstone {
  call_id: string;
  created: string;
  deletion_time: string;
}

const GUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The tombstones that can mark a call: a uuid callId, a readable created and deletionTime. */
export function readTombstones(results: unknown[]): Tombstone[] {
  const out: Tombstone[] = [];
  for (const r of results) {
    if (typeof r !== "object" || r === null) continue;
    const { callId, created, deletionTime } = r as Record<string, unknown>;
    if (
      typeof callId === "string" && GUID_RE.test(callId) &&
      typeof created === "string" && readTimestamp(created) !== null &&
      typeof deletionTime === "string" && readTimestamp(deletionTime) !== null
    ) out.push({ call_id: callId, created, deletion_time: deletionTime });
  }
  return out;
}

export interface DeletedWalk {
  store: SyncStore;
  client: UltravoxClient;
  budget: Budget;
  holder: string;
  pageSize: number;
  leaseSeconds: number;
  job: { id: string; date_from: string | null; date_to: string };
  cursor: string | null;
}

/**
 * Walks until the last page (the job completes), the budget runs out ("budget"), or the
 * fence fails ("fenced"). Returns the job's status then, and how many pages landed. Throws
 * BrokenSourceError for a `next` cursor the walk already followed.
 */
export async function walkDeletedCalls(
  w: DeletedWalk,
): Promise<{ status: string | "budget" | "fenced"; pages: number }> {
  let cursor = w.cursor;
  let pages = 0;
  // A `next` this walk already followed would page (and land pages) forever: it fails the job
  // as a broken source, as in the calls walk (docs/ARCHITECTURE.md §5 "Paging").
  const guard = walkGuard(cursor);
  while (w.budget.takePage()) {
    const page = await w.client.listDeletedCalls({
      fromDate: w.job.date_from,
      toDate: w.job.date_to,
      pageSize: w.pageSize,
      cursor,
    });
    guard.check([], page.nextCursor);
    const outcome = await w.store.recordDeletedPage({
      jobId: w.job.id,
      holder: w.holder,
      fromCursor: cursor,
      nextCursor: page.nextCursor,
      tombstones: readTombstones(page.results),
      leaseSeconds: w.leaseSeconds,
    });
    if (!outcome) return { status: "fenced", pages };
    pages++;
    if (outcome.status !== "in_progress") return { status: outcome.status, pages };
    cursor = page.nextCursor;
  }
  return { status: "budget", pages };
}
