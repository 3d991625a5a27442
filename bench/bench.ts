// deno task bench — the performance figures of docs/ARCHITECTURE.md §5 and issue 8, measured against the
// real local Postgres and the stand-in Ultravox (in a process of its own). Writes
// bench/results.json and regenerates docs/PERFORMANCE.md. Every figure is the median of
// BENCH_RUNS runs (default 3) with its spread. Needs the database to itself: it pauses the
// process-historical-sync schedule while it runs and deletes everything it created.
import { loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import { type CeilingResult, measureCeiling } from "./ceiling.ts";
import {
  benchSql,
  deleteAgencies,
  foreignActiveJobs,
  restoreCron,
  withCronPaused,
} from "./database.ts";
import {
  spawnStandIn,
  type StandInProcess,
  type StandInSpec,
} from "../tools/stand_in_ultravox/spawn.ts";
import { measureIdleTick } from "./idle_tick.ts";
import { importInSubprocess, type ImportOnceResult } from "./import_once.ts";
import { measureBareWalk } from "./latency_bound.ts";
import { measurePageStep, type PageStepResult } from "./page_step.ts";
import { readProfile, summarizeProfile } from "./profile.ts";
import { renderReport } from "./report.ts";
import { machineFacts } from "./machine.ts";
import { measureScaleOut, type ScaleOutResult } from "./scale_out.ts";
import {
  type BenchReport,
  type LatencyRun,
  type Results,
  type Settings,
  summarize,
} from "./summary.ts";

const RUNS = Number(Deno.env.get("BENCH_RUNS") ?? 3);
const THROUGHPUT_CALLS = 50_000;
const PAGE_SIZES = [100, 200] as const;
/** SYNC_PAGE_SIZE's default (docs/ARCHITECTURE.md §8): the latency and scale-out runs use it. */
const DEFAULT_PAGE_SIZE = 100;
const LATENCY_MS = 100;
const LATENCY_CALLS = 5_000;
const SCALE_AGENCIES = 20;
const SCALE_CALLS = 2_000;
const SCALE_PROCESSORS = [1, 2, 4] as const;
/** The platform's CPU allowance per request. */
const CPU_ALLOWANCE_MS = 2_000;
/** The platform's memory limit, given to V8 as its heap limit as the edge runtime does. */
const PLATFORM_HEAP_MB = 256;
const SEEDS = { throughput: 20_261_129, latency: 20_261_130, scaleOut: 20_261_200 };

const ROOT = new URL("../", import.meta.url);
const config = loadConfig();
const settings: Settings = {
  runs: RUNS,
  throughputCalls: THROUGHPUT_CALLS,
  pageSizes: [...PAGE_SIZES],
  defaultPageSize: DEFAULT_PAGE_SIZE,
  latencyMs: LATENCY_MS,
  latencyCalls: LATENCY_CALLS,
  scaleAgencies: SCALE_AGENCIES,
  scaleCalls: SCALE_CALLS,
  scaleProcessors: [...SCALE_PROCESSORS],
  cpuAllowanceMs: CPU_ALLOWANCE_MS,
  platformHeapMb: PLATFORM_HEAP_MB,
  maxPagesPerRun: config.SYNC_MAX_PAGES_PER_RUN,
  maxJobsPerRun: config.SYNC_MAX_JOBS_PER_RUN,
};
const log = (message: string) => console.error(`[bench] ${message}`);

async function withFake<T>(
  spec: StandInSpec,
  fn: (fake: StandInProcess) => Promise<T>,
): Promise<T> {
  const fake = await spawnStandIn(spec);
  try {
    return await fn(fake);
  } finally {
    await fake.close();
  }
}

function check(result: ImportOnceResult, calls: number) {
  if (result.status !== "completed" || result.imported !== calls || result.calls !== calls) {
    throw new Error(
      `the import did not bring in all ${calls} calls: ${JSON.stringify({ ...result })}` +
        " (are the bench's calls in the database already? run with a clean database)",
    );
  }
}

// `--render-only`: work the figures out again from the runs in bench/results.json and
// rewrite docs/PERFORMANCE.md, without measuring anything.
if (Deno.args.includes("--render-only")) {
  const last = JSON.parse(
    await Deno.readTextFile(new URL("bench/results.json", ROOT)),
  ) as BenchReport;
  last.figures = summarize({ ...last.raw, profile: last.profile }, last.settings);
  await Deno.writeTextFile(
    new URL("bench/results.json", ROOT),
    JSON.stringify(last, null, 2) + "\n",
  );
  await Deno.writeTextFile(new URL("docs/PERFORMANCE.md", ROOT), renderReport(last));
  Deno.exit(0);
}

// Interrupted: put the schedule back and remove what the bench made, then stop.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    log(`${signal}: restoring the cron schedule and deleting the bench's agencies`);
    const fresh = benchSql();
    try {
      await restoreCron(fresh);
      await deleteAgencies(fresh);
    } finally {
      Deno.exit(130);
    }
  });
}

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
  const results = await withCronPaused(sql, async () => {
    // ── ceiling, throughput, statements, CPU, memory ──────────────────────────────
    const ceiling: Record<number, CeilingResult[]> = { 100: [], 200: [] };
    const jsonbCeiling: Record<number, CeilingResult[]> = { 100: [], 200: [] };
    const imports: Record<number, ImportOnceResult[]> = { 100: [], 200: [] };
    const platformHeap: ImportOnceResult[] = [];
    const pageStep: PageStepResult[] = [];
    const profileDir = await Deno.makeTempDir({ prefix: "bench-profile-" });
    let profile: Results["profile"] | undefined;
    await withFake({
      accounts: [{ apiKey: "bench-throughput", seed: SEEDS.throughput, count: THROUGHPUT_CALLS }],
      latencyMs: 0,
      maxPageSize: Math.max(...PAGE_SIZES),
    }, async (fake) => {
      const importOpts = (pageSize: number) => ({
        apiBase: fake.baseUrl,
        apiKey: "bench-throughput",
        pageSize,
        maxPagesPerRun: config.SYNC_MAX_PAGES_PER_RUN,
      });
      log("warm-up (not recorded)");
      await measureCeiling(sql, { seed: SEEDS.throughput, count: 10_000, pageSize: 100 });
      const warm = await importInSubprocess(importOpts(DEFAULT_PAGE_SIZE));
      await deleteAgencies(sql, [warm.agencyId]);
      for (let run = 1; run <= RUNS; run++) {
        for (const pageSize of PAGE_SIZES) {
          log(`run ${run}/${RUNS}, page size ${pageSize}: ceilings`);
          const ceilingOpts = { seed: SEEDS.throughput, count: THROUGHPUT_CALLS, pageSize };
          ceiling[pageSize].push(await measureCeiling(sql, { ...ceilingOpts, form: "values" }));
          jsonbCeiling[pageSize].push(await measureCeiling(sql, { ...ceilingOpts, form: "jsonb" }));
          log(`run ${run}/${RUNS}, page size ${pageSize}: import of ${THROUGHPUT_CALLS} calls`);
          const r = await importInSubprocess(importOpts(pageSize));
          await deleteAgencies(sql, [r.agencyId]);
          check(r, THROUGHPUT_CALLS);
          imports[pageSize].push(r);
          if (pageSize === DEFAULT_PAGE_SIZE) {
            log(`run ${run}/${RUNS}, page size ${pageSize}: record_sync_page alone`);
            pageStep.push(
              await measurePageStep(sql, {
                seed: SEEDS.throughput,
                count: THROUGHPUT_CALLS,
                pageSize,
              }),
            );
          }
        }
        log(`run ${run}/${RUNS}: import with the V8 heap limited to ${PLATFORM_HEAP_MB} MB`);
        const r = await importInSubprocess(importOpts(DEFAULT_PAGE_SIZE), {
          v8Flags: [`--max-heap-size=${PLATFORM_HEAP_MB}`],
        });
        await deleteAgencies(sql, [r.agencyId]);
        check(r, THROUGHPUT_CALLS);
        platformHeap.push(r);
      }
      log("CPU profile of one import (page size 100)");
      const r = await importInSubprocess(importOpts(DEFAULT_PAGE_SIZE), {
        cpuProfileDir: profileDir,
      });
      await deleteAgencies(sql, [r.agencyId]);
      check(r, THROUGHPUT_CALLS);
      profile = { pages: r.pages, ...summarizeProfile(await readProfile(profileDir)) };
    });
    await Deno.remove(profileDir, { recursive: true });

    // ── latency bound ─────────────────────────────────────────────────────────────
    const latency: LatencyRun[] = [];
    await withFake({
      accounts: [{ apiKey: "bench-latency", seed: SEEDS.latency, count: LATENCY_CALLS }],
      latencyMs: LATENCY_MS,
      maxPageSize: 100,
    }, async (fake) => {
      for (let run = 1; run <= RUNS; run++) {
        log(`run ${run}/${RUNS}: ${LATENCY_CALLS} calls at ${LATENCY_MS} ms per page`);
        const opts = {
          apiBase: fake.baseUrl,
          apiKey: "bench-latency",
          pageSize: DEFAULT_PAGE_SIZE,
          maxPagesPerRun: config.SYNC_MAX_PAGES_PER_RUN,
        };
        const r = await importInSubprocess(opts);
        await deleteAgencies(sql, [r.agencyId]);
        check(r, LATENCY_CALLS);
        const bare = await measureBareWalk(opts);
        latency.push({ ...r, bareWalkMs: bare.wallMs, barePages: bare.pages });
      }
    });

    // ── idle tick ─────────────────────────────────────────────────────────────────
    log("idle tick");
    const idle = await measureIdleTick(sql, { ticks: 20 * RUNS });

    // ── scale-out ─────────────────────────────────────────────────────────────────
    const keys = Array.from({ length: SCALE_AGENCIES }, (_, i) => `bench-scale-${i}`);
    const scaleOut: Record<number, ScaleOutResult[]> = { 1: [], 2: [], 4: [] };
    await withFake({
      accounts: keys.map((apiKey, i) => ({ apiKey, seed: SEEDS.scaleOut + i, count: SCALE_CALLS })),
      latencyMs: LATENCY_MS,
      maxPageSize: 100,
    }, async (fake) => {
      for (let run = 1; run <= RUNS; run++) {
        for (const processors of SCALE_PROCESSORS) {
          log(
            `run ${run}/${RUNS}: ${SCALE_AGENCIES} agencies × ${SCALE_CALLS} calls, ${processors} processor(s)`,
          );
          const r = await measureScaleOut(sql, {
            apiBase: fake.baseUrl,
            apiKeys: keys,
            processors,
            pageSize: DEFAULT_PAGE_SIZE,
            maxPagesPerRun: config.SYNC_MAX_PAGES_PER_RUN,
            maxJobsPerRun: config.SYNC_MAX_JOBS_PER_RUN,
          });
          await deleteAgencies(sql, r.agencyIds);
          if (r.completedJobs !== SCALE_AGENCIES || r.calls !== SCALE_AGENCIES * SCALE_CALLS) {
            throw new Error(`scale-out left work undone: ${JSON.stringify(r)}`);
          }
          scaleOut[processors].push(r);
        }
      }
    });
    return {
      ceiling,
      jsonbCeiling,
      imports,
      pageStep,
      platformHeap,
      profile: profile!,
      latency,
      idle,
      scaleOut,
    };
  });

  const { profile, ...raw } = results;
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    durationS: Math.round((performance.now() - started) / 1000),
    machine: await machineFacts(sql),
    settings,
    figures: summarize(results, settings),
    profile,
    raw,
  };
  await Deno.writeTextFile(
    new URL("bench/results.json", ROOT),
    JSON.stringify(report, null, 2) + "\n",
  );
  await Deno.mkdir(new URL("docs/", ROOT), { recursive: true });
  await Deno.writeTextFile(new URL("docs/PERFORMANCE.md", ROOT), renderReport(report));
  log(`done in ${report.durationS} s: bench/results.json, docs/PERFORMANCE.md`);
} finally {
  await deleteAgencies(sql).catch(() => {});
  await sql.end();
}
Deno.exit(0); // the signal listeners would keep the process alive
