// From the runs to the figures of the table: medians and spreads, ratios taken run by run
// (each import against the ceiling measured next to it).
import type { CeilingResult } from "./ceiling.ts";
import type { IdleTickResult } from "./idle_tick.ts";
import type { ImportOnceResult } from "./import_once.ts";
import type { MachineFacts } from "./machine.ts";
import type { PageStepResult } from "./page_step.ts";
import type { ProfileSummary } from "./profile.ts";
import type { ScaleOutResult } from "./scale_out.ts";
import { type Spread, spread } from "./stats.ts";

export interface Settings {
  runs: number;
  throughputCalls: number;
  pageSizes: number[];
  /** SYNC_PAGE_SIZE: the page size the importer uses unless configured otherwise. */
  defaultPageSize: number;
  latencyMs: number;
  latencyCalls: number;
  scaleAgencies: number;
  scaleCalls: number;
  scaleProcessors: number[];
  cpuAllowanceMs: number;
  platformHeapMb: number;
  maxPagesPerRun: number;
  maxJobsPerRun: number;
}

export type LatencyRun = ImportOnceResult & { bareWalkMs: number; barePages: number };

export interface Results {
  /** The ceiling: multi-row VALUES, serialized as sent. */
  ceiling: Record<number, CeilingResult[]>;
  /** The tightest: jsonb_to_recordset, serialized before the clock (Postgres's side only). */
  jsonbCeiling: Record<number, CeilingResult[]>;
  imports: Record<number, ImportOnceResult[]>;
  /** record_sync_page alone, at the default page size, one per run. */
  pageStep: PageStepResult[];
  platformHeap: ImportOnceResult[];
  profile: ProfileSummary & { pages: number };
  latency: LatencyRun[];
  idle: IdleTickResult;
  scaleOut: Record<number, ScaleOutResult[]>;
}

export interface PageSizeFigures {
  ceilingCallsPerSec: Spread;
  jsonbCeilingCallsPerSec: Spread;
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

export interface ScaleOutFigures {
  wallMs: Spread;
  callsPerSec: Spread;
  speedup: Spread;
  invocations: number;
  /** Problems the processors logged over all runs, by event (job_error, job_fenced_out, …). */
  problems: Record<string, number>;
  /** Rounds of jobs: ceil(jobs / (processors × SYNC_MAX_JOBS_PER_RUN)). */
  waves: number;
  /** The wall time neither more processors nor a faster engine can beat. */
  boundMs: number;
}

export interface Figures {
  perPageSize: Record<number, PageSizeFigures>;
  recommendedMaxPagesPerRun: number;
  /** record_sync_page alone against the jsonb ceiling: what the bookkeeping costs. */
  pageStep: { callsPerSec: Spread; ratioToJsonbCeiling: Spread };
  platformHeap: { peakRssMb: Spread; heapTotalMb: Spread };
  latency: {
    pages: number;
    wallMs: Spread;
    ratio: Spread;
    bareWalkMs: Spread;
    ratioToBareWalk: Spread;
  };
  idle: IdleTickResult;
  scaleOut: Record<number, ScaleOutFigures>;
}

export interface BenchReport {
  generatedAt: string;
  durationS: number;
  machine: MachineFacts;
  settings: Settings;
  figures: Figures;
  profile: ProfileSummary & { pages: number };
  raw: Omit<Results, "profile">;
}

export function summarize(r: Results, s: Settings): Figures {
  const perPageSize: Record<number, PageSizeFigures> = {};
  for (const ps of s.pageSizes) {
    const imports = r.imports[ps];
    perPageSize[ps] = {
      ceilingCallsPerSec: spread(r.ceiling[ps].map((c) => c.callsPerSec)),
      jsonbCeilingCallsPerSec: spread(r.jsonbCeiling[ps].map((c) => c.callsPerSec)),
      callsPerSec: spread(imports.map((i) => i.callsPerSec)),
      ratioToCeiling: spread(imports.map((i, k) => i.callsPerSec / r.ceiling[ps][k].callsPerSec)),
      ratioToJsonbCeiling: spread(
        imports.map((i, k) => i.callsPerSec / r.jsonbCeiling[ps][k].callsPerSec),
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
  // Half the allowance at the importer's page size, by the slowest run, rounded down to a
  // multiple of 50: room for a slower CPU, GC pauses and the HTTP handling around the engine.
  const worstCpuMs = perPageSize[s.defaultPageSize].cpuMsPerPage.max;
  const recommendedMaxPagesPerRun = Math.max(
    10,
    Math.floor(s.cpuAllowanceMs / 2 / worstCpuMs / 50) * 50,
  );

  // Scale-out bounds. Each job's pages follow one another: at best one page per latency.
  // Every job here fits one invocation (pages per job × jobs per run ≤ the page budget), so
  // p processors take the jobs in waves of p × SYNC_MAX_JOBS_PER_RUN, and no wave is shorter
  // than one job. All of them together cannot insert faster than the ceiling either.
  const pagesPerJob = Math.ceil(s.scaleCalls / s.defaultPageSize);
  const ceilingRate = perPageSize[s.defaultPageSize].jsonbCeilingCallsPerSec.median;
  const one = r.scaleOut[s.scaleProcessors[0]];
  const scaleOut: Record<number, ScaleOutFigures> = {};
  for (const p of s.scaleProcessors) {
    const waves = Math.ceil(s.scaleAgencies / (p * s.maxJobsPerRun));
    scaleOut[p] = {
      wallMs: spread(r.scaleOut[p].map((x) => x.wallMs)),
      callsPerSec: spread(r.scaleOut[p].map((x) => x.callsPerSec)),
      speedup: spread(r.scaleOut[p].map((x, k) => one[k].wallMs / x.wallMs)),
      invocations: r.scaleOut[p][0].invocations,
      problems: countEvents(r.scaleOut[p].flatMap((x) => x.problems)),
      waves,
      boundMs: Math.max(
        waves * pagesPerJob * s.latencyMs,
        (s.scaleAgencies * s.scaleCalls) / ceilingRate * 1000,
      ),
    };
  }

  return {
    perPageSize,
    recommendedMaxPagesPerRun,
    pageStep: {
      callsPerSec: spread(r.pageStep.map((p) => p.callsPerSec)),
      ratioToJsonbCeiling: spread(
        r.pageStep.map((p, k) => p.callsPerSec / r.jsonbCeiling[s.defaultPageSize][k].callsPerSec),
      ),
    },
    platformHeap: {
      peakRssMb: spread(r.platformHeap.map((i) => i.peakRssMb ?? NaN)),
      heapTotalMb: spread(r.platformHeap.map((i) => i.heapTotalMb)),
    },
    latency: {
      pages: r.latency[0].pages,
      wallMs: spread(r.latency.map((l) => l.wallMs)),
      ratio: spread(r.latency.map((l) => l.wallMs / (l.pages * s.latencyMs))),
      bareWalkMs: spread(r.latency.map((l) => l.bareWalkMs)),
      ratioToBareWalk: spread(r.latency.map((l) => l.wallMs / l.bareWalkMs)),
    },
    idle: r.idle,
    scaleOut,
  };
}

function countEvents(events: Record<string, unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of events) counts[String(e.event)] = (counts[String(e.event)] ?? 0) + 1;
  return counts;
}
