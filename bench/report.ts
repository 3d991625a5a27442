// docs/PERFORMANCE.md's figures: the table between the two marker comments is rewritten from
// one bench run; everything around it is written by hand. Each measurement's module says how
// its runs become figures and rows; this file only puts the rows in order and the table in
// its place.
import { ceilingFigures, ceilingRows, type CeilingRuns } from "./ceiling.ts";
import { dispatchFigures, type DispatchResult, dispatchRows } from "./dispatch_hold.ts";
import {
  endToEndFigures,
  endToEndRows,
  type EndToEndRuns,
  type EndToEndSettings,
} from "./end_to_end.ts";
import { idleRows, type IdleTickResult } from "./idle_tick.ts";
import { latencyFigures, latencyRows, type LatencyRun } from "./latency_bound.ts";
import type { MachineFacts } from "./machine.ts";
import { pageStepFigures, type PageStepResult, pageStepRows } from "./page_step.ts";
import { type ProfileResult, profileRows } from "./profile.ts";
import { scaleOutFigures, type ScaleOutResult, scaleOutRows } from "./scale_out.ts";
import type { Row } from "./stats.ts";
import { throughputFigures, throughputRows, type ThroughputRuns } from "./throughput.ts";

export const FIGURES_START = "<!-- bench:figures:start -->";
export const FIGURES_END = "<!-- bench:figures:end -->";

export interface Settings {
  runs: number;
  throughputCalls: number;
  pageSizes: number[];
  /** SYNC_PAGE_SIZE: the page size the importer uses unless configured otherwise. */
  defaultPageSize: number;
  latencyMs: number;
  latencyCalls: number;
  dispatchCalls: number;
  dispatchesPerRun: number;
  scaleAgencies: number;
  scaleCalls: number;
  scaleProcessors: number[];
  cpuAllowanceMs: number;
  platformHeapMb: number;
  maxPagesPerRun: number;
  maxJobsPerRun: number;
  endToEnd: EndToEndSettings;
}

/** Everything one bench run measured (bench/results.json holds it, with the figures). */
export interface Runs {
  ceiling: CeilingRuns;
  /** The user's path: start over HTTP (or one dispatch) → completed, through serve. */
  endToEnd: EndToEndRuns;
  throughput: ThroughputRuns;
  pageStep: PageStepResult[];
  latency: LatencyRun[];
  dispatch: DispatchResult[];
  idle: IdleTickResult;
  scaleOut: Record<number, ScaleOutResult[]>;
  profile: ProfileResult;
}

export interface BenchReport {
  generatedAt: string;
  durationS: number;
  machine: MachineFacts;
  settings: Settings;
  figures: ReturnType<typeof figures>;
  runs: Runs;
}

/** Medians and spreads of every measurement; ratios run by run. */
export function figures(r: Runs, s: Settings) {
  const ceiling = ceilingFigures(r.ceiling, s.pageSizes);
  return {
    ceiling,
    throughput: throughputFigures(r.throughput, r.ceiling, s),
    pageStep: pageStepFigures(r.pageStep, r.ceiling),
    latency: latencyFigures(r.latency, s.latencyMs),
    dispatch: dispatchFigures(r.dispatch),
    endToEnd: r.endToEnd.zeroLatency.length > 0
      ? endToEndFigures(r.endToEnd, s.endToEnd, {
        values: (r.ceiling.values[s.endToEnd.pageSize] ?? []).map((c) => c.callsPerSec),
        tightest: (r.ceiling.jsonb[s.endToEnd.pageSize] ?? []).map((c) => c.callsPerSec),
      })
      : null,
    scaleOut: s.scaleProcessors.length > 0
      ? scaleOutFigures(r.scaleOut, s, ceiling.jsonb[s.defaultPageSize].median)
      : {},
  };
}

/** The rows of the table, in the order the prose discusses them. */
export function rows(report: BenchReport): Row[] {
  const { settings: s, figures: f, runs: r } = report;
  const t = throughputRows(f.throughput, s);
  return [
    ...ceilingRows(f.ceiling, s.pageSizes),
    ...pageStepRows(f.pageStep),
    ...t.throughput,
    ...(f.endToEnd ? endToEndRows(f.endToEnd, s.endToEnd) : []),
    ...latencyRows(f.latency, s),
    t.statements,
    ...t.cpu,
    ...profileRows(r.profile),
    ...idleRows(r.idle),
    ...dispatchRows(f.dispatch, s),
    ...t.memory,
    ...(s.scaleProcessors.length > 0 ? scaleOutRows(f.scaleOut, s) : []),
  ];
}

/** A table cell: pipes escaped (GFM), no line breaks. */
const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** The text between the markers: one line saying which run it is, then the table. */
export function renderFigures(report: BenchReport): string {
  const m = report.machine;
  const s = report.settings;
  const pg = Object.entries(m.postgresSettings).map(([k, v]) => `\`${k}\` = ${v}`).join(", ");
  const caption = `Measured by \`deno task bench\` on ${report.generatedAt.slice(0, 10)} in ` +
    `${report.durationS} s, ${s.runs} run(s) per figure: the median, with the spread ` +
    `(min–max) in brackets. ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB RAM, ${m.os}; ` +
    `Deno ${m.deno} (V8 ${m.v8}); ${m.postgres} (${pg}).`;
  const verdict = (row: Row) => row.met === undefined ? "" : row.met ? "✅ met" : "❌ missed";
  return [
    caption,
    "",
    "| Figure | Target | Result | |",
    "|---|---|---|---|",
    ...rows(report).map((row) =>
      `| ${[row.figure, row.target, row.result, verdict(row)].map(cell).join(" | ")} |`
    ),
  ].join("\n");
}

/** `markdown` with the text between the markers replaced by `figures`; throws without them. */
export function fillFigures(markdown: string, figures: string): string {
  const start = markdown.indexOf(FIGURES_START);
  const end = markdown.indexOf(FIGURES_END);
  if (start < 0 || end < start) {
    throw new Error(`docs/PERFORMANCE.md lacks the markers ${FIGURES_START} … ${FIGURES_END}`);
  }
  return markdown.slice(0, start + FIGURES_START.length) + "\n" + figures + "\n" +
    markdown.slice(end);
}
