// Regenerates docs/RELIABILITY.md from the fault suite's figures (the latest line of each
// test in tests/reliability/.results/results.jsonl).
//
//   rm -rf tests/reliability/.results
//   deno test -A tests/reliability/
//   deno run -A tests/reliability/report.ts
//
// Exits 1 when a figure that must be 0 (lost, duplicated, mismatched) is not, or when there
// are no figures at all.
import {
  type FigureLine,
  readFigures,
  RESULTS_PATH,
  type Suite,
  SUITES,
} from "./support/results.ts";

const DOC = new URL("../../docs/RELIABILITY.md", import.meta.url).pathname;
/** report.ts rewrites the page above this line and keeps everything from it on. */
export const HAND_WRITTEN = "<!-- written by hand: report.ts keeps everything below -->";

const METHOD: Record<Suite, string> = {
  crash:
    "The processor runs in a child process (`support/processor_child.ts`, configured from the environment like the edge function) and is SIGKILLed: while page 3 is in flight; after page 3 was fetched, with its page step held at the fence by a lock the test holds on the job row (the backend is then terminated); after the upsert and before the commit, held by a lock on the lease row, once with the backend terminated (rolled back) and once with the lock released so Postgres completes the orphaned statement (it commits); and right after a commit. Every kill point checks that a claim a millisecond before the lease expires takes nothing, waits for the 2 s lease, lets the next invocation finish, and compares the page steps recorded before and after with the walk. Sliced walks (`sliced_walks.test.ts`, 8 slices, pages of 5): a child walking every slice is SIGKILLed mid-walk and fresh invocations finish after the leases; a child walking slice 1 is SIGKILLed right after other walkers split it; a worker that died an hour earlier holding every slice leaves them to a finisher, which must resume each at its cursor. Each checks that the slices still tile the job's range to the microsecond and hold exactly the newest calls they counted.",
  concurrency:
    "Ten in-process processors (one connection pool each) and two child processes race over six jobs of six agencies (accounts of 40-70 calls, two of them sharing 15 calls, one job capped at 35) with `SYNC_MAX_PAGES_PER_RUN = 2` and a 1 s lease, so jobs change hands constantly; both children are frozen with SIGSTOP past their lease and thawed after the others took their jobs over. A second test freezes a lone worker after page 2, lets another finish the job, then thaws it: its next page step must be refused by the fence. The sum of successful page steps over every invocation must equal the pages of the walks.",
  cancel:
    "`cancel_sync_job` is called while `processHistoricalSync` walks a 40-call account in pages of 5, aimed at request k of the walk (k = 0…8) plus a few ms, 30 times; calls of the job are counted right after the cancel returns and again after the processor has stopped. Two more tests queue a page step and a cancel behind a lock the test holds on the job row, in both orders. A sliced walk is cancelled once all 8 slices have a request in flight (400 ms each): the calls are counted when the cancel returns and after both invocations end.",
  source:
    "The stand-in (`tests/support/fake_ultravox.ts`) answers with queued faults; `sleep` is injected and records every wait. A key revoked mid-walk uses `fake.setKey(null)` at the third request. The bounded-attempts case sets `SYNC_MAX_ATTEMPTS = 3` and fails every request after page 1. One account carries call objects holding text Postgres cannot store (U+0000, a lone surrogate), valid for the schema or not, in a value, a key or the callId a failure echoes back: they must be counted as failed calls while the rest of the walk imports. A sliced walk gets 429 with `Retry-After: 30` for every request in one slice's range (a fault rule by range), five rounds: that slice alone is released with `not_before`, no attempt counted, while the others finish.",
  database:
    "`pg_ctlcluster --skip-systemctl-redirect 15 supabase restart` (fast shutdown: every connection is cut) runs once page 2 is committed, while the processor is walking with 100 ms per request; the test waits for `pg_isready`, checks that the processor's promise settled without throwing, then lets the next invocation finish after the lease.",
  stale:
    "Time is pinned through `p_now`: a job leased at t0 for 60 s is claimed by nobody at t0+59 s or t0+60 s (also not by an unscoped claim, run in a rolled-back transaction) and by the next worker at t0+61 s; the dead holder's page step, renewal, release, error and failure then all change nothing. `dispatch_historical_sync(t)` runs in a rolled-back transaction over rows started 9m59s, 10m00s, 10m01s and 2h before t.",
  input:
    "The four functions' `makeHandler(deps)` are called directly with requests built by `tests/support/requests.ts` and tokens from `tests/support/tokens.ts`; the processor's `process` and the start's `kick` are recorders that must stay unused. Before and after, row counts and md5 checksums are taken of every jobs, leases, calls, members, agencies and Vault-key row of the test's four agencies and of its cron_job_logs row.",
  tenancy:
    "Each probe runs in its own transaction on a direct connection with `set local role authenticated|anon` and `request.jwt.claims`, as PostgREST applies RLS, and is rolled back; a member and an admin of agency A probe agency B and the backend-only objects, anon probes everything. The catalogue is checked too: no `public` function but `has_agency_role` executable by `anon`/`authenticated`, RLS on every table, no write policy.",
};

