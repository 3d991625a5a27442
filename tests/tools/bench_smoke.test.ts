// A tiny `deno task bench`: the bench's measuring functions on a 400-call account, so their
// code path stays alive between bench runs. Asserts what the bench counts (calls, pages,
// statements, HTTP requests), never how long anything took.
import assert from "node:assert/strict";
import { measureCeiling } from "../../bench/ceiling.ts";
import { benchSql, deleteAgencies, withCronPaused } from "../../bench/database.ts";
import { measureIdleTick } from "../../bench/idle_tick.ts";
import { importInSubprocess } from "../../bench/import_once.ts";
import { measurePageStep } from "../../bench/page_step.ts";
import { renderReport } from "../../bench/report.ts";
import { type Results, type Settings, summarize } from "../../bench/summary.ts";
import { machineFacts } from "../../bench/machine.ts";
import { spawnStandIn } from "../../tools/stand_in_ultravox/spawn.ts";

const CALLS = 400;
const PAGE_SIZE = 100;
const SEED = 8_400_001;
const KEY = "bench-smoke-key";

Deno.test("the bench, in miniature: 400 calls in 4 page steps of one statement each", async () => {
  const sql = benchSql();
  const fake = await spawnStandIn({
    accounts: [{ apiKey: KEY, seed: SEED, count: CALLS }],
    latencyMs: 0,
    maxPageSize: PAGE_SIZE,
  });
  const agencies: string[] = [];
  try {
    await withCronPaused(sql, async () => {
      const tiny = { seed: SEED, count: CALLS, pageSize: PAGE_SIZE };
      const ceiling = await measureCeiling(sql, { ...tiny, form: "values" });
      assert.equal(ceiling.calls, CALLS);
      assert.equal(ceiling.inserted, CALLS, "the ceiling inserts every call (and deletes them)");
      const jsonbCeiling = await measureCeiling(sql, { ...tiny, form: "jsonb" });
      assert.equal(jsonbCeiling.inserted, CALLS, "so does the jsonb_to_recordset ceiling");

      const step = await measurePageStep(sql, tiny);
      assert.equal(step.imported, CALLS, "record_sync_page alone imports every call");

      const run = await importInSubprocess({
        apiBase: fake.baseUrl,
        apiKey: KEY,
        pageSize: PAGE_SIZE,
        maxPagesPerRun: 100,
      });
      agencies.push(run.agencyId);
      assert.deepEqual(
        {
          status: run.status,
          calls: run.calls,
          imported: run.imported,
          skipped: run.skipped,
          failed: run.failed,
          pages: run.pages,
          invocations: run.invocations,
        },
        {
          status: "completed",
          calls: CALLS,
          imported: CALLS,
          skipped: 0,
          failed: 0,
          pages: 4,
          invocations: 1,
        },
      );
      // One invocation: claim_sync_jobs, the key, then one record_sync_page per page (the
      // last page completes the job, so there is no release).
      assert.equal(run.pageStatements, 4);
      assert.equal(run.statements, 2 + 4);
      assert.equal(typeof run.peakRssMb, "number");
      await deleteAgencies(sql, [run.agencyId]);
      agencies.length = 0;

      const idle = await measureIdleTick(sql, { ticks: 3 });
      assert.equal(idle.httpRequests, 0, "an idle tick queues no HTTP request");
      assert.deepEqual(idle.reasons, ["no_work"]);
      const [{ left }] = await sql<{ left: number }[]>`
        select count(*)::int as left from public.cron_job_logs where id = any(${idle.logIds}::uuid[])`;
      assert.equal(left, 0, "the idle tick's log rows are deleted again");

      // The report renders from these runs (one of each, no scale-out runs).
      const settings: Settings = {
        runs: 1,
        throughputCalls: CALLS,
        pageSizes: [PAGE_SIZE],
        defaultPageSize: PAGE_SIZE,
        latencyMs: 0,
        latencyCalls: CALLS,
        scaleAgencies: 0,
        scaleCalls: 0,
        scaleProcessors: [],
        cpuAllowanceMs: 2000,
        platformHeapMb: 256,
        maxPagesPerRun: 100,
        maxJobsPerRun: 4,
      };
      const results: Results = {
        ceiling: { [PAGE_SIZE]: [ceiling] },
        jsonbCeiling: { [PAGE_SIZE]: [jsonbCeiling] },
        imports: { [PAGE_SIZE]: [run] },
        pageStep: [step],
        platformHeap: [run],
        profile: { pages: 4, totalMs: 1, idleMs: 0, categories: [], topFunctions: [] },
        latency: [{ ...run, bareWalkMs: 1, barePages: 4 }],
        idle,
        scaleOut: {},
      };
      const figures = summarize(results, settings);
      assert.equal(figures.perPageSize[PAGE_SIZE].statementsPerPage.median, 6 / 4);
      const { profile, ...raw } = results;
      const doc = renderReport({
        generatedAt: new Date().toISOString(),
        durationS: 1,
        machine: await machineFacts(sql),
        settings,
        figures,
        profile,
        raw,
      });
      assert.match(doc, /^# Performance\n/);
      assert.match(
        doc,
        /\| SQL statements per page \(counted; page 100\) \| ≤ 2 \| \*\*1\.500\*\*/,
      );
    });
  } finally {
    await deleteAgencies(sql, agencies);
    await fake.close();
    await sql.end();
  }
});
