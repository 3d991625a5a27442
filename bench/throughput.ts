// Throughput: one import end to end. A fresh agency and job over a whole stand-in account,
// then processHistoricalSync invocations back to back (as the dispatcher and the
// continuations call them, minus pg_net in between) until the job completes. Measures wall
// time, the processor's CPU, every SQL statement it sent (counted through postgres.js's
// `debug` hook) and the process's peak memory.
//
// Each import runs in a process of its own, so its CPU and memory are the processor's alone:
//
//   deno run -A bench/throughput.ts '<ImportOptions as JSON>'
//
// prints one JSON line, an ImportOnceResult. The stand-in Ultravox runs in yet another
// process (tools/stand_in_ultravox/spawn.ts).
import process from "node:process";
import { loadConfig } from "../supabase/functions/_shared/platform/config.ts";
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { processHistoricalSync } from "../supabase/functions/_shared/sync/processor.ts";
import { applyDevEnv } from "../tools/dev_env.ts";
import type { CeilingRuns } from "./ceiling.ts";
import {
  benchSql,
  countCalls,
  countingConnection,
  createAgency,
  createJob,
  jobRow,
} from "./database.ts";
import { formatSpread, num, type Row, type Spread, spread } from "./stats.ts";

export interface ImportOptions {
  /** The stand-in's base URL and the account's key there. */
  apiBase: string;
  apiKey: string;
  pageSize: number;
  maxPagesPerRun: number;
}

export interface ImportResult {
  status: string;
  calls: number;
  imported: number;
  skipped: number;
  failed: number;
  pages: number;
  invocations: number;
  wallMs: number;
  callsPerSec: number;
  /** The processor's statements (BEGIN/COMMIT excluded; postgres.js sends none here). */
  statements: number;
  /** Statements of the page steps themselves (record_sync_page). */
  pageStatements: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  cpuMsPerPage: number;
  agencyId: string;
  jobId: string;
}

export type ImportOnceResult = ImportResult & {
  /** VmRSS before the import (runtime, modules, an open connection). */
  startRssMb: number | null;
  /** VmHWM at the end: the peak. */
  peakRssMb: number | null;
  /** V8's heap at the end: what it has reserved, and what is in use (before any GC). */
  heapTotalMb: number;
  heapUsedMb: number;
};

/**
 * Imports the account behind `apiKey` into a new agency. `setup` is the bench's connection
 * (agency, job, checks: not counted); the processor gets a counting connection of its own.
 * The caller deletes the agency.
 */
export async function measureImport(setup: Sql, opts: ImportOptions): Promise<ImportResult> {
  const config = {
    ...loadConfig(),
    ULTRAVOX_API_BASE: opts.apiBase,
    SYNC_PAGE_SIZE: opts.pageSize,
    SYNC_MAX_PAGES_PER_RUN: opts.maxPagesPerRun,
  };
  const agencyId = await createAgency(setup, opts.apiKey);
  const { sql, counts } = countingConnection();
  try {
    await sql`select 1`; // a warm worker's connection is open already
    counts.statements = 0;
    const cpu0 = process.cpuUsage();
    const started = performance.now();
    const jobId = await createJob(setup, agencyId);
    let pages = 0;
    let invocations = 0;
    let status = "pending";
    while (status === "pending" || status === "in_progress") {
      const run = await processHistoricalSync({ sql, config, log: () => {} }, { jobId });
      invocations++;
      const job = run.jobs[0];
      if (!job) throw new Error(`job ${jobId} could not be claimed`);
      pages += job.pages;
      status = job.status;
      if (job.pages === 0 && status === "in_progress") {
        throw new Error("an invocation made no progress");
      }
    }
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpu0);
    const row = await jobRow(setup, jobId);
    const calls = await countCalls(setup, agencyId);
    return {
      status: row.status,
      calls,
      imported: row.imported_calls,
      skipped: row.skipped_calls,
      failed: row.failed_calls,
      pages,
      invocations,
      wallMs,
      callsPerSec: calls / (wallMs / 1000),
      statements: counts.statements,
      pageStatements: counts.pageStatements,
      cpuUserMs: cpu.user / 1000,
      cpuSystemMs: cpu.system / 1000,
      cpuMsPerPage: (cpu.user + cpu.system) / 1000 / pages,
      agencyId,
      jobId,
    };
  } finally {
    await sql.end();
  }
}