const NOT_COVERED = [
  "The hosted edge runtime's own limits (150 s of wall clock, about 2 s of CPU): an invocation killed by the platform is the SIGKILL of case 1, but no test runs under the real runtime. A page's retries are bounded by attempts and the lease, not by the invocation's remaining `SYNC_TIME_BUDGET_MS`.",
  "PostgREST, Realtime and the real pg_net: RLS is probed through the same role switch PostgREST performs; the dispatcher's HTTP call is covered by the integration tests, not here.",
  "A source whose `next` cycles across invocations: the paging guards (a visited cursor, a page newer than the one before) hold within one invocation's walk.",
];

function latestPerTest(lines: FigureLine[]): FigureLine[] {
  const latest = new Map<string, FigureLine>();
  for (const line of lines) {
    const key = `${line.suite}\u0000${line.test}`;
    const seen = latest.get(key);
    if (!seen || seen.at <= line.at) latest.set(key, line);
  }
  return [...latest.values()];
}

function noteText(notes: Record<string, unknown> | undefined): string {
  if (!notes) return "";
  return Object.entries(notes)
    .filter(([, v]) => !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k.replaceAll("_", " ")}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join("; ")
    .replaceAll("|", "\\|");
}

interface Totals {
  tests: number;
  cases: number;
  faults: number;
  expected: number;
  lost: number;
  duplicated: number;
  mismatches: number;
  ms: number;
}

function total(lines: FigureLine[]): Totals {
  return lines.reduce((t, l) => ({
    tests: t.tests + 1,
    cases: t.cases + l.cases,
    faults: t.faults + l.faults,
    expected: t.expected + l.calls_expected,
    lost: t.lost + l.calls_lost,
    duplicated: t.duplicated + l.calls_duplicated,
    mismatches: t.mismatches + l.counter_mismatches,
    ms: t.ms + l.duration_ms,
  }), { tests: 0, cases: 0, faults: 0, expected: 0, lost: 0, duplicated: 0, mismatches: 0, ms: 0 });
}

