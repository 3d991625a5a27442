// The path a user takes, timed from outside: `deno task serve` (scripts/serve.ts, the four
// functions, the local pg_net worker paced like the real one, the Vault secrets and fan-out
// settings it writes) in a process of its own, the stand-in Ultravox in another, and the
// bench only as a client:
//
//   start: "http"      each agency's admin POSTs start-historical-sync (uncapped, everything);
//                      the start kicks the processor through pg_net, runs answer 202 and go on
//                      in the background, continuations follow, until every job is completed;
//   start: "dispatch"  the jobs are created in SQL (as the hourly catch-up creates them) and
//                      one dispatcher call (what pg_cron runs every minute) fans out to them.
//
// Wall time runs from the first start (or the dispatch) to the moment the database shows the
// last job completed. The serve process's CPU time and peak RSS come from /proc; the key's
// requests, in-flight maximum and rate from the stand-in's own log (tools/stand_in_ultravox
// stats.ts).
import devKeys from "../supabase/dev-keys.json" with { type: "json" };
import type { StandInProcess } from "../tools/stand_in_ultravox/spawn.ts";
import type { KeyStats } from "../tools/stand_in_ultravox/stats.ts";
import { devEnv } from "../tools/dev_env.ts";
import { userToken } from "../tools/dev_tokens.ts";
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import {
  createAgency,
  DB_URL,
  deleteAgencies,
  keepCronPaused,
  withDispatchSecrets,
} from "./database.ts";
import { formatSpread, num, type Row, spread } from "./stats.ts";
import { procStatusMb } from "./throughput.ts";

/** The seed's demo admin (supabase/seed.sql): made an admin of each bench agency. */
const ADMIN_ID = "22222222-2222-4222-8222-222222222222";
const CLK_TCK = 100; // Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these

export interface EndToEndOptions {
  standIn: StandInProcess;
  /** One agency per key; each key's account holds `calls` calls. */
  apiKeys: string[];
  calls: number;
  start: "http" | "dispatch";
  /** SYNC_SLICES, SYNC_MAX_INVOCATIONS, SYNC_MAX_JOBS_PER_RUN, SYNC_PAGE_SIZE for serve. */
  env: Record<string, string>;
  /** V8's heap limit for the serve process, as the edge runtime limits an isolate. */
  heapMb?: number;
  /** More `deno run` flags for serve (e.g. --cpu-prof, to see where its time goes). */
  serveFlags?: string[];
  timeoutMs?: number;
  log?: (message: string) => void;
}

export interface EndToEndResult {
  jobs: number;
  calls: number;
  /** The fewest pages the calls fit in (one walk per job, full pages). */
  minPages: number;
  wallMs: number;
  callsPerSec: number;
  /** Requests to Ultravox, all keys. */
  requests: number;
  /** The largest in-flight count of any one key. */
  maxInFlightPerKey: number;
  /** The highest rate of any one key, first request to last answer. */
  perSecondPerKey: number;
  /** Requests beyond minPages, per slice (empty ends, re-reads after a split, retries). */
  extraPerSlice: number;
  slices: { total: number; done: number };
  /** POSTs to process-historical-sync the serve process answered. */
  invocations: number;
  /** Where the wall time went: start → the first Ultravox request; Ultravox idle in between
   * (no request of the key open: invocation boundaries, page writes not overlapped); the last
   * answer → the job seen completed. */
  startupMs: number;
  idleMs: number;
  finishMs: number;
  serveCpuMs: number;
  cpuPerPageMs: number;
  servePeakRssMb: number;
}

/** A free loopback port (bound, then released for serve to take). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK; // utime + stime
}

/** The serve processes running now, so an interrupted bench can stop them (stopServes). */
const running = new Set<Deno.ChildProcess>();

/** Stops every serve process this module started and has not stopped yet. */
export async function stopServes(): Promise<void> {
  for (const child of running) {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  }
  running.clear();
}

