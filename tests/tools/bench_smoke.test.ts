// A tiny `deno task bench`: every measuring function of bench/ on accounts of a few hundred
// calls, so each path stays alive between bench runs, and the table filled into the text of
// docs/PERFORMANCE.md (in memory; the file is never written). Asserts what the bench counts
// (calls, pages, statements, HTTP requests and answers), never how long anything took.
import assert from "node:assert/strict";
import { measureCeiling } from "../../bench/ceiling.ts";
import {
  benchSql,
  deleteAgencies,
  foreignActiveJobs,
  withCronPaused,
} from "../../bench/database.ts";
import { measureDispatchHold } from "../../bench/dispatch_hold.ts";
import { type EndToEndResult, measureEndToEnd } from "../../bench/end_to_end.ts";
import { measureIdleTick } from "../../bench/idle_tick.ts";
import { measureLatencyBound } from "../../bench/latency_bound.ts";
import { machineFacts } from "../../bench/machine.ts";
import { measurePageStep } from "../../bench/page_step.ts";
import { measureProfile } from "../../bench/profile.ts";
import {
  type BenchReport,
  figures,
  FIGURES_END,
  FIGURES_START,
  fillFigures,
  renderFigures,
  type Runs,
  type Settings,
} from "../../bench/report.ts";
import { measureScaleOut, type ScaleOutResult } from "../../bench/scale_out.ts";
import { importInSubprocess } from "../../bench/throughput.ts";
import { applyDevEnv } from "../../tools/dev_env.ts";
import { spawnStandIn } from "../../tools/stand_in_ultravox/spawn.ts";

const CALLS = 400;
const PAGE_SIZE = 100;
const SEED = 8_400_001;
const KEY = "bench-smoke-key";
const DISPATCH_KEY = "bench-smoke-dispatch";
const DISPATCH_CALLS = 200;
const SCALE_KEYS = ["bench-smoke-scale-0", "bench-smoke-scale-1"];
const SCALE_CALLS = 200;
const E2E_KEYS = ["bench-smoke-e2e-0", "bench-smoke-e2e-1"];
const E2E_CALLS = 300;
const E2E_SLICES = 4;

