// A processor in a process of its own, so a fault test can SIGKILL it mid-page.
//
//   deno run -A tests/reliability/support/processor_child.ts [--loop] <job-id>...
//
// Configured from the environment like the edge function (loadConfig: SUPABASE_DB_URL,
// ULTRAVOX_API_BASE, SYNC_*). Prints one JSON object per line on stdout:
//   {"event":"ready"}                      connected, about to run
//   {"event":"log", ...}                   the processor's own log events
//   {"event":"run", "jobs":[…], "duration_ms":…}   one processHistoricalSync summary
//   {"event":"done"}
// Without --loop it runs processHistoricalSync once per job id; with --loop it keeps
// invoking it for a random unfinished job of the list until every one has finished.
import { databaseUrl, loadConfig } from "../../../supabase/functions/_shared/platform/config.ts";
import { connect } from "../../../supabase/functions/_shared/platform/db.ts";
import { processHistoricalSync } from "../../../supabase/functions/_shared/sync/processor.ts";

const loop = Deno.args.includes("--loop");
const jobIds = Deno.args.filter((a) => a !== "--loop");
const config = loadConfig();
const sql = connect(databaseUrl(config), { max: 3 });
const emit = (event: Record<string, unknown>) => console.log(JSON.stringify(event));
const log = (event: Record<string, unknown>) => emit({ ...event, event: "log", kind: event.event });

async function runOnce(jobId: string) {
  const run = await processHistoricalSync({ sql, config, log }, { jobId });
  emit({ event: "run", job_id: jobId, ...run });
  return run;
}

try {
  await sql`select 1`;
  emit({ event: "ready", pid: Deno.pid });
  if (!loop) {
    for (const jobId of jobIds) await runOnce(jobId);
  } else {
    const open = new Set(jobIds);
    while (open.size > 0) {
      const ids = [...open];
      const jobId = ids[Math.floor(Math.random() * ids.length)];
      const run = await runOnce(jobId);
      const status = run.jobs[0]?.status ?? (await sql<{ status: string }[]>`
        select status from public.historical_sync_jobs where id = ${jobId}::uuid`)[0]?.status;
      if (status !== "pending" && status !== "in_progress") open.delete(jobId);
      else if (run.jobs.length === 0) await new Promise((r) => setTimeout(r, 3));
    }
  }
  emit({ event: "done" });
} finally {
  await sql.end({ timeout: 1 });
}
