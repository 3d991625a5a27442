// The idle tick: what the every-minute cron command costs when there is nothing to do. Each
// tick commits, as pg_cron's does (the commit's WAL flush is part of the cost); the bench then
// deletes the cron_job_logs rows its ticks wrote. The net.http_request_queue row count and its
// id sequence, before and after each tick, show that no HTTP request was queued.
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { formatSpread, type Row, type Spread, spread } from "./stats.ts";

export interface IdleTickResult {
  ticks: number;
  /** Round trip of `select public.dispatch_historical_sync()`, as the bench's client sees it. */
  ms: Spread;
  /** Requests the ticks queued for pg_net, all ticks together (queue rows and ids taken). */
  httpRequests: number;
  /** The distinct `result.reason` values of the log rows the ticks wrote. */
  reasons: string[];
  /** The log rows the ticks wrote, deleted again afterwards. */
  logIds: string[];
}

async function queueState(sql: Sql) {
  const [row] = await sql<{ rows: number; last_id: string }[]>`
    select (select count(*)::int from net.http_request_queue) as rows,
           (select last_value::text from net.http_request_queue_id_seq) as last_id`;
  return row;
}

/** Needs a database without claimable jobs (else the tick dispatches, as it should). */
export async function measureIdleTick(sql: Sql, opts: { ticks: number }): Promise<IdleTickResult> {
  const times: number[] = [];
  const reasons = new Set<string>();
  const logIds: string[] = [];
  let httpRequests = 0;
  try {
    for (let i = 0; i < opts.ticks; i++) {
      const before = await queueState(sql);
      const started = performance.now();
      const [{ id }] = await sql<{ id: string }[]>`select public.dispatch_historical_sync() as id`;
      times.push(performance.now() - started);
      logIds.push(id);
      const after = await queueState(sql);
      httpRequests += Math.max(
        after.rows - before.rows,
        Number(after.last_id) - Number(before.last_id),
      );
      const [log] = await sql<{ reason: string | null }[]>`
        select result->>'reason' as reason from public.cron_job_logs where id = ${id}`;
      reasons.add(log?.reason ?? "(no log row)");
    }
  } finally {
    await sql`delete from public.cron_job_logs where id = any(${logIds}::uuid[])`;
  }
  return {
    ticks: opts.ticks,
    ms: spread(times),
    httpRequests,
    reasons: [...reasons],
    logIds,
  };
}

export function idleRows(r: IdleTickResult): Row[] {
  const reasons = r.reasons.map((x) => `\`${x}\``).join(", ");
  return [{
    figure:
      `Idle tick: \`select public.dispatch_historical_sync()\` with no work (${r.ticks} ticks)`,
    target: "< 5 ms, 0 HTTP requests",
    result: `**${formatSpread(r.ms, 2)} ms**; **${r.httpRequests}** HTTP requests queued; ` +
      `reason ${reasons}`,
    met: r.ms.median < 5 && r.httpRequests === 0 && r.reasons.join() === "no_work",
  }];
}
