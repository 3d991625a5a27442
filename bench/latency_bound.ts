// The latency bound: with every Ultravox answer taking `latencyMs`, an import can be no faster
// than one page after the other, pages × latency. The processor fetches page n+1 while it
// writes page n, so its wall time should sit just above that. For reference, the bare walk:
// the same pages fetched back to back by a loop that only reads the cursor, nothing else.
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { callsUrl, cursorFromNext } from "../supabase/functions/_shared/ultravox/client.ts";
import { ACCOUNT_END, deleteAgencies } from "./database.ts";
import { formatSpread, num, type Row, type Spread, spread } from "./stats.ts";
import {
  assertComplete,
  importInSubprocess,
  type ImportOnceResult,
  type ImportOptions,
} from "./throughput.ts";

export type LatencyRun = ImportOnceResult & { bareWalkMs: number; barePages: number };

/** Fetches every page of the account back to back, reading only the cursor. */
export async function bareWalk(
  opts: { apiBase: string; apiKey: string; pageSize: number },
): Promise<{ pages: number; wallMs: number }> {
  const started = performance.now();
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url = callsUrl(opts.apiBase, {
      fromDate: null,
      toDate: ACCOUNT_END,
      pageSize: opts.pageSize,
      cursor,
    });
    const res = await fetch(url, { headers: { "X-API-Key": opts.apiKey } });
    const body = JSON.parse(await res.text()) as { next?: unknown };
    cursor = cursorFromNext(body.next);
    pages++;
  } while (cursor !== null);
  return { pages, wallMs: performance.now() - started };
}

/** One import of the account (`calls` calls) in a subprocess, then the bare walk of it. */
export async function measureLatencyBound(
  sql: Sql,
  opts: ImportOptions & { calls: number },
): Promise<LatencyRun> {
  const { calls, ...importOpts } = opts;
  const r = await importInSubprocess(importOpts);
  await deleteAgencies(sql, [r.agencyId]);
  assertComplete(r, calls);
  const bare = await bareWalk(importOpts);
  return { ...r, bareWalkMs: bare.wallMs, barePages: bare.pages };
}

// ── figures ─────────────────────────────────────────────────────────────────────────

export interface LatencyFigures {
  pages: number;
  wallMs: Spread;
  /** Against pages × latency. */
  ratio: Spread;
  bareWalkMs: Spread;
  ratioToBareWalk: Spread;
}

export function latencyFigures(runs: LatencyRun[], latencyMs: number): LatencyFigures {
  return {
    pages: runs[0].pages,
    wallMs: spread(runs.map((l) => l.wallMs)),
    ratio: spread(runs.map((l) => l.wallMs / (l.pages * latencyMs))),
    bareWalkMs: spread(runs.map((l) => l.bareWalkMs)),
    ratioToBareWalk: spread(runs.map((l) => l.wallMs / l.bareWalkMs)),
  };
}

export function latencyRows(
  f: LatencyFigures,
  s: { latencyCalls: number; latencyMs: number; defaultPageSize: number },
): Row[] {
  return [{
    figure: `Latency bound: ${num(s.latencyCalls)} calls, ${s.latencyMs} ms per page, ` +
      `page ${s.defaultPageSize} (${f.pages} pages)`,
    target: "≤ 1.1 × pages × latency",
    result: `${formatSpread(f.wallMs)} ms = **${formatSpread(f.ratio, 3)} ×** ${f.pages} × ` +
      `${s.latencyMs} ms<br>(${formatSpread(f.ratioToBareWalk, 3)} × a bare walk of the same ` +
      `pages, ${formatSpread(f.bareWalkMs)} ms)`,
    met: f.ratio.median <= 1.1,
  }];
}
