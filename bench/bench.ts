// deno task bench — the performance figures, measured against the real local Postgres and the
// stand-in Ultravox (in a process of its own). Writes bench/results.json (an output, not
// committed) and the table between the markers of docs/PERFORMANCE.md; the prose around the
// table is written by hand. Every figure is the median of BENCH_RUNS runs (default 3) with
// its spread. Needs the database to itself: it pauses the process-historical-sync schedule
// while it runs and deletes everything it created.
//
//   deno task bench                          measure, write results.json and the table
//   deno run -A bench/bench.ts --render-only the table again from bench/results.json
import { loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import {
  spawnStandIn,
  type StandInProcess,
  type StandInSpec,
} from "../tools/stand_in_ultravox/spawn.ts";
import { applyDevEnv } from "../tools/dev_env.ts";
import { type CeilingResult, measureCeiling } from "./ceiling.ts";
import {
  benchSql,
  deleteAgencies,
  foreignActiveJobs,
  restoreCron,
  restoreDispatchSecrets,
  waitForQuiet,
  withCronPaused,
} from "./database.ts";
import { type DispatchResult, measureDispatchHold } from "./dispatch_hold.ts";
import {
  type EndToEndResult,
  type EndToEndRuns,
  measureEndToEnd,
  stopServes,
} from "./end_to_end.ts";
import { measureIdleTick } from "./idle_tick.ts";
import { type LatencyRun, measureLatencyBound } from "./latency_bound.ts";
import { machineFacts } from "./machine.ts";
import { measurePageStep, type PageStepResult } from "./page_step.ts";
import { measureProfile, type ProfileResult } from "./profile.ts";
import {
  type BenchReport,
  figures,
  fillFigures,
  renderFigures,
  type Runs,
  type Settings,
} from "./report.ts";
import { measureScaleOut, type ScaleOutResult } from "./scale_out.ts";
import {
  assertComplete,
  importInSubprocess,
  type ImportOnceResult,
  type ImportOptions,
} from "./throughput.ts";

applyDevEnv(); // the committed dev keys, as `deno task serve` runs with them
const config = loadConfig();
const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 3);
const settings: Settings = {
  runs: RUNS,
  throughputCalls: 50_000,
  pageSizes: [100, 200],
  /** SYNC_PAGE_SIZE's default: the latency, dispatch and scale-out runs use it. */
  defaultPageSize: 100,
  latencyMs: 100,
  latencyCalls: 5_000,
  /** A job that takes a few seconds at latencyMs per page: 30 pages. */
  dispatchCalls: 3_000,
  dispatchesPerRun: 3,
  scaleAgencies: 20,
  scaleCalls: 2_000,
  scaleProcessors: [1, 2, 4],
  /** The platform's CPU allowance per request. */
  cpuAllowanceMs: 2_000,
  /** The platform's memory limit, given to V8 as its heap limit as the edge runtime does. */
  platformHeapMb: 256,
  maxPagesPerRun: config.SYNC_MAX_PAGES_PER_RUN,
  maxJobsPerRun: config.SYNC_MAX_JOBS_PER_RUN,
  endToEnd: {
    slices: config.SYNC_SLICES,
    pageSize: 100,
    platformHeapMb: 256,
    zeroLatencyCalls: 50_000,
    latency100Calls: 20_000,
    latency200Calls: 100_000,
    fanOutAgencies: 20,
    fanOutCalls: 2_000,
    fanOutInvocations: [1, 2, 4],
  },
};
const SEEDS = {
  throughput: 20_261_129,
  latency: 20_261_130,
  dispatch: 20_261_131,
  scale: 20_261_200,
  endToEnd: 20_261_201,
};
const RESULTS = new URL("./results.json", import.meta.url);
const DOC = new URL("../docs/PERFORMANCE.md", import.meta.url);
const log = (message: string) => console.error(`[bench] ${message}`);

async function writeTable(report: BenchReport) {
  const doc = await Deno.readTextFile(DOC);
  await Deno.writeTextFile(DOC, fillFigures(doc, renderFigures(report)));
}