export function render(lines: FigureLine[]): string {
  const latest = latestPerTest(lines);
  const all = total(latest);
  const first = latest.map((l) => l.at).sort()[0] ?? "";
  const last = latest.map((l) => l.at).sort().at(-1) ?? "";
  const out: string[] = [];
  out.push("# Reliability and security: the fault suite");
  out.push("");
  out.push(
    "Generated by `tests/reliability/report.ts` from the figures the suite in `tests/reliability/` records. Do not edit by hand: rerun the suite and the report.",
  );
  out.push("");
  out.push(`Last run: ${first.slice(0, 19).replace("T", " ")} – ${last.slice(11, 19)} UTC.`);
  out.push("");
  out.push("## Summary");
  out.push("");
  out.push("| | |");
  out.push("|---|---:|");
  out.push(`| tests | ${all.tests} |`);
  out.push(`| cases tried | ${all.cases} |`);
  out.push(`| faults injected | ${all.faults} |`);
  out.push(`| calls that had to be imported | ${all.expected} |`);
  out.push(`| **calls lost** | **${all.lost}** |`);
  out.push(`| **calls duplicated** | **${all.duplicated}** |`);
  out.push(`| **counter mismatches** | **${all.mismatches}** |`);
  out.push(`| time (sum of the tests) | ${(all.ms / 1000).toFixed(1)} s |`);
  out.push("");
  out.push(
    "*Lost*: an expected call missing from `calls`. *Duplicated*: two rows for one `ultravox_call_id` (the unique constraint forbids it), or a call counted more often than the walk holds it (a page recorded twice). *Counter mismatches*: any broken invariant: `processed_calls ≠ imported + skipped + failed`, a counter that disagrees with the rows, page steps recorded ≠ pages of the walk, a call landing after a cancel returned, a row changed by a refused request, a read or write that RLS or the grants should have refused, an HTTP answer other than the documented status and code, a wait longer than the lease, a wrong job status or error message.",
  );
  out.push("");
  out.push("| case | tests | cases | faults | calls expected | lost | duplicated | mismatches |");
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const [suite, title] of Object.entries(SUITES) as [Suite, string][]) {
    const t = total(latest.filter((l) => l.suite === suite));
    if (t.tests === 0) {
      out.push(`| ${title} | – | not run | | | | | |`);
      continue;
    }
    out.push(
      `| ${title} | ${t.tests} | ${t.cases} | ${t.faults} | ${t.expected} | ${t.lost} | ${t.duplicated} | ${t.mismatches} |`,
    );
  }
  out.push("");
  const dirty = latest.filter((l) => l.calls_lost + l.calls_duplicated + l.counter_mismatches > 0);
  if (dirty.length > 0) {
    out.push(`**Not clean**: ${dirty.length} test(s) have non-zero figures:`);
    out.push("");
    for (const l of dirty) {
      out.push(
        `- ${
          SUITES[l.suite]
        }: ${l.test} (lost ${l.calls_lost}, duplicated ${l.calls_duplicated}, mismatches ${l.counter_mismatches})`,
      );
    }
    out.push("");
  }
  out.push("## Reproduce");
  out.push("");
  out.push("```sh");
  out.push(
    "deno task db:start            # the local cluster (docs/ARCHITECTURE.md §8), if it is not running",
  );
  out.push("rm -rf tests/reliability/.results");
  out.push("deno test -A tests/reliability/");
  out.push("deno run -A tests/reliability/report.ts   # rewrites this file");
  out.push("```");
  out.push("");
  out.push(
    "`deno task test` runs the same suite with every other test (it writes the figures too; run the report afterwards). Each test appends one JSON line to `tests/reliability/.results/results.jsonl` (gitignored; `RELIABILITY_RESULTS` moves it) before it asserts, so a failing run is on record as well; the report takes the latest line of each test. The tests pause the `process-historical-sync` cron schedule while they run and put it back, work only on agencies they create and delete, and assert only on their own ids. The database restart test cuts every connection to the local cluster for about 2-3 seconds.",
  );
  out.push("");
  for (const [suite, title] of Object.entries(SUITES) as [Suite, string][]) {
    const rows = latest.filter((l) => l.suite === suite).sort((a, b) => a.at.localeCompare(b.at));
    out.push(`## ${title}`);
    out.push("");
    out.push(METHOD[suite]);
    out.push("");
    if (rows.length === 0) {
      out.push("Not run.");
      out.push("");
      continue;
    }
    out.push("| test | cases | faults | calls | lost | dup. | mism. | ms | notes |");
    out.push("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for (const r of rows) {
      out.push(
        `| ${
          r.test.replaceAll("|", "\\|")
        } | ${r.cases} | ${r.faults} | ${r.calls_expected} | ${r.calls_lost} | ${r.calls_duplicated} | ${r.counter_mismatches} | ${r.duration_ms} | ${
          noteText(r.notes)
        } |`,
      );
    }
    out.push("");
  }
  out.push("## Not covered");
  out.push("");
  for (const line of NOT_COVERED) out.push(`- ${line}`);
  out.push("");
  return out.join("\n");
}

if (import.meta.main) {
  const lines = await readFigures();
  if (lines.length === 0) {
    console.error(`No figures in ${RESULTS_PATH}: run deno test -A tests/reliability/ first.`);
    Deno.exit(1);
  }
  // What is written by hand below the marker (findings, fuzzing) is kept as it is.
  const current = await Deno.readTextFile(DOC).catch(() => "");
  const at = current.indexOf(HAND_WRITTEN);
  const kept = at === -1 ? "" : `\n${current.slice(at)}`;
  await Deno.writeTextFile(DOC, render(lines) + kept);
  const t = total(latestPerTest(lines));
  console.log(
    `${DOC}: ${t.tests} tests, ${t.cases} cases, ${t.faults} faults, ` +
      `lost ${t.lost}, duplicated ${t.duplicated}, mismatches ${t.mismatches}`,
  );
  if (t.lost + t.duplicated + t.mismatches > 0) Deno.exit(1);
}
