// Case 5 — database faults. Postgres is restarted (pg_ctlcluster … restart, fast shutdown:
// every connection is cut) in the middle of a walk. The processor errors cleanly (its
// promise settles, nothing unhandled), the page in flight either committed whole or not at
// all, and the next invocation, once the lease allows, finishes the job exactly.
//
// The restart cuts everyone's connections for a few seconds, so this is one short test, and
// it makes sure the cluster is accepting connections again before it ends.
import assert from "node:assert/strict";
import { processHistoricalSync } from "../../supabase/functions/_shared/sync/processor.ts";
import { TestDb } from "../support/db.ts";
import { startFakeUltravox } from "../../tools/stand_in_ultravox/server.ts";
import {
  checkJob,
  createJob,
  dbSql,
  delay,
  freshAccount,
  loadJob,
  noSleep,
  pauseCron,
  runUntilDone,
  syncConfig,
  TEST_DB_URL,
  waitFor,
  waitForLeaseExpiry,
} from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

const CLUSTER = ["15", "supabase"];
const CALLS = 60;
const PAGE = 5;

async function command(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stderr) };
}

async function accepting(): Promise<boolean> {
  const url = new URL(TEST_DB_URL);
  const r = await command("pg_isready", ["-h", url.hostname, "-p", url.port || "5432"]);
  return r.code === 0;
}

async function waitUntilAccepting(timeoutMs = 60_000) {
  await waitFor("Postgres to accept connections", accepting, { timeoutMs, intervalMs: 100 });
}

Deno.test("a Postgres restart mid-walk: the processor errors cleanly and the next invocation finishes exactly", async () => {
  const started = performance.now();
  const db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  const calls = freshAccount(CALLS);
  const fake = await startFakeUltravox({ calls, latencyMs: 100 });
  const procSql = dbSql(3);
  try {
    const agency = await db.createAgency({ ultravoxKey: fake.apiKey! });
    const jobId = await createJob(db.sql, agency.id);
    const config = syncConfig(fake.baseUrl, { SYNC_PAGE_SIZE: PAGE, SYNC_LEASE_SECONDS: 2 });
    const events: Record<string, unknown>[] = [];
    const run = processHistoricalSync(
      { sql: procSql, config, sleep: noSleep, log: (e) => void events.push(e) },
      { jobId },
    ).then((summary) => ({ summary, error: null }), (error) => ({ summary: null, error }));
    await waitFor(
      "page 2 committed",
      async () => (await loadJob(db.sql, jobId)).processed_calls >= 2 * PAGE,
    );

    const restartAt = performance.now();
    const restart = await command("pg_ctlcluster", [
      "--skip-systemctl-redirect",
      ...CLUSTER,
      "restart",
    ]);
    assert.equal(restart.code, 0, restart.text);
    await waitUntilAccepting();
    const downMs = Math.round(performance.now() - restartAt);

    const outcome = await run;
    await delay(50);
    const afterRestart = await loadJob(db.sql, jobId);
    const rowsAfterRestart = (await db.sql<{ n: number }[]>`
      select count(*)::int as n from public.calls where historical_sync_job_id = ${jobId}::uuid`)[0]
      .n;
    await waitForLeaseExpiry(db.sql, jobId);
    fake.latencyMs = 0;
    const recovery = await runUntilDone({ sql: procSql, config, sleep: noSleep }, jobId);

    const pagesBefore = afterRestart.processed_calls / PAGE;
    const check = await checkJob(db.sql, jobId, {
      seen: calls,
      total: CALLS,
      pages: CALLS / PAGE,
      pagesRecorded: pagesBefore + recovery.pages,
    });
    if (rowsAfterRestart !== afterRestart.imported_calls) {
      check.mismatches.push(
        `after the restart: ${rowsAfterRestart} rows, imported ${afterRestart.imported_calls}`,
      );
    }
    if (outcome.error) check.mismatches.push(`the processor rejected: ${outcome.error}`);
    await recordFigures({
      suite: "database",
      test: "Postgres restarted mid-walk (pg_ctlcluster restart)",
      cases: 1,
      faults: 1,
      calls_expected: CALLS,
      calls_lost: check.lost,
      calls_duplicated: check.duplicated,
      counter_mismatches: check.mismatches.length,
      notes: {
        restart_to_accepting_ms: downMs,
        processor_outcome: outcome.error ? "rejected" : outcome.summary?.jobs[0]?.status,
        processor_error_events: events.filter((e) => e.event === "job_error").length,
        pages_committed_before_recovery: pagesBefore,
        recovery_invocations: recovery.invocations,
        recovery_pages: recovery.pages,
      },
    }, started);

    assert.equal(outcome.error, null, "the processor settles, it does not throw");
    assert.equal(outcome.summary?.jobs[0]?.status, "in_progress");
    assert.ok(pagesBefore >= 2 && pagesBefore < CALLS / PAGE, `stopped mid-walk (${pagesBefore})`);
    assert.equal(rowsAfterRestart, afterRestart.imported_calls);
    assert.equal(check.lost, 0);
    assert.equal(check.duplicated, 0);
    assert.deepEqual(check.mismatches, []);
  } finally {
    if (!await accepting()) {
      await command("pg_ctlcluster", ["--skip-systemctl-redirect", ...CLUSTER, "start"]);
      await waitUntilAccepting();
    }
    await procSql.end();
    await restoreCron();
    await fake.close();
    await db.close();
  }
});
