// Where the processor's CPU goes: a V8 CPU profile of one import (bench/throughput.ts under
// deno run --cpu-prof), each sample charged to the first category its call stack matches.
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { deleteAgencies } from "./database.ts";
import { num, type Row } from "./stats.ts";
import { assertComplete, importInSubprocess, type ImportOptions } from "./throughput.ts";

export interface ProfileCategory {
  name: string;
  ms: number;
}

export interface ProfileSummary {
  /** Sampled wall time of the profile. */
  totalMs: number;
  /** Samples in which the thread waited (for Postgres, for Ultravox). */
  idleMs: number;
  categories: ProfileCategory[];
  /** The busiest functions by self time, idle excluded. */
  topFunctions: ProfileCategory[];
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** In order: a sample goes to the first category one of its frames matches. */
const CATEGORIES: { name: string; match: (f: CallFrame) => boolean }[] = [
  { name: "garbage collection", match: (f) => f.functionName === "(garbage collector)" },
  {
    name: "SQL client (postgres.js: building and writing the statement, reading the result)",
    match: (f) => f.url.includes("/postgres/"),
  },
  { name: "JSON.parse of the pages", match: (f) => f.functionName === "parsePage" },
  {
    name: "validation, mapping and the page's JSON (call.ts, mapPage)",
    match: (f) => f.url.includes("ultravox/call.ts") || f.functionName === "mapPage",
  },
  {
    name: "HTTP client (fetch)",
    match: (f) => /deno_fetch|deno_http|op_fetch/.test(f.url + f.functionName),
  },
];

export function summarizeProfile(profile: CpuProfile, top = 12): ProfileSummary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0))
  );

  let totalUs = 0;
  let idleUs = 0;
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of selfUs) {
    totalUs += us;
    const frame = nodes.get(id)!.callFrame;
    if (frame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const stack: CallFrame[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      stack.push(nodes.get(cur)!.callFrame);
    }
    const category = CATEGORIES.find((c) => stack.some(c.match))?.name ??
      "other (runtime, timers, streams, the job loop)";
    byCategory.set(category, (byCategory.get(category) ?? 0) + us);
    const where = frame.url
      ? ` (${frame.url.split("/").slice(-2).join("/")}:${frame.lineNumber + 1})`
      : "";
    const fn = `${frame.functionName || "(anonymous)"}${where}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const sorted = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ name, ms: us / 1000 }));
  return {
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    categories: sorted(byCategory),
    topFunctions: sorted(byFunction).slice(0, top),
  };
}

/** Reads the one .cpuprofile in `dir`. */
async function readProfile(dir: string): Promise<CpuProfile> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".cpuprofile")) {
      return JSON.parse(await Deno.readTextFile(`${dir}/${entry.name}`)) as CpuProfile;
    }
  }
  throw new Error(`no .cpuprofile in ${dir}`);
}

export type ProfileResult = ProfileSummary & { pages: number; calls: number };

/** One import of the account (`calls` calls) under the profiler, summarized. */
export async function measureProfile(
  sql: Sql,
  opts: ImportOptions & { calls: number },
): Promise<ProfileResult> {
  const { calls, ...importOpts } = opts;
  const dir = await Deno.makeTempDir({ prefix: "bench-profile-" });
  try {
    const r = await importInSubprocess(importOpts, { cpuProfileDir: dir });
    await deleteAgencies(sql, [r.agencyId]);
    assertComplete(r, calls);
    return { pages: r.pages, calls, ...summarizeProfile(await readProfile(dir)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export function profileRows(p: ProfileResult, topFunctions = 6): Row[] {
  const busy = p.totalMs - p.idleMs;
  const perPage = (ms: number) => `${(ms / p.pages).toFixed(2)} ms`;
  const share = (ms: number) => `${(100 * ms / busy).toFixed(0)} %`;
  const lines = p.categories.map((c) => `${c.name}: ${perPage(c.ms)} per page (${share(c.ms)})`);
  const top = p.topFunctions.slice(0, topFunctions)
    .map((t) => `\`${t.name}\` ${num(t.ms)} ms`).join(", ");
  return [{
    figure: `Where the processor's CPU went: V8 profile of one ${num(p.calls)}-call import ` +
      `(${p.pages} pages), by category`,
    target: "—",
    result: `busy **${num(busy)} ms** of ${num(p.totalMs)} ms (${perPage(busy)} per page), ` +
      `the rest waiting for Postgres and the stand-in:<br>${lines.join("<br>")}<br>` +
      `busiest functions by self time: ${top}`,
  }];
}