/** `deno task serve`'s program in a process of its own, once it prints its ready line. */
async function spawnServe(env: Record<string, string>, heapMb?: number, flags: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(heapMb ? [`--v8-flags=--max-heap-size=${heapMb}`] : []),
      ...flags,
      new URL("../scripts/serve.ts", import.meta.url).pathname,
    ],
    cwd: new URL("../", import.meta.url).pathname,
    env: { ...devEnv(), SUPABASE_DB_URL: DB_URL, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  running.add(child);
  child.status.finally(() => running.delete(child));
  // Its stderr: one line per request served; kept only to count invocations and to quote
  // the last lines when something goes wrong.
  let invocations = 0;
  const tail: string[] = [];
  const drained = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        if (line.includes("POST /functions/v1/process-historical-sync")) invocations++;
        tail.push(line);
        if (tail.length > 40) tail.shift();
      }
    }
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("Serving functions at")) {
    const { value, done } = await reader.read();
    if (done) {
      await drained;
      throw new Error(`deno task serve exited before serving:\n${tail.join("\n")}`);
    }
    out += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    pid: child.pid,
    invocations: () => invocations,
    tail: () => tail.join("\n"),
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await drained;
    },
  };
}

/**
 * One end-to-end run. serve rewrites the dispatcher's Vault secrets and fan-out settings for
 * its port and environment: both are put back afterwards.
 */
export async function measureEndToEnd(sql: Sql, opts: EndToEndOptions): Promise<EndToEndResult> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const [settings] = await sql<{ max_invocations: number; jobs_per_invocation: number }[]>`
    select max_invocations, jobs_per_invocation from public.sync_dispatch_settings`;
  try {
    return await withDispatchSecrets(
      sql,
      { projectUrl: url, secretKey: devKeys.secret_key },
      () => endToEndOnce(sql, opts, url),
    );
  } finally {
    await sql`update public.sync_dispatch_settings
                 set max_invocations = ${settings.max_invocations},
                     jobs_per_invocation = ${settings.jobs_per_invocation}`;
  }
}

