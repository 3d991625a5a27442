// deno task demo — the whole system, end to end, on this machine:
// local Postgres (installed if missing) → stand-in Ultravox with a realistic account →
// the four functions and the pg_net worker (so the real pg_cron schedule is live) →
// a historical sync started over HTTP as the demo agency's admin → live progress →
// the account changes (new calls, one billed, one deleted) and a catch-up keeps up →
// the cron command run as pg_cron runs it → the cron_job_logs rows of the run, and the curl
// commands to do it by hand.
//
// Environment: DEMO_CALLS (account size, default 5000); ULTRAVOX_API_KEY (import from the
// real Ultravox, at ULTRAVOX_API_BASE, instead of the stand-in); CI=true or a non-terminal
// stdout makes it non-interactive (plain progress lines; stdin is never read).
import { connect, type Sql } from "../supabase/functions/_shared/platform/db.ts";
import devKeys from "../supabase/dev-keys.json" with { type: "json" };
import { type FakeUltravox, startFakeUltravox } from "../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../tools/stand_in_ultravox/accounts.ts";
import { dbStart } from "./db/start.ts";
import { dbReset } from "./db/reset.ts";
import { dbUrl } from "./db/local_cluster.ts";
import { userToken } from "../tools/dev_tokens.ts";
import { devEnv } from "../tools/dev_env.ts";
import { type JobView, progressPrinter } from "./demo/progress.ts";

// The seed's demo agency and its admin (supabase/seed.sql).
const AGENCY_ID = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const ADMIN_ID = "22222222-2222-4222-8222-222222222222";
const ADMIN_EMAIL = "admin@demo.agency";
/** Invalid call objects the stand-in mixes into the first page, as real data sometimes has. */
export const DEMO_INVALID_CALLS = 5;
/** Share of the account already in `calls` (e.g. received live), so the import skips them. */
export const DEMO_PRESENT_SHARE = 0.06;
const POLL_MS = 200;
const DEADLINE_MS = 15 * 60_000;
/** Calls the stand-in account gains after the backfill, for the catch-up to import. */
export const DEMO_NEW_CALLS = 25;

const SUPABASE_URL = Deno.env.get("SUPABASE_URL") || "http://127.0.0.1:54321";
const FUNCTIONS = `${SUPABASE_URL.replace(/\/$/, "")}/functions/v1`;
const interactive = Deno.stdout.isTerminal() && Deno.env.get("CI") !== "true";
const encoder = new TextEncoder();
const write = (s: string) => Deno.stdout.writeSync(encoder.encode(s));
const say = (s: string) => write(`${s}\n`);

const cleanups: (() => Promise<void> | void)[] = [];
async function cleanUp() {
  while (cleanups.length) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      console.error(`cleanup: ${e instanceof Error ? e.message : e}`);
    }
  }
}

function demoCalls(): number {
  const raw = Deno.env.get("DEMO_CALLS") ?? "5000";
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw new Error(`DEMO_CALLS must be an integer from 1 to 1,000,000 (got "${raw}")`);
  }
  return n;
}

