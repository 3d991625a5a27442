// What one account's key was asked, in figures the benchmark reports against Ultravox's
// documented limit (200 requests per second per key, docs/ULTRAVOX.md "Rate limits").
import type { RecordedRequest } from "./server.ts";

export interface KeyStats {
  requests: number;
  /** The most requests of this key open at one instant (arrival to answer). */
  maxInFlight: number;
  /** Requests per second from the first arrival to the last answer (0 for fewer than 2). */
  perSecond: number;
  /** Date.now() of the first arrival and the last answer (0 without requests). */
  firstAt: number;
  lastAt: number;
  /** Time between those with no request of this key open: where the walk waited on itself. */
  idleMs: number;
}

export function keyStats(requests: readonly RecordedRequest[]): KeyStats {
  const answered = requests.filter((r) => r.doneAt > 0);
  // Sweep over arrivals (+1) and answers (-1); at one instant an answer goes first, so
  // back-to-back requests are not counted as overlapping.
  const edges = answered.flatMap((r) => [[r.at, 1], [r.doneAt, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0, maxInFlight = 0, idleMs = 0, idleSince = 0;
  for (const [at, d] of edges) {
    if (open === 0 && idleSince > 0) idleMs += at - idleSince;
    open += d;
    if (open === 0) idleSince = at;
    maxInFlight = Math.max(maxInFlight, open);
  }
  if (answered.length === 0) {
    return { requests: requests.length, maxInFlight, perSecond: 0, firstAt: 0, lastAt: 0, idleMs };
  }
  const first = Math.min(...answered.map((r) => r.at));
  const last = Math.max(...answered.map((r) => r.doneAt));
  const spanS = (last - first) / 1000;
  return {
    requests: requests.length,
    maxInFlight,
    perSecond: answered.length > 1 && spanS > 0 ? answered.length / spanS : 0,
    firstAt: first,
    lastAt: last,
    idleMs,
  };
}
