// The figures of the fault suite: every test appends one JSON line to
// tests/reliability/.results/results.jsonl (gitignored; RELIABILITY_RESULTS overrides the
// path), and tests/reliability/report.ts turns the latest line of each test into
// docs/RELIABILITY.md.

export const RESULTS_PATH = Deno.env.get("RELIABILITY_RESULTS") ||
  new URL("../.results/results.jsonl", import.meta.url).pathname;

/** The eight cases of the issue, in the order the report lists them. */
export const SUITES = {
  crash: "1. Crash mid-page (SIGKILL)",
  concurrency: "2. Concurrent workers",
  cancel: "3. Cancel races",
  source: "4. Source faults",
  database: "5. Database restart",
  stale: "6. Stale work",
  input: "7. Bad input and auth matrix",
  tenancy: "8. Tenant isolation in the database",
} as const;

export type Suite = keyof typeof SUITES;

export interface Figures {
  suite: Suite;
  /** The Deno.test name. */
  test: string;
  /** Scenarios (kill points, iterations, requests, checks) the test tried. */
  cases: number;
  /** Faults injected: kills, failed responses, cancels, restarts, bad requests, attacks. */
  faults: number;
  /** Calls that should have been imported (0 where the test imports nothing). */
  calls_expected: number;
  /** Expected calls missing from `calls` at the end. */
  calls_lost: number;
  /** Rows sharing an ultravox_call_id, plus calls counted more often than they exist. */
  calls_duplicated: number;
  /**
   * Broken invariants: processed ≠ imported + skipped + failed, a counter that disagrees with
   * the rows, a page recorded twice, a call landing after a cancel returned, a database row
   * changed by a refused request, a read or write RLS should have refused.
   */
  counter_mismatches: number;
  /** Whatever else the test wants on the record (kept short). */
  notes?: Record<string, unknown>;
}

export interface FigureLine extends Figures {
  at: string;
  duration_ms: number;
}

/** Appends the test's figures; call it before asserting, so a failing run is on record too. */
export async function recordFigures(figures: Figures, startedAt: number): Promise<void> {
  const line: FigureLine = {
    ...figures,
    at: new Date().toISOString(),
    duration_ms: Math.round(performance.now() - startedAt),
  };
  const dir = RESULTS_PATH.slice(0, RESULTS_PATH.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(RESULTS_PATH, JSON.stringify(line) + "\n", { append: true });
}

/** Every line of the results file, oldest first; [] when there is none yet. */
export async function readFigures(path = RESULTS_PATH): Promise<FigureLine[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}