async function withStandIn<T>(spec: StandInSpec, fn: (s: StandInProcess) => Promise<T>) {
  const standIn = await spawnStandIn(spec);
  try {
    return await fn(standIn);
  } finally {
    await standIn.close();
  }
}

if (Deno.args.includes("--render-only")) {
  const last = JSON.parse(await Deno.readTextFile(RESULTS)) as BenchReport;
  last.figures = figures(last.runs, last.settings);
  await Deno.writeTextFile(RESULTS, JSON.stringify(last, null, 2) + "\n");
  await writeTable(last);
  Deno.exit(0);
}

// Interrupted: put the schedule and the dispatcher's secrets back, remove what the bench
// made, then stop.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    log(`${signal}: restoring the cron schedule and deleting the bench's agencies`);
    const fresh = benchSql();
    try {
      await stopServes();
      await restoreCron(fresh);
      await restoreDispatchSecrets(fresh);
      await deleteAgencies(fresh);
    } finally {
      Deno.exit(130);
    }
  });
}

const s = settings;
const sql = benchSql();
try {
  const foreign = await foreignActiveJobs(sql);
  if (foreign > 0) {
    throw new Error(
      `${foreign} active job(s) of other agencies: the bench needs the database to itself ` +
        "(its processors claim any job, and its idle tick needs no work).",
    );
  }
  await deleteAgencies(sql); // leftovers of an interrupted run
  const started = performance.now();
  const runs: Runs = await withCronPaused(sql, async () => {
    // ── ceilings, throughput, page step, statements, CPU, memory, profile ─────────────
    const ceiling = {
      values: {} as Record<number, CeilingResult[]>,
      jsonb: {} as Record<number, CeilingResult[]>,
    };
    const imports: Record<number, ImportOnceResult[]> = {};
    for (const ps of s.pageSizes) {
      ceiling.values[ps] = [];
      ceiling.jsonb[ps] = [];
      imports[ps] = [];
    }
    const platformHeap: ImportOnceResult[] = [];
    const pageStep: PageStepResult[] = [];
    let profile: ProfileResult | undefined;
    await withStandIn({
      accounts: [{ apiKey: "bench-throughput", seed: SEEDS.throughput, count: s.throughputCalls }],
      latencyMs: 0,
      maxPageSize: Math.max(...s.pageSizes),
    }, async (standIn) => {
      const importOpts = (pageSize: number): ImportOptions => ({
        apiBase: standIn.baseUrl,
        apiKey: "bench-throughput",
        pageSize,
        maxPagesPerRun: s.maxPagesPerRun,
      });
      const imported = async (r: ImportOnceResult) => {
        await deleteAgencies(sql, [r.agencyId]);
        assertComplete(r, s.throughputCalls);
        return r;
      };
      log("warm-up (not recorded)");
      await measureCeiling(sql, { seed: SEEDS.throughput, count: 10_000, pageSize: 100 });
      await deleteAgencies(sql, [
        (await importInSubprocess(importOpts(s.defaultPageSize))).agencyId,
      ]);
      for (let run = 1; run <= RUNS; run++) {
        for (const pageSize of s.pageSizes) {
          log(`run ${run}/${RUNS}, page size ${pageSize}: ceilings`);
          const c = { seed: SEEDS.throughput, count: s.throughputCalls, pageSize };
          ceiling.values[pageSize].push(await measureCeiling(sql, { ...c, form: "values" }));
          ceiling.jsonb[pageSize].push(await measureCeiling(sql, { ...c, form: "jsonb" }));
          log(`run ${run}/${RUNS}, page size ${pageSize}: import of ${s.throughputCalls} calls`);
          imports[pageSize].push(await imported(await importInSubprocess(importOpts(pageSize))));
          if (pageSize === s.defaultPageSize) {
            log(`run ${run}/${RUNS}, page size ${pageSize}: record_sync_page alone, 3 passes`);
            pageStep.push(await measurePageStep(sql, c));
          }
        }
        log(`run ${run}/${RUNS}: import with the V8 heap limited to ${s.platformHeapMb} MB`);
        platformHeap.push(
          await imported(
            await importInSubprocess(importOpts(s.defaultPageSize), {
              v8Flags: [`--max-heap-size=${s.platformHeapMb}`],
            }),
          ),
        );
      }
      log(`CPU profile of one import (page size ${s.defaultPageSize})`);
      profile = await measureProfile(sql, {
        ...importOpts(s.defaultPageSize),
        calls: s.throughputCalls,
      });
    });

    // ── latency bound, dispatch hold ──────────────────────────────────────────────────
    const latency: LatencyRun[] = [];
    const dispatch: DispatchResult[] = [];
    await withStandIn({
      accounts: [
        { apiKey: "bench-latency", seed: SEEDS.latency, count: s.latencyCalls },
        { apiKey: "bench-dispatch", seed: SEEDS.dispatch, count: s.dispatchCalls },
      ],
      latencyMs: s.latencyMs,
      maxPageSize: s.defaultPageSize,
    }, async (standIn) => {
      for (let run = 1; run <= RUNS; run++) {
        log(`run ${run}/${RUNS}: ${s.latencyCalls} calls at ${s.latencyMs} ms per page`);
        latency.push(
          await measureLatencyBound(sql, {
            apiBase: standIn.baseUrl,
            apiKey: "bench-latency",
            pageSize: s.defaultPageSize,
            maxPagesPerRun: s.maxPagesPerRun,
            calls: s.latencyCalls,
          }),
        );
        log(
          `run ${run}/${RUNS}: ${s.dispatchesPerRun} dispatches through pg_net each way, ` +
            `${s.dispatchCalls} calls at ${s.latencyMs} ms per page`,
        );
        dispatch.push(
          ...await measureDispatchHold(sql, {
            apiBase: standIn.baseUrl,
            apiKey: "bench-dispatch",
            calls: s.dispatchCalls,
            pageSize: s.defaultPageSize,
            dispatches: s.dispatchesPerRun,
          }),
        );
      }
    });

    // ── idle tick ─────────────────────────────────────────────────────────────────────
    log("idle tick");
    const idle = await measureIdleTick(sql, { ticks: 20 * RUNS });

    // ── scale-out ─────────────────────────────────────────────────────────────────────
    const keys = Array.from({ length: s.scaleAgencies }, (_, i) => `bench-scale-${i}`);
    const scaleOut: Record<number, ScaleOutResult[]> = {};
    for (const p of s.scaleProcessors) scaleOut[p] = [];
    await withStandIn({
      accounts: keys.map((apiKey, i) => ({ apiKey, seed: SEEDS.scale + i, count: s.scaleCalls })),
      latencyMs: s.latencyMs,
      maxPageSize: s.defaultPageSize,
    }, async (standIn) => {
      for (let run = 1; run <= RUNS; run++) {
        for (const processors of s.scaleProcessors) {
          log(
            `run ${run}/${RUNS}: ${s.scaleAgencies} agencies × ${s.scaleCalls} calls, ` +
              `${processors} processor(s)`,
          );
          if (!await waitForQuiet(sql, 120_000)) {
            throw new Error("other agencies' jobs stayed active: the scale-out needs the database");
          }
          const r = await measureScaleOut(sql, {
            apiBase: standIn.baseUrl,
            apiKeys: keys,
            processors,
            pageSize: s.defaultPageSize,
            maxPagesPerRun: s.maxPagesPerRun,
            maxJobsPerRun: s.maxJobsPerRun,
          });
          await deleteAgencies(sql, r.agencyIds);
          if (r.completedJobs !== s.scaleAgencies || r.calls !== s.scaleAgencies * s.scaleCalls) {
            throw new Error(`scale-out left work undone: ${JSON.stringify(r)}`);
          }
          if (r.foreignJobs.length > 0) {
            log(`the processors claimed ${r.foreignJobs.length} job(s) of another session`);
          }
          scaleOut[processors].push(r);
        }
      }
    });
    // ── end to end: the user's path through serve and the paced pg_net worker ────────
    const e = s.endToEnd;
    const endToEnd: EndToEndRuns = {
      zeroLatency: [],
      zeroLatencyOneWalk: [],
      latency100: [],
      latency200: [],
      fanOut: Object.fromEntries(e.fanOutInvocations.map((n) => [n, []])),
    };
    // Accounts with calls up to now, as a real agency's are (the walk plans its slices over
    // the year before now when date_from is null).
    const now = new Date().toISOString();
    const account = (apiKey: string, seed: number, count: number) => ({
      apiKey,
      seed,
      count,
      end: now,
    });
    const fanKeys = Array.from({ length: e.fanOutAgencies }, (_, i) => `bench-e2e-fan-${i}`);
    const env = (over: Record<string, number>) =>
      Object.fromEntries(
        Object.entries({
          SYNC_SLICES: e.slices,
          SYNC_PAGE_SIZE: e.pageSize,
          SYNC_MAX_JOBS_PER_RUN: s.maxJobsPerRun,
          ...over,
        }).map(([k, v]) => [k, String(v)]),
      );
    const e2e = (
      standIn: StandInProcess,
      apiKeys: string[],
      calls: number,
      over: Partial<Parameters<typeof measureEndToEnd>[1]> = {},
    ): Promise<EndToEndResult> =>
      measureEndToEnd(sql, {
        standIn,
        apiKeys,
        calls,
        start: "http",
        env: env({}),
        log,
        ...over,
      });
    for (const latencyMs of [0, 100, 200]) {
      await withStandIn({
        accounts: latencyMs === 0
          ? [account("bench-e2e-0", SEEDS.endToEnd, e.zeroLatencyCalls)]
          : latencyMs === 100
          ? [
            account("bench-e2e-100", SEEDS.endToEnd + 1, e.latency100Calls),
            ...fanKeys.map((k, i) => account(k, SEEDS.endToEnd + 10 + i, e.fanOutCalls)),
          ]
          : [account("bench-e2e-200", SEEDS.endToEnd + 2, e.latency200Calls)],
        latencyMs,
        maxPageSize: e.pageSize,
      }, async (standIn) => {
        for (let run = 1; run <= RUNS; run++) {
          log(`run ${run}/${RUNS}: end to end at ${latencyMs} ms per page`);
          if (latencyMs === 0) {
            endToEnd.zeroLatency.push(
              await e2e(standIn, ["bench-e2e-0"], e.zeroLatencyCalls, {
                heapMb: e.platformHeapMb,
              }),
            );
            endToEnd.zeroLatencyOneWalk.push(
              await e2e(standIn, ["bench-e2e-0"], e.zeroLatencyCalls, {
                heapMb: e.platformHeapMb,
                env: env({ SYNC_SLICES: 1 }),
              }),
            );
          } else if (latencyMs === 100) {
            endToEnd.latency100.push(await e2e(standIn, ["bench-e2e-100"], e.latency100Calls));
            for (const n of e.fanOutInvocations) {
              log(`run ${run}/${RUNS}: ${e.fanOutAgencies} agencies, SYNC_MAX_INVOCATIONS ${n}`);
              endToEnd.fanOut[n].push(
                await e2e(standIn, fanKeys, e.fanOutCalls, {
                  start: "dispatch",
                  env: env({ SYNC_MAX_INVOCATIONS: n }),
                }),
              );
            }
          } else {
            endToEnd.latency200.push(await e2e(standIn, ["bench-e2e-200"], e.latency200Calls));
          }
        }
      });
    }
    return {
      ceiling,
      endToEnd,
      throughput: { imports, platformHeap },
      pageStep,
      latency,
      dispatch,
      idle,
      scaleOut,
      profile: profile!,
    };
  });

  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    durationS: Math.round((performance.now() - started) / 1000),
    machine: await machineFacts(sql),
    settings,
    figures: figures(runs, settings),
    runs,
  };
  await Deno.writeTextFile(RESULTS, JSON.stringify(report, null, 2) + "\n");
  await writeTable(report);
  log(`done in ${report.durationS} s: bench/results.json, the table in docs/PERFORMANCE.md`);
} finally {
  await deleteAgencies(sql).catch(() => {});
  await sql.end();
}
Deno.exit(0); // the signal listeners would keep the process alive
