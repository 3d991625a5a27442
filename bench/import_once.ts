// One import in a process of its own, so its CPU and peak memory are the processor's alone.
//
//   deno run -A bench/import_once.ts '<ImportOptions as JSON>'
//
// prints one JSON line: the ImportResult plus `peakRssMb` (VmHWM from /proc/self/status).
import { benchSql } from "./database.ts";
import { type ImportOptions, type ImportResult, measureImport } from "./import_run.ts";

export type ImportOnceResult = ImportResult & {
  /** VmRSS before the import (runtime, modules, an open connection). */
  startRssMb: number | null;
  /** VmHWM at the end: the peak. */
  peakRssMb: number | null;
  /** V8's heap at the end: what it has reserved, and what is in use (before any GC). */
  heapTotalMb: number;
  heapUsedMb: number;
};

/** A `kB` line of /proc/self/status in MiB (VmHWM: the peak RSS), null where there is none. */
export function procStatusMb(field: "VmHWM" | "VmRSS"): number | null {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
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

/** Runs bench/import_once.ts as a subprocess and returns what it measured. */
export async function importInSubprocess(
  opts: ImportOptions,
  sub: SubprocessOptions = {},
): Promise<ImportOnceResult> {
  const flags = [
    ...(sub.v8Flags?.length ? [`--v8-flags=${sub.v8Flags.join(",")}`] : []),
    ...(sub.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${sub.cpuProfileDir}`] : []),
  ];
  const script = new URL("./import_once.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...flags, script, JSON.stringify(opts)],
    cwd: new URL("../", import.meta.url).pathname, // the project's deno.json
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (out.code !== 0) throw new Error(`import_once.ts failed (${out.code}): ${text}`);
  return JSON.parse(text.split("\n").at(-1)!) as ImportOnceResult;
}

if (import.meta.main) {
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