async function endToEndOnce(
  sql: Sql,
  opts: EndToEndOptions,
  url: string,
): Promise<EndToEndResult> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 600_000;
  await keepCronPaused(sql);
  const agencyIds: string[] = [];
  for (const key of opts.apiKeys) {
    const id = await createAgency(sql, key);
    await sql`insert into public.agency_members (agency_id, user_id, role)
              values (${id}, ${ADMIN_ID}, 'admin')`;
    agencyIds.push(id);
  }
  await opts.standIn.stats(); // from here on, only this run's requests count
  const serve = await spawnServe(
    {
      SUPABASE_URL: url,
      ULTRAVOX_API_BASE: opts.standIn.baseUrl,
      ...opts.env,
    },
    opts.heapMb,
    opts.serveFlags,
  );
  try {
    const cpuBefore = cpuMs(serve.pid);
    const token = await userToken(ADMIN_ID);
    const started = performance.now();
    const startedAt = Date.now();
    if (opts.start === "http") {
      await Promise.all(agencyIds.map(async (agencyId) => {
        const res = await fetch(`${url}/functions/v1/start-historical-sync`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${token}`,
            apikey: devKeys.publishable_key,
            "content-type": "application/json",
          },
          body: JSON.stringify({ agency_id: agencyId, date_from: null, max_calls: null }),
        });
        const body = await res.json();
        if (res.status !== 201) {
          throw new Error(`start answered ${res.status}: ${JSON.stringify(body)}`);
        }
      }));
    } else {
      const slices = Number(opts.env.SYNC_SLICES ?? 8);
      for (const agencyId of agencyIds) {
        await sql`select 1 from public.create_sync_job(${agencyId}, null, now(), null,
                                                        p_slices => ${slices})`;
      }
      await sql`select public.dispatch_historical_sync()`;
    }
    // Until every job is completed, as the database says (a failed one ends the bench).
    let done: { status: string; n: number }[] = [];
    for (;;) {
      done = await sql<{ status: string; n: number }[]>`
        select status::text, count(*)::int as n from public.historical_sync_jobs
         where agency_id = any (${agencyIds}::uuid[]) group by status`;
      const completed = done.find((d) => d.status === "completed")?.n ?? 0;
      if (completed === agencyIds.length) break;
      if (done.some((d) => d.status === "failed" || d.status === "cancelled")) {
        throw new Error(`a job ended ${JSON.stringify(done)}:\n${serve.tail()}`);
      }
      if (performance.now() - started > timeoutMs) {
        throw new Error(
          `not completed after ${timeoutMs} ms: ${JSON.stringify(done)}\n${serve.tail()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const wallMs = performance.now() - started;
    const endedAt = Date.now();
    const serveCpuMs = cpuMs(serve.pid) - cpuBefore;
    const servePeakRssMb = procStatusMb("VmHWM", serve.pid) ?? 0;
    const [totals] = await sql<
      { calls: number; jobs: number; slices: number; slices_done: number }[]
    >`
      select sum(j.imported_calls + j.skipped_calls)::int as calls, count(*)::int as jobs,
             (select count(*) from public.historical_sync_job_slices s
               where s.job_id = any (array_agg(j.id)))::int as slices,
             (select count(*) filter (where s.done) from public.historical_sync_job_slices s
               where s.job_id = any (array_agg(j.id)))::int as slices_done
        from public.historical_sync_jobs j where j.agency_id = any (${agencyIds}::uuid[])`;
    const stats = await opts.standIn.stats(); // this run's requests only
    const asked: KeyStats[] = opts.apiKeys.map((k) => stats[k]);
    const requests = asked.reduce((n, k) => n + k.requests, 0);
    const pageSize = Number(opts.env.SYNC_PAGE_SIZE ?? 100);
    const minPages = opts.apiKeys.length * Math.ceil(opts.calls / pageSize);
    const slices = Math.max(totals.slices, totals.jobs); // an unsliced job walks as one
    log(
      `${totals.calls} calls in ${Math.round(wallMs)} ms, ${requests} requests, ` +
        `${serve.invocations()} invocations`,
    );
    if (totals.calls !== opts.calls * opts.apiKeys.length) {
      throw new Error(`imported ${totals.calls}, expected ${opts.calls * opts.apiKeys.length}`);
    }
    return {
      jobs: totals.jobs,
      calls: totals.calls,
      minPages,
      wallMs,
      callsPerSec: totals.calls / (wallMs / 1000),
      requests,
      extraPerSlice: (requests - minPages) / slices,
      maxInFlightPerKey: Math.max(...asked.map((k) => k.maxInFlight)),
      perSecondPerKey: Math.max(...asked.map((k) => k.perSecond)),
      slices: { total: totals.slices, done: totals.slices_done },
      invocations: serve.invocations(),
      startupMs: Math.min(...asked.map((k) => k.firstAt)) - startedAt,
      idleMs: Math.max(...asked.map((k) => k.idleMs)),
      finishMs: endedAt - Math.max(...asked.map((k) => k.lastAt)),
      serveCpuMs,
      cpuPerPageMs: serveCpuMs / Math.max(requests, 1),
      servePeakRssMb,
    };
  } finally {
    await serve.stop();
    await deleteAgencies(sql, agencyIds);
  }
}

// ── figures ─────────────────────────────────────────────────────────────────────────
export interface EndToEndRuns {
  /** 50,000 calls, no latency, sliced (SYNC_SLICES 8), under the edge heap limit. */
  zeroLatency: EndToEndResult[];
  /** The same as one walk (SYNC_SLICES 1): what slicing changes at no latency. */
  zeroLatencyOneWalk: EndToEndResult[];
  /** 20,000 calls at 100 ms per page, sliced. */
  latency100: EndToEndResult[];
  /** 100,000 calls at 200 ms per page, sliced. */
  latency200: EndToEndResult[];
  /** 20 agencies × 2,000 calls at 100 ms, one dispatch, by SYNC_MAX_INVOCATIONS. */
  fanOut: Record<number, EndToEndResult[]>;
}

export interface EndToEndSettings {
  slices: number;
  pageSize: number;
  platformHeapMb: number;
  zeroLatencyCalls: number;
  latency100Calls: number;
  latency200Calls: number;
  fanOutAgencies: number;
  fanOutCalls: number;
  fanOutInvocations: number[];
}

/** Ultravox's documented limit per key (docs/ULTRAVOX.md "Rate limits"). */
export const ULTRAVOX_REQUESTS_PER_SECOND = 200;

const all = (r: EndToEndRuns) => [
  ...r.zeroLatency,
  ...r.zeroLatencyOneWalk,
  ...r.latency100,
  ...r.latency200,
  ...Object.values(r.fanOut).flat(),
];

/** Calls/s of the ceilings of each run (bench/ceiling.ts): the raw INSERT and the tightest. */
export interface CeilingPerRun {
  values: number[];
  tightest: number[];
}

export function endToEndFigures(r: EndToEndRuns, s: EndToEndSettings, ceiling: CeilingPerRun) {
  const perSec = (runs: EndToEndResult[]) => spread(runs.map((x) => x.callsPerSec));
  // Ratios run by run: run i's import against run i's ceiling.
  const against = (perRun: number[]) => (runs: EndToEndResult[]) =>
    spread(runs.map((x, i) => x.callsPerSec / perRun[Math.min(i, perRun.length - 1)]));
  const ratio = against(ceiling.values);
  const tight = against(ceiling.tightest);
  const bound = (runs: EndToEndResult[], latencyMs: number) =>
    spread(runs.map((x) => x.wallMs / ((x.minPages * latencyMs) / 6)));
  const f1 = r.fanOut[Math.min(...s.fanOutInvocations)] ?? [];
  const fanOutSpeedUp = Object.fromEntries(
    s.fanOutInvocations.map((
      n,
    ) => [n, spread((r.fanOut[n] ?? []).map((x, i) => f1[i].wallMs / x.wallMs))]),
  );
  const runs = all(r);
  return {
    zeroLatency: {
      perSec: perSec(r.zeroLatency),
      ratio: ratio(r.zeroLatency),
      tight: tight(r.zeroLatency),
    },
    zeroLatencyOneWalk: {
      perSec: perSec(r.zeroLatencyOneWalk),
      ratio: ratio(r.zeroLatencyOneWalk),
      tight: tight(r.zeroLatencyOneWalk),
    },
    latency100: {
      wallMs: spread(r.latency100.map((x) => x.wallMs)),
      bound: bound(r.latency100, 100),
    },
    latency200: {
      wallMs: spread(r.latency200.map((x) => x.wallMs)),
      bound: bound(r.latency200, 200),
    },
    fanOut: Object.fromEntries(
      s.fanOutInvocations.map((n) => [n, spread((r.fanOut[n] ?? []).map((x) => x.wallMs))]),
    ),
    fanOutSpeedUp,
    extraPerSlice: Math.max(...runs.map((x) => x.extraPerSlice)),
    maxInFlightPerKey: Math.max(...runs.map((x) => x.maxInFlightPerKey)),
    perSecondPerKey: Math.max(...runs.map((x) => x.perSecondPerKey)),
    cpuPerPageMs: spread(r.zeroLatency.map((x) => x.cpuPerPageMs)),
    peakRssMb: spread(r.zeroLatency.map((x) => x.servePeakRssMb)),
  };
}

export function endToEndRows(
  f: ReturnType<typeof endToEndFigures>,
  s: EndToEndSettings,
): Row[] {
  const n = (x: number) => num(x);
  const topFan = Math.max(...s.fanOutInvocations);
  const lowFan = Math.min(...s.fanOutInvocations);
  return [
    {
      figure: `End to end, ${
        n(s.zeroLatencyCalls)
      } calls, no latency, ${s.slices} slices: start over HTTP → completed, through serve and the paced pg_net worker`,
      target: "≥ 0.9 × the raw-insert ceiling",
      result: `**${formatSpread(f.zeroLatency.perSec)}** calls/s = **${
        formatSpread(f.zeroLatency.ratio, 2)
      } ×** ceiling (${formatSpread(f.zeroLatency.tight, 2)} × the tightest)`,
      met: f.zeroLatency.ratio.median >= 0.9,
    },
    {
      figure: `The same as one walk (SYNC_SLICES 1)`,
      target: "—",
      result: `${formatSpread(f.zeroLatencyOneWalk.perSec)} calls/s = ${
        formatSpread(f.zeroLatencyOneWalk.ratio, 2)
      } × ceiling (${formatSpread(f.zeroLatencyOneWalk.tight, 2)} × the tightest)`,
    },
    {
      figure: `End to end, ${n(s.latency100Calls)} calls at 100 ms per page, ${s.slices} slices`,
      target: "≤ pages × 100 ms / 6",
      result: `${formatSpread(f.latency100.wallMs)} ms = ${
        formatSpread(f.latency100.bound, 2)
      } × (pages × 100 ms / 6)`,
      met: f.latency100.bound.median <= 1,
    },
    {
      figure: `End to end, ${n(s.latency200Calls)} calls at 200 ms per page, ${s.slices} slices`,
      target: "—",
      result: `${formatSpread(f.latency200.wallMs)} ms = ${
        formatSpread(f.latency200.bound, 2)
      } × (pages × 200 ms / 6)`,
    },
    ...s.fanOutInvocations.map((k): Row => ({
      figure: `${s.fanOutAgencies} agencies × ${
        n(s.fanOutCalls)
      } calls at 100 ms, one dispatch, SYNC_MAX_INVOCATIONS ${k}`,
      target: k === topFan ? `≥ 3 × faster than ${lowFan}` : "—",
      result: `${formatSpread(f.fanOut[k])} ms (${
        formatSpread(f.fanOutSpeedUp[k], 2)
      } × the speed of ${lowFan})`,
      ...(k === topFan ? { met: f.fanOutSpeedUp[k].median >= 3 } : {}),
    })),
    {
      figure: "Ultravox requests beyond the fewest pages, per slice (worst run)",
      target: "≤ 8",
      result: num(f.extraPerSlice, 1),
      met: f.extraPerSlice <= 8,
    },
    {
      figure: "In-flight requests per key (worst run)",
      target: `≤ 2 × SYNC_SLICES = ${2 * s.slices}`,
      result: n(f.maxInFlightPerKey),
      met: f.maxInFlightPerKey <= 2 * s.slices,
    },
    {
      figure: "Requests per second per key (worst run)",
      target: `(Ultravox documents ${ULTRAVOX_REQUESTS_PER_SECOND})`,
      result: `${num(f.perSecondPerKey, 1)} = ${
        num((f.perSecondPerKey / ULTRAVOX_REQUESTS_PER_SECOND) * 100)
      } % of it`,
      met: f.perSecondPerKey <= ULTRAVOX_REQUESTS_PER_SECOND,
    },
    {
      figure: `CPU per page end to end (the serve process: functions, router, pg_net worker)`,
      target: "≤ 5 ms",
      result: `${formatSpread(f.cpuPerPageMs, 2)} ms`,
      met: f.cpuPerPageMs.median <= 5,
    },
    {
      figure: `Peak RSS of serve importing ${
        n(s.zeroLatencyCalls)
      } calls, V8 heap limited to ${s.platformHeapMb} MB`,
      target: "< 150 MB",
      result: `${formatSpread(f.peakRssMb)} MB`,
      met: f.peakRssMb.median < 150,
    },
  ];
}