/** Throws unless the import brought in exactly the account's `calls` calls. */
export function assertComplete(result: ImportResult, calls: number) {
  if (result.status !== "completed" || result.imported !== calls || result.calls !== calls) {
    throw new Error(
      `the import did not bring in all ${calls} calls: ${JSON.stringify({ ...result })}` +
        " (are the bench's calls in the database already? run with a clean database)",
    );
  }
}

/**
 * A `kB` line of /proc/<pid>/status (this process's by default) in MiB (VmHWM: the peak
 * RSS), null where there is none.
 */
export function procStatusMb(
  field: "VmHWM" | "VmRSS",
  pid: number | "self" = "self",
): number | null {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export interface SubprocessOptions {
  /** V8 flags for the import process, e.g. `--max-heap-size=256` (the platform's heap limit). */
  v8Flags?: string[];
  /** Write a V8 CPU profile (.cpuprofile) of the import process into this directory. */
  cpuProfileDir?: string;
}

/** Runs this file as a subprocess and returns what it measured. */
export async function importInSubprocess(
  opts: ImportOptions,
  sub: SubprocessOptions = {},
): Promise<ImportOnceResult> {
  const flags = [
    ...(sub.v8Flags?.length ? [`--v8-flags=${sub.v8Flags.join(",")}`] : []),
    ...(sub.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${sub.cpuProfileDir}`] : []),
  ];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...flags, new URL(import.meta.url).pathname, JSON.stringify(opts)],
    cwd: new URL("../", import.meta.url).pathname, // the project's deno.json
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) throw new Error(`bench/throughput.ts failed (${out.code}): ${text}`);
  return JSON.parse(text.split("\n").at(-1)!) as ImportOnceResult;
}

if (import.meta.main) {
  applyDevEnv();
  const opts = JSON.parse(Deno.args[0]) as ImportOptions;
  const setup = benchSql();
  try {
    await setup`select 1`;
    const startRssMb = procStatusMb("VmRSS");
    const result = await measureImport(setup, opts);
    const heap = Deno.memoryUsage();
    const out: ImportOnceResult = {
      ...result,
      startRssMb,
      peakRssMb: procStatusMb("VmHWM"),
      heapTotalMb: heap.heapTotal / 2 ** 20,
      heapUsedMb: heap.heapUsed / 2 ** 20,
    };
    console.log(JSON.stringify(out));
  } finally {
    await setup.end();
  }
}

// ── figures ─────────────────────────────────────────────────────────────────────────

export interface ThroughputRuns {
  /** By page size, one per run. */
  imports: Record<number, ImportOnceResult[]>;
  /** At the default page size with V8's heap limited as the edge runtime limits it. */
  platformHeap: ImportOnceResult[];
}

export interface ThroughputSettings {
  throughputCalls: number;
  pageSizes: number[];
  defaultPageSize: number;
  cpuAllowanceMs: number;
  platformHeapMb: number;
  maxPagesPerRun: number;
}

export interface PageSizeFigures {
  callsPerSec: Spread;
  ratioToCeiling: Spread;
  ratioToJsonbCeiling: Spread;
  statementsPerPage: Spread;
  pageStepStatementsPerPage: Spread;
  statements: number;
  pages: number;
  invocations: number;
  cpuMsPerPage: Spread;
  pagesPerCpuAllowance: Spread;
  peakRssMb: Spread;
  startRssMb: Spread;
  heapTotalMb: Spread;
}

export interface ThroughputFigures {
  perPageSize: Record<number, PageSizeFigures>;
  /** Half the CPU allowance at the slowest run, default page size, a multiple of 50. */
  recommendedMaxPagesPerRun: number;
  platformHeap: { peakRssMb: Spread; heapTotalMb: Spread };
}

/** Ratios are taken run by run: each import against the ceilings measured right before it. */
export function throughputFigures(
  r: ThroughputRuns,
  ceiling: CeilingRuns,
  s: ThroughputSettings,
): ThroughputFigures {
  const perPageSize: Record<number, PageSizeFigures> = {};
  for (const ps of s.pageSizes) {
    const imports = r.imports[ps];
    perPageSize[ps] = {
      callsPerSec: spread(imports.map((i) => i.callsPerSec)),
      ratioToCeiling: spread(
        imports.map((i, k) => i.callsPerSec / ceiling.values[ps][k].callsPerSec),
      ),
      ratioToJsonbCeiling: spread(
        imports.map((i, k) => i.callsPerSec / ceiling.jsonb[ps][k].callsPerSec),
      ),
      statementsPerPage: spread(imports.map((i) => i.statements / i.pages)),
      pageStepStatementsPerPage: spread(imports.map((i) => i.pageStatements / i.pages)),
      statements: imports[0].statements,
      pages: imports[0].pages,
      invocations: imports[0].invocations,
      cpuMsPerPage: spread(imports.map((i) => i.cpuMsPerPage)),
      pagesPerCpuAllowance: spread(imports.map((i) => s.cpuAllowanceMs / i.cpuMsPerPage)),
      peakRssMb: spread(imports.map((i) => i.peakRssMb ?? NaN)),
      startRssMb: spread(imports.map((i) => i.startRssMb ?? NaN)),
      heapTotalMb: spread(imports.map((i) => i.heapTotalMb)),
    };
  }
  const worstCpuMs = perPageSize[s.defaultPageSize].cpuMsPerPage.max;
  return {
    perPageSize,
    recommendedMaxPagesPerRun: Math.max(
      10,
      Math.floor(s.cpuAllowanceMs / 2 / worstCpuMs / 50) * 50,
    ),
    platformHeap: {
      peakRssMb: spread(r.platformHeap.map((i) => i.peakRssMb ?? NaN)),
      heapTotalMb: spread(r.platformHeap.map((i) => i.heapTotalMb)),
    },
  };
}

/** The throughput rows and, separately, the statement, CPU and memory rows. */
export function throughputRows(f: ThroughputFigures, s: ThroughputSettings) {
  const f2 = (x: Spread) => formatSpread(x, 2);
  const f1 = (x: Spread) => formatSpread(x, 1);
  const base = f.perPageSize[s.defaultPageSize];
  const biggest = Math.max(...s.pageSizes);
  const calls = num(s.throughputCalls);
  const throughput: Row[] = s.pageSizes.map((ps) => {
    const x = f.perPageSize[ps];
    return {
      figure: `Throughput: ${calls} calls, job created → completed, 0 ms API latency, page ${ps}`,
      target: "≥ 0.6 × ceiling",
      result: `**${formatSpread(x.callsPerSec)}** calls/s = **${f2(x.ratioToCeiling)} ×** ` +
        `ceiling (${f2(x.ratioToJsonbCeiling)} × the tightest)`,
      met: x.ratioToCeiling.median >= 0.6,
    };
  });
  const statements: Row = {
    figure: `SQL statements per page, counted (whole import, page ${s.defaultPageSize})`,
    target: "≤ 2",
    result: `**${formatSpread(base.statementsPerPage, 3)}**: ${base.statements} statements for ` +
      `${base.pages} pages in ${base.invocations} invocations ` +
      `(${f2(base.pageStepStatementsPerPage)} per page step)`,
    met: base.statementsPerPage.max <= 2,
  };
  const cpu: Row[] = s.pageSizes.map((ps) => {
    const x = f.perPageSize[ps];
    return {
      figure: `Processor CPU per page (user + system), page ${ps}`,
      target: "—",
      result: `**${f2(x.cpuMsPerPage)} ms** → ${formatSpread(x.pagesPerCpuAllowance)} pages ` +
        `in ${s.cpuAllowanceMs} ms of CPU`,
    };
  });
  cpu.push({
    figure: "Recommended `SYNC_MAX_PAGES_PER_RUN` (half the CPU allowance at the slowest run)",
    target: "—",
    result: `**${f.recommendedMaxPagesPerRun}**; the default ${s.maxPagesPerRun} uses ` +
      `${num(s.maxPagesPerRun * base.cpuMsPerPage.median)} ms`,
  });
  const memory: Row[] = [
    {
      figure: `Peak RSS (VmHWM) of the process importing ${calls} calls, page ` +
        `${s.defaultPageSize}, Deno CLI defaults`,
      target: "< 150 MB",
      result: `**${f1(base.peakRssMb)} MB**` +
        (biggest === s.defaultPageSize
          ? ""
          : ` (page ${biggest}: ${f1(f.perPageSize[biggest].peakRssMb)} MB)`) +
        `; at the start ${f1(base.startRssMb)} MB, ` +
        `V8 heap reserved at the end ${f1(base.heapTotalMb)} MB`,
      met: base.peakRssMb.median < 150,
    },
    {
      figure: `… the same with V8's heap limited to ${s.platformHeapMb} MB, as the edge ` +
        `runtime limits a function (\`--v8-flags=--max-heap-size=${s.platformHeapMb}\`)`,
      target: "< 150 MB",
      result: `**${f1(f.platformHeap.peakRssMb)} MB**; V8 heap reserved at the end ` +
        `${f1(f.platformHeap.heapTotalMb)} MB`,
      met: f.platformHeap.peakRssMb.median < 150,
    },
  ];
  return { throughput, statements, cpu, memory };
}