async function startStandIn(sql: Sql, count: number): Promise<FakeUltravox> {
  const end = new Date(Date.now() - 3600_000).toISOString();
  const calls = generateAccount({ seed: 20261129, count, days: 90, end });
  const fake = await startFakeUltravox({ calls });
  cleanups.push(() => fake.close());
  // Listed among the newest calls (so in the first page), and counted in `total` as Ultravox
  // counts every listed object.
  fake.addInvalidCalls(DEMO_INVALID_CALLS, { amongNewest: 50 });

  // The oldest calls are already in `calls`, as if they had been received live.
  const present = calls.slice(calls.length - Math.round(count * DEMO_PRESENT_SHARE));
  for (let i = 0; i < present.length; i += 500) {
    const chunk = present.slice(i, i + 500).map((c) => ({
      id: c.callId,
      created: c.created,
      raw: c,
    }));
    await sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
      select ${AGENCY_ID}, r.id, r.created, r.raw, 'webhook'
        from jsonb_to_recordset(${
      sql.json(chunk as never)
    }) as r(id uuid, created timestamptz, raw jsonb)`;
  }
  say(
    `      ${count.toLocaleString("en-US")} calls over 90 days at ${fake.baseUrl}; ` +
      `${present.length} already in calls; ${DEMO_INVALID_CALLS} invalid objects in the first page`,
  );
  return fake;
}

async function startFunctions(env: Record<string, string>): Promise<string> {
  const logFile = await Deno.makeTempFile({ prefix: "virsyn-demo-serve-", suffix: ".log" });
  const log = await Deno.open(logFile, { write: true });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./serve.ts", import.meta.url).pathname],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  cleanups.push(async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  });
  child.stderr.pipeTo(log.writable).catch(() => {});

  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = Date.now() + 60_000;
  while (!seen.includes("Serving functions at")) {
    const { value, done } = await Promise.race([
      reader.read(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error("serve did not start within 60 s")),
          deadline - Date.now(),
        )
      ),
    ]);
    if (done) throw new Error(`serve exited before it was ready; see ${logFile}`);
    seen += value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done) { /* discard */ }
  })().catch(() => {});
  say(`      ${seen.trim()} (server log: ${logFile})`);
  return logFile;
}

async function cronLogsSince(sql: Sql, since: Date) {
  return await sql`
    select job_name, status, started_at, completed_at, result, error_message
      from public.cron_job_logs where started_at >= ${since.toISOString()}
     order by started_at`;
}

/**
 * Runs the dispatcher's stored cron command once, exactly as pg_cron would at the next
 * minute (the schedule stays live meanwhile), instead of waiting for that minute.
 */
async function runCronCommandNow(sql: Sql) {
  const [{ command }] = await sql<{ command: string }[]>`
    select command from cron.job where jobname = 'process-historical-sync'`;
  say(`
Running the stored cron command now, as pg_cron runs it every minute: ${command}`);
  await sql.unsafe(command);
}

/** Ultravox moves on after the backfill: new calls, one call billed later, one deleted. */
function accountMovesOn(fake: FakeUltravox) {
  // The two newest calls of the backfill: inside the catch-up's window (the overlap).
  const [newest, secondNewest] = fake.calls;
  const now = Date.now();
  const fresh = generateAccount({
    seed: 20261201,
    count: DEMO_NEW_CALLS,
    days: 1,
    end: new Date(now - 60_000).toISOString(),
  });
  fake.addCalls(fresh);
  const billed = fake.updateCall(newest.callId, {
    billingStatus: "BILLING_STATUS_BILLED",
    summary: `${newest.summary ?? ""} (summary completed after the call was billed)`.trim(),
  });
  const deleted = fake.deleteCall(secondNewest.callId);
  say(
    `      the account gained ${DEMO_NEW_CALLS} calls; call ${billed.callId} was billed and ` +
      `summarised; call ${deleted.callId} was deleted`,
  );
}

async function call(path: string, token: string, init: RequestInit = {}) {
  const res = await fetch(`${FUNCTIONS}/${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${token}`,
      apikey: devKeys.publishable_key,
      "content-type": "application/json",
    },
  });
  const body = await res.json();
  if (!res.ok) {
    throw new Error(`${path} answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body;
}

function curlWalkthrough(jobId: string) {
  const base = FUNCTIONS;
  return [
    'Do the same by hand (README, "Try it by hand": the stand-in and deno task serve, then):',
    `  export TOKEN=$(deno run -A tools/dev_tokens.ts ${ADMIN_ID})`,
    `  curl -sX POST ${base}/start-historical-sync -H "Authorization: Bearer $TOKEN" \\`,
    `       -H 'Content-Type: application/json' -d '{"agency_id":"${AGENCY_ID}","date_from":null,"max_calls":null}'`,
    `  curl -s "${base}/get-sync-status?job_id=${jobId}" -H "Authorization: Bearer $TOKEN"`,
    `  curl -sX POST ${base}/cancel-historical-sync -H "Authorization: Bearer $TOKEN" \\`,
    `       -H 'Content-Type: application/json' -d '{"job_id":"${jobId}"}'`,
  ].join("\n");
}

async function main(): Promise<number> {
  const started = new Date();
  const realKey = Deno.env.get("ULTRAVOX_API_KEY");
  const count = demoCalls();

  say("[1/6] Local Postgres (installs what is missing), then a reset");
  await dbStart();
  await dbReset();
  const sql = connect(dbUrl(), { max: 2 });
  cleanups.push(() => sql.end({ timeout: 5 }));

  let apiBase: string;
  let apiKey: string;
  let fake: FakeUltravox | null = null;
  if (realKey) {
    apiBase = Deno.env.get("ULTRAVOX_API_BASE") || "https://api.ultravox.ai/api";
    apiKey = realKey;
    say(`[2/6] Ultravox: the real API at ${apiBase} (ULTRAVOX_API_KEY is set)`);
  } else {
    say("[2/6] Stand-in Ultravox with a realistic, deterministic account");
    fake = await startStandIn(sql, count);
    apiBase = fake.baseUrl;
    apiKey = fake.apiKey!;
  }

  say("[3/6] The four functions and the local pg_net worker (pg_cron's schedule is live)");
  // The functions get the committed dev keys through the environment, with
  // SYNC_ALLOW_DEV_KEYS=1 (tools/dev_env.ts); they never read supabase/dev-keys.json.
  const env: Record<string, string> = { ...devEnv(), ULTRAVOX_API_BASE: apiBase, SUPABASE_URL };
  await startFunctions(env);

  say(`[4/6] The agency's Ultravox key goes into Vault (set_agency_ultravox_api_key)`);
  await sql`select public.set_agency_ultravox_api_key(${AGENCY_ID}, ${apiKey})`;

  say(`[5/6] ${ADMIN_EMAIL} starts a historical sync of everything (max_calls: null)`);
  const token = await userToken(ADMIN_ID, { claims: { email: ADMIN_EMAIL } });
  const { job: created } = await call("start-historical-sync", token, {
    method: "POST",
    body: JSON.stringify({ agency_id: AGENCY_ID, date_from: null, max_calls: null }),
  });
  say(`      job ${created.id} is ${created.status}`);

  say("[6/6] Progress from get-sync-status");
  const printer = progressPrinter(interactive, write);
  let job: JobView = created;
  const deadline = Date.now() + DEADLINE_MS;
  while (["pending", "in_progress"].includes(job.status) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    job = (await call(`get-sync-status?job_id=${created.id}`, token)).job;
    printer.update(job);
  }
  printer.done();

  say("\nThe job:");
  say(JSON.stringify(job, null, 2));

  let caughtUp: JobView | null = null;
  if (fake && job.status === "completed") {
    say("\nAfter the backfill, Ultravox moves on");
    accountMovesOn(fake);
    say(
      `${ADMIN_EMAIL} starts a catch-up (catch_up: true: from the last sync's end minus the overlap)`,
    );
    const { job: catchUp } = await call("start-historical-sync", token, {
      method: "POST",
      body: JSON.stringify({ agency_id: AGENCY_ID, catch_up: true }),
    });
    caughtUp = catchUp;
    const until = Date.now() + DEADLINE_MS;
    while (["pending", "in_progress"].includes(caughtUp!.status) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      caughtUp = (await call(`get-sync-status?job_id=${catchUp.id}`, token)).job;
    }
    say(
      `      catch-up ${caughtUp!.status}: imported ${caughtUp!.imported_calls} new, refreshed ` +
        `${caughtUp!.refreshed_calls} changed, marked ${caughtUp!.deleted_calls_marked} deleted ` +
        `(processed ${caughtUp!.processed_calls}, from ${caughtUp!.date_from})`,
    );
  }

  await runCronCommandNow(sql);
  const logs = await cronLogsSince(sql, started);
  say(`\ncron_job_logs rows of this run (${logs.length}):`);
  for (const l of logs) {
    say(
      `  ${l.started_at}  ${l.job_name}  ${l.status}  ${JSON.stringify(l.result)}${
        l.error_message ? `  ${l.error_message}` : ""
      }`,
    );
  }
  say(`\n${curlWalkthrough(created.id)}`);
  say(
    `\nDemo summary: status=${job.status} processed=${job.processed_calls} imported=${job.imported_calls} ` +
      `skipped=${job.skipped_calls} failed=${job.failed_calls}`,
  );
  if (caughtUp) {
    say(
      `Catch-up summary: status=${caughtUp.status} imported=${caughtUp.imported_calls} ` +
        `refreshed=${caughtUp.refreshed_calls} deleted_marked=${caughtUp.deleted_calls_marked}`,
    );
  }
  const ok = job.status === "completed" && (caughtUp === null || caughtUp.status === "completed");
  return ok ? 0 : 1;
}

if (import.meta.main) {
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    say("\nInterrupted: stopping everything the demo started");
    cleanUp().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`\nThe demo failed: ${e instanceof Error ? e.message : e}`);
  }
  await cleanUp();
  Deno.exit(code);
}
