// Paging guards of one walk (docs/ARCHITECTURE.md §5 "Paging"): a `next` cursor already
// visited, or a page that is not older than the one before it (the walk is newest first), is a
// broken source. Failing the job says so, where paging on would never end.
import { isoToMicros } from "../time.ts";

export class BrokenSourceError extends Error {
  override readonly name = "BrokenSourceError";
}

export function walkGuard(firstCursor: string | null) {
  const visited = new Set<string>();
  if (firstCursor !== null) visited.add(firstCursor);
  let previousOldest: bigint | null = null;
  return {
    /**
     * Checks a page before it is written: `createds` are the `created` of its storable calls,
     * `next` the cursor it points to. Throws BrokenSourceError when the walk goes in circles.
     */
    check(createds: readonly string[], next: string | null): void {
      let newest: bigint | null = null;
      let oldest: bigint | null = null;
      for (const c of createds) {
        const micros = isoToMicros(c);
        if (newest === null || micros > newest) newest = micros;
        if (oldest === null || micros < oldest) oldest = micros;
      }
      if (previousOldest !== null && newest !== null && newest > previousOldest) {
        throw new BrokenSourceError(
          "Ultravox sent a page with calls newer than the page before it, so its paging is going in circles; the sync stopped here instead of paging forever. Start a new sync; if it happens again, report it to Ultravox.",
        );
      }
      if (next !== null && visited.has(next)) {
        throw new BrokenSourceError(
          "Ultravox sent a next cursor this sync had already followed (a paging loop); the sync stopped here instead of paging forever. Start a new sync; if it happens again, report it to Ultravox.",
        );
      }
      if (next !== null) visited.add(next);
      if (oldest !== null) previousOldest = oldest;
    },
    /** The walk resumes by time below `toDate` (ISO): the next page may hold calls up to it. */
    resumeBelow(toDate: string): void {
      previousOldest = isoToMicros(toDate);
    },
  };
}
