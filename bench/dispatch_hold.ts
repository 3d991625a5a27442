// How long a dispatch keeps its pg_net request open. pg_net's worker sends a batch of
// requests and waits for every one of them before it reads the queue again, so a request
// that stays open holds back every pg_net request of the project queued after it.
//
// The real path, locally: public.dispatch_historical_sync() queues the request in
// net.http_request_queue; the local pg_net worker (scripts/local/pg_net_worker.ts, paced like
// the real one: a batch at a time, about a second between empty polls) takes it off the
// queue and POSTs it to the local router (scripts/serve.ts startServer) serving the real
// process-historical-sync handler, whose processor imports the job from the stand-in
// Ultravox (several seconds: the stand-in answers each page after a delay). What is timed
// is how long each request stays open: the worker's HTTP round trip, from sending the
// request to having read its whole response, which is the time from the request being taken
// off the queue to its net._http_response row, less the few statements around it. The
// router times the same exchange from the request's arrival to the last byte of its
// response (the round trip less the loopback connection): on a database shared with other
// sessions another pg_net worker may take a request off the queue, and the router still
// sees it.
//
//   after  (wait: false): the dispatcher as it is, `{cron_log_id, wait: false}` with a 10 s
//                         time-out; the function answers 202 and the run goes on in the
//                         background.
//   before (wait: true):  what the old dispatcher posted, `{cron_log_id}` (wait defaults to
//                         true) with a 150 s time-out; the request stays open for the run
//                         and is answered 200 with its summary.
//
// Both modes close the cron_job_logs row with the run's summary; the bench waits for that
// and for the job's completion before the next dispatch. The processor served is scoped to
// the bench's own job (the dispatcher's body names none), so nothing else is ever claimed;
// a dispatch whose run did not import the job (a cron tick someone re-activated got there
// first) is measured again.
import { type Config, loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { drainBackground } from "../supabase/functions/_shared/platform/background.ts";
import { processHistoricalSync } from "../supabase/functions/_shared/sync/processor.ts";
import { makeHandler } from "../supabase/functions/process-historical-sync/index.ts";
import { startServer } from "../scripts/serve.ts";
import { startPgNetWorker } from "../scripts/local/pg_net_worker.ts";
import {
  createAgency,
  createJob,
  DB_URL,
  deleteAgencies,
  keepCronPaused,
  putDispatchSecrets,
  withDispatchSecrets,
} from "./database.ts";
import { formatSpread, num, type Row, type Spread, spread } from "./stats.ts";

export const DISPATCH_MODES = ["after", "before"] as const;
export type DispatchMode = (typeof DISPATCH_MODES)[number];

/** The old dispatcher's time-out (20261129000700_schedule_cron_jobs.sql). */
const OLD_TIMEOUT_MS = 150_000;

export interface DispatchResult {
  mode: DispatchMode;
  /** The bench's worker's HTTP round trip (sent → response read), when it sent the request. */
  roundTripMs: number | null;
  /**
   * The same exchange at the router: request in → response body out, whichever pg_net worker
   * sent it (on a shared database another session's worker may take it off the queue).
   */
  routerMs: number;
  status: number | null;
  timedOut: boolean;
  /** The processor run's own duration_ms, as the cron log row reports it. */
  runMs: number;
  pages: number;
  imported: number;
  logStatus: string;
}

export interface DispatchOptions {
  /** The stand-in's base URL and the key of an account of `calls` calls there. */
  apiBase: string;
  apiKey: string;
  calls: number;
  pageSize: number;
  /** Dispatches per mode; the modes alternate, `after` first. */
  dispatches: number;
  /** The worker's wait between empty polls (default 1000 ms, as pg_net). */
  pollMs?: number;
  /** How long one run may take before the bench gives up on it. */
  runTimeoutMs?: number;
  log?: (message: string) => void;
}

interface Exchange {
  cronLogId: string | null;
  ms: number;
  status: number | null;
}

/** The cron_log_id a request's JSON body names, if any. */
function cronLogIdOf(body: string): string | null {
  try {
    return (JSON.parse(body) as { cron_log_id?: string }).cron_log_id ?? null;
  } catch {
    return null;
  }
}

/** Polls `probe` until it returns something other than undefined. */
async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A dispatch whose run was not ours to measure (another processor or tick got there first). */
class Interfered extends Error {}

export async function measureDispatchHold(
  sql: Sql,
  opts: DispatchOptions,
): Promise<DispatchResult[]> {
  const runTimeoutMs = opts.runTimeoutMs ?? 120_000;
  const config: Config = {
    ...loadConfig(),
    ULTRAVOX_API_BASE: opts.apiBase,
    SYNC_PAGE_SIZE: opts.pageSize,
  };
  let jobId: string | null = null;
  const handler = makeHandler({
    sql,
    config,
    // A request from before the bench (a continuation left in the queue) finds no job.
    process: async () =>
      jobId
        ? await processHistoricalSync({ sql, config, log: () => {} }, { jobId })
        : { jobs: [], duration_ms: 0 },
  });
  // Both ends of every exchange, timed; the body names the cron log row it belongs to.
  const atRouter: Exchange[] = [];
  const atWorker: Exchange[] = [];
  const server = await startServer({
    supabaseUrl: "http://127.0.0.1:54321",
    port: 0,
    log: () => {},
    functions: {
      "process-historical-sync": {
        fetch: async (req) => {
          const started = performance.now();
          const body = await req.text();
          const cronLogId = cronLogIdOf(body);
          const res = await handler(
            new Request(req.url, { method: req.method, headers: req.headers, body }),
          );
          const content = await res.arrayBuffer();
          atRouter.push({ cronLogId, ms: performance.now() - started, status: res.status });
          return new Response(content, { status: res.status, headers: res.headers });
        },
      },
    },
  });
  const timedFetch: typeof fetch = async (input, init) => {
    const body = init?.body instanceof Uint8Array ? new TextDecoder().decode(init.body) : "";
    const cronLogId = cronLogIdOf(body);
    const started = performance.now();
    try {
      const res = await fetch(input, init);
      const content = await res.arrayBuffer();
      atWorker.push({ cronLogId, ms: performance.now() - started, status: res.status });
      return new Response(content, { status: res.status, headers: res.headers });
    } catch (e) {
      atWorker.push({ cronLogId, ms: performance.now() - started, status: null });
      throw e;
    }
  };
  const workerErrors: unknown[] = [];
  const secrets = {
    projectUrl: server.url,
    secretKey: config.secretKeys.default ?? Object.values(config.secretKeys)[0],
  };

  /** One dispatch of `mode` for a fresh job; Interfered when its run was not the bench's. */
  const once = async (mode: DispatchMode): Promise<DispatchResult> => {
    const agencyId = await createAgency(sql, opts.apiKey);
    try {
      await keepCronPaused(sql);
      await putDispatchSecrets(sql, secrets);
      jobId = await createJob(sql, agencyId);
      const logId = await dispatch(sql, mode, secrets);
      const seen = await waitFor(
        `dispatch ${logId} to reach the bench's router`,
        runTimeoutMs,
        () => atRouter.find((x) => x.cronLogId === logId),
      );
      const log = await waitFor(`the run of dispatch ${logId}`, runTimeoutMs, async () => {
        const [row] = await sql<{ status: string; result: RunReply | null }[]>`
          select status, result from public.cron_job_logs where id = ${logId}`;
        return row && row.status !== "running" ? row : undefined;
      });
      await drainBackground(runTimeoutMs);
      await sql`delete from public.cron_job_logs where id = ${logId}`;
      const job = log.result?.jobs?.find((j) => j.id === jobId);
      if (job?.status !== "completed" || job.imported !== opts.calls) {
        throw new Interfered(`dispatch ${logId} did not import the job: ${JSON.stringify(log)}`);
      }
      const sent = atWorker.find((x) => x.cronLogId === logId);
      return {
        mode,
        roundTripMs: sent?.ms ?? null,
        routerMs: seen.ms,
        status: seen.status,
        timedOut: sent !== undefined && sent.status === null,
        runMs: log.result?.duration_ms ?? NaN,
        pages: job.pages,
        imported: job.imported,
        logStatus: log.status,
      };
    } finally {
      jobId = null;
      await deleteAgencies(sql, [agencyId]);
    }
  };

  const results: DispatchResult[] = [];
  try {
    await withDispatchSecrets(sql, secrets, async () => {
      const worker = startPgNetWorker(DB_URL, {
        pollMs: opts.pollMs,
        fetch: timedFetch,
        onError: (e) => void workerErrors.push(e),
      });
      try {
        // Requests left in the queue from before (e.g. continuations nobody sent) go first,
        // while the bench has no job, so they cannot claim one.
        await waitFor("the pg_net queue to drain", 30_000, async () => {
          const [{ n }] = await sql<{ n: number }[]>`
            select count(*)::int as n from net.http_request_queue`;
          return n === 0 ? true : undefined;
        });
        await worker.drain();
        await drainBackground(30_000);
        for (let i = 0; i < opts.dispatches; i++) {
          for (const mode of DISPATCH_MODES) {
            for (let attempt = 1;; attempt++) {
              try {
                results.push(await once(mode));
                break;
              } catch (e) {
                if (!(e instanceof Interfered) || attempt === 3) throw e;
                opts.log?.(`${e.message}; again (is something else using the database?)`);
              }
            }
          }
        }
      } finally {
        await worker.stop();
      }
    });
  } finally {
    await drainBackground(runTimeoutMs);
    await server.close();
  }
  if (workerErrors.length > 0) throw new Error(`the pg_net worker failed: ${workerErrors[0]}`);
  return results;
}

interface RunReply {
  jobs?: { id: string; status: string; pages: number; imported: number }[];
  duration_ms?: number;
}

/**
 * Queues one dispatch and returns its cron_job_logs id. `after` is the dispatcher itself;
 * `before` does what the old dispatcher did: a running log row, and the request for it.
 */
async function dispatch(
  sql: Sql,
  mode: DispatchMode,
  { projectUrl, secretKey }: { projectUrl: string; secretKey: string },
): Promise<string> {
  if (mode === "after") {
    const [{ id }] = await sql<{ id: string }[]>`select public.dispatch_historical_sync() as id`;
    return id;
  }
  const [{ id }] = await sql<{ id: string }[]>`
    insert into public.cron_job_logs (job_name, started_at, status)
    values ('process-historical-sync', now(), 'running')
    returning id`;
  await sql`
    select net.http_post(
      url := ${projectUrl} || '/functions/v1/process-historical-sync',
      body := jsonb_build_object('cron_log_id', ${id}::uuid),
      headers := jsonb_build_object('Content-Type', 'application/json', 'apikey', ${secretKey}::text),
      timeout_milliseconds := ${OLD_TIMEOUT_MS})`;
  return id;
}

// ── figures ─────────────────────────────────────────────────────────────────────────

export interface DispatchModeFigures {
  dispatches: number;
  /** Per dispatch the worker's round trip, or the router's time where another worker sent it. */
  holdMs: Spread;
  routerMs: Spread;
  /** Dispatches another session's pg_net worker sent (timed at the router only). */
  viaOtherWorker: number;
  runMs: Spread;
  /** HTTP statuses the function answered, with how often. */
  statuses: Record<string, number>;
  timedOut: number;
}

export function dispatchFigures(
  runs: DispatchResult[],
): Record<DispatchMode, DispatchModeFigures> {
  const out = {} as Record<DispatchMode, DispatchModeFigures>;
  for (const mode of DISPATCH_MODES) {
    const rs = runs.filter((r) => r.mode === mode);
    const statuses: Record<string, number> = {};
    for (const r of rs) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
    out[mode] = {
      dispatches: rs.length,
      holdMs: spread(rs.map((r) => r.roundTripMs ?? r.routerMs)),
      routerMs: spread(rs.map((r) => r.routerMs)),
      viaOtherWorker: rs.filter((r) => r.roundTripMs === null).length,
      runMs: spread(rs.map((r) => r.runMs)),
      statuses,
      timedOut: rs.filter((r) => r.timedOut).length,
    };
  }
  return out;
}

export function dispatchRows(
  f: Record<DispatchMode, DispatchModeFigures>,
  s: { dispatchCalls: number; latencyMs: number },
): Row[] {
  const text: Record<DispatchMode, string> = {
    after: "now: `{cron_log_id, wait: false}`, 10 s time-out",
    before: "before: `{cron_log_id}` (wait: true), 150 s time-out, as the old dispatcher",
  };
  const ms = (x: number) => `${num(x, 1)} ms`;
  return DISPATCH_MODES.map((mode) => {
    const x = f[mode];
    const statuses = Object.entries(x.statuses).map(([st, n]) => `${n} × ${st}`).join(", ");
    const other = x.viaOtherWorker === 0
      ? ""
      : `; ${x.viaOtherWorker} sent by another session's worker, timed at the router`;
    return {
      figure: `pg_net request held open per dispatch, ${text[mode]}; a job of ` +
        `${num(s.dispatchCalls)} calls at ${s.latencyMs} ms per page (${x.dispatches} dispatches)`,
      target: "—",
      result: `median **${ms(x.holdMs.median)}**, max **${ms(x.holdMs.max)}** ` +
        `(the worker's round trip${other}; at the router ${ms(x.routerMs.median)}, max ` +
        `${ms(x.routerMs.max)}); answered ${statuses}, ${x.timedOut} timed out; the run ` +
        `itself took ${formatSpread(x.runMs)} ms`,
    };
  });
}