Deno.test("the bench, in miniature: each measurement once, counted, never timed", async (t) => {
  applyDevEnv();
  const sql = benchSql();
  const standIn = await spawnStandIn({
    accounts: [
      { apiKey: KEY, seed: SEED, count: CALLS },
      { apiKey: DISPATCH_KEY, seed: SEED + 1, count: DISPATCH_CALLS },
      ...SCALE_KEYS.map((apiKey, i) => ({ apiKey, seed: SEED + 2 + i, count: SCALE_CALLS })),
      // calls up to now, as the slices of a walk without date_from are planned
      ...E2E_KEYS.map((apiKey, i) => ({
        apiKey,
        seed: SEED + 10 + i,
        count: E2E_CALLS,
        end: new Date().toISOString(),
      })),
    ],
    latencyMs: 0,
    maxPageSize: PAGE_SIZE,
  });
  const importOpts = {
    apiBase: standIn.baseUrl,
    apiKey: KEY,
    pageSize: PAGE_SIZE,
    maxPagesPerRun: 100,
  };
  const tiny = { seed: SEED, count: CALLS, pageSize: PAGE_SIZE };
  const agencies: string[] = [];
  try {
    await withCronPaused(sql, async () => {
      const ceiling = { values: {}, jsonb: {} } as Runs["ceiling"];
      await t.step("ceilings: both forms insert every call (and delete them)", async () => {
        const values = await measureCeiling(sql, { ...tiny, form: "values" });
        const jsonb = await measureCeiling(sql, { ...tiny, form: "jsonb" });
        assert.deepEqual([values.calls, values.inserted, jsonb.inserted], [CALLS, CALLS, CALLS]);
        ceiling.values[PAGE_SIZE] = [values];
        ceiling.jsonb[PAGE_SIZE] = [jsonb];
      });

      let pageStep!: Runs["pageStep"][number];
      await t.step("page step: new, unchanged, changed; one statement per page step", async () => {
        pageStep = await measurePageStep(sql, tiny);
        const counts = Object.fromEntries(
          Object.entries(pageStep.passes).map(([c, p]) => [
            c,
            [p.pages, p.imported, p.skipped, p.refreshed, p.statements],
          ]),
        );
        assert.deepEqual(counts, {
          new: [4, CALLS, 0, 0, 4],
          unchanged: [4, 0, CALLS, 0, 4],
          changed: [4, 0, CALLS, CALLS, 4],
        });
      });

      let run!: Awaited<ReturnType<typeof importInSubprocess>>;
      await t.step("throughput: one import in a subprocess, statements counted", async () => {
        run = await importInSubprocess(importOpts);
        agencies.push(run.agencyId);
        assert.deepEqual(
          [
            run.status,
            run.calls,
            run.imported,
            run.skipped,
            run.failed,
            run.pages,
            run.invocations,
          ],
          ["completed", CALLS, CALLS, 0, 0, 4, 1],
        );
        // One invocation: the claim, the key, one record_sync_page per page (the last page
        // completes the job, so there is no release), and after a run that made progress the
        // question whether other work is left for a continuation.
        assert.equal(run.pageStatements, 4);
        assert.equal(run.statements, 2 + 4 + 1);
        assert.equal(typeof run.peakRssMb, "number");
        await deleteAgencies(sql, [run.agencyId]);
        agencies.length = 0;
      });

      let latency!: Runs["latency"][number];
      await t.step("latency bound: the import, then the bare walk of the same pages", async () => {
        latency = await measureLatencyBound(sql, { ...importOpts, calls: CALLS });
        assert.deepEqual([latency.pages, latency.barePages], [4, 4]);
      });

      let profile!: Runs["profile"];
      await t.step("profile: a profiled import, summarized by category", async () => {
        profile = await measureProfile(sql, { ...importOpts, calls: CALLS });
        assert.equal(profile.pages, 4);
        assert.ok(profile.categories.length > 0 && profile.topFunctions.length > 0);
      });

      let idle!: Runs["idle"];
      await t.step("idle tick: no HTTP request, one no_work log row each", async () => {
        idle = await measureIdleTick(sql, { ticks: 3 });
        assert.equal(idle.httpRequests, 0, "an idle tick queues no HTTP request");
        assert.deepEqual(idle.reasons, ["no_work"]);
        const [{ left }] = await sql<{ left: number }[]>`
          select count(*)::int as left from public.cron_job_logs
           where id = any(${idle.logIds}::uuid[])`;
        assert.equal(left, 0, "the idle tick's log rows are deleted again");
      });

      let dispatch!: Runs["dispatch"];
      await t.step(
        "dispatch hold: through pg_net and the router, 202 now, 200 before",
        async () => {
          dispatch = await measureDispatchHold(sql, {
            apiBase: standIn.baseUrl,
            apiKey: DISPATCH_KEY,
            calls: DISPATCH_CALLS,
            pageSize: PAGE_SIZE,
            dispatches: 1,
            pollMs: 100,
          });
          assert.deepEqual(
            dispatch.map((d) => [d.mode, d.status, d.timedOut, d.logStatus, d.pages, d.imported]),
            [
              ["after", 202, false, "completed", 2, DISPATCH_CALLS],
              ["before", 200, false, "completed", 2, DISPATCH_CALLS],
            ],
          );
        },
      );

      // Processors without a job id claim any job: only where no one else has one.
      const scaleOut: Record<number, ScaleOutResult[]> = {};
      const foreign = await foreignActiveJobs(sql);
      await t.step({
        name: "scale-out: two processors drain two agencies' jobs",
        ignore: foreign > 0,
        fn: async () => {
          const r = await measureScaleOut(sql, {
            apiBase: standIn.baseUrl,
            apiKeys: SCALE_KEYS,
            processors: 2,
            pageSize: PAGE_SIZE,
            maxPagesPerRun: 100,
            maxJobsPerRun: 4,
          });
          await deleteAgencies(sql, r.agencyIds);
          assert.deepEqual(
            [r.jobs, r.completedJobs, r.calls, r.pages, r.problems, r.foreignJobs],
            [2, 2, SCALE_KEYS.length * SCALE_CALLS, 4, [], []],
          );
          scaleOut[2] = [r];
        },
      });

      const e2e: EndToEndResult[] = [];
      await t.step({
        name: "end to end: a start over HTTP and a dispatch, through serve, sliced",
        ignore: foreign > 0,
        fn: async () => {
          const env = {
            SYNC_SLICES: String(E2E_SLICES),
            SYNC_PAGE_SIZE: String(PAGE_SIZE),
            SYNC_MAX_JOBS_PER_RUN: "4",
          };
          // One agency's admin starts a sync: the kick posts one request (4 slices, 4 per
          // invocation), which walks every slice to the end.
          const http = await measureEndToEnd(sql, {
            standIn,
            apiKeys: [E2E_KEYS[0]],
            calls: E2E_CALLS,
            start: "http",
            env,
          });
          // Two agencies' jobs, one dispatch: 8 slices, 4 per invocation → 2 requests.
          const dispatched = await measureEndToEnd(sql, {
            standIn,
            apiKeys: E2E_KEYS,
            calls: E2E_CALLS,
            start: "dispatch",
            env: { ...env, SYNC_MAX_INVOCATIONS: "4" },
          });
          for (const [r, jobs, invocations] of [[http, 1, 1], [dispatched, 2, 2]] as const) {
            assert.deepEqual(
              [r.jobs, r.calls, r.slices.done, r.invocations],
              [jobs, jobs * E2E_CALLS, r.slices.total, invocations],
            );
            assert.ok(r.slices.total >= jobs * E2E_SLICES, `${r.slices.total} slices`);
            assert.ok(r.extraPerSlice <= 8, `${r.extraPerSlice} extra requests per slice`);
            assert.ok(r.maxInFlightPerKey <= 2 * E2E_SLICES, `${r.maxInFlightPerKey} in flight`);
            assert.ok(r.servePeakRssMb > 0 && r.serveCpuMs >= 0);
          }
          e2e.push(http, dispatched);
        },
      });

      await t.step("report: the table fills the markers, the prose stays as it is", async () => {
        const settings: Settings = {
          runs: 1,
          throughputCalls: CALLS,
          pageSizes: [PAGE_SIZE],
          defaultPageSize: PAGE_SIZE,
          latencyMs: 0,
          latencyCalls: CALLS,
          dispatchCalls: DISPATCH_CALLS,
          dispatchesPerRun: 1,
          scaleAgencies: SCALE_KEYS.length,
          scaleCalls: SCALE_CALLS,
          scaleProcessors: scaleOut[2] ? [2] : [],
          cpuAllowanceMs: 2000,
          platformHeapMb: 256,
          maxPagesPerRun: 100,
          maxJobsPerRun: 4,
          endToEnd: {
            slices: E2E_SLICES,
            pageSize: PAGE_SIZE,
            platformHeapMb: 256,
            zeroLatencyCalls: E2E_CALLS,
            latency100Calls: E2E_CALLS,
            latency200Calls: E2E_CALLS,
            fanOutAgencies: E2E_KEYS.length,
            fanOutCalls: E2E_CALLS,
            fanOutInvocations: [4],
          },
        };
        const [http, dispatched] = e2e.length === 2 ? e2e : [undefined, undefined];
        const runs: Runs = {
          ceiling,
          endToEnd: {
            zeroLatency: http ? [http] : [],
            zeroLatencyOneWalk: http ? [http] : [],
            latency100: http ? [http] : [],
            latency200: http ? [http] : [],
            fanOut: { 4: dispatched ? [dispatched] : [] },
          },
          throughput: { imports: { [PAGE_SIZE]: [run] }, platformHeap: [run] },
          pageStep: [pageStep],
          latency: [latency],
          dispatch,
          idle,
          scaleOut,
          profile,
        };
        const report: BenchReport = {
          generatedAt: new Date().toISOString(),
          durationS: 1,
          machine: await machineFacts(sql),
          settings,
          figures: figures(runs, settings),
          runs,
        };
        assert.equal(
          report.figures.throughput.perPageSize[PAGE_SIZE].statementsPerPage.median,
          1.75,
        );
        const doc = await Deno.readTextFile(new URL("../../docs/PERFORMANCE.md", import.meta.url));
        const filled = fillFigures(doc, renderFigures(report));
        const outside = (text: string) =>
          text.slice(0, text.indexOf(FIGURES_START)) + text.slice(text.indexOf(FIGURES_END));
        assert.equal(outside(filled), outside(doc), "only the text between the markers changes");
        assert.equal(fillFigures(filled, renderFigures(report)), filled, "filling twice is stable");
        assert.match(
          filled,
          /\| SQL statements per page, counted \(whole import, page 100\) \| ≤ 2 \| \*\*1\.750\*\*/,
        );
        for (const c of ["all new", "unchanged", "changed upstream"]) {
          assert.match(
            filled,
            new RegExp(
              `Page step per 100-call page, [^|]*${c}[^\\n]*\\*\\*1\\.00\\*\\* statement per page step`,
            ),
          );
        }
        assert.match(filled, /wait: false\}`, 10 s time-out[^\n]*answered 1 × 202, 0 timed out/);
        assert.match(filled, /as the old dispatcher[^\n]*answered 1 × 200, 0 timed out/);
      });
    });
  } finally {
    await deleteAgencies(sql, agencies);
    await standIn.close();
    await sql.end();
  }
});
