// The main job, as a newcomer runs it: `deno task demo`, non-interactive, small account.
// It resets the database and binds port 54321, so `deno task test` runs it last and alone.
import assert from "node:assert/strict";
import { DEMO_INVALID_CALLS, DEMO_NEW_CALLS, DEMO_PRESENT_SHARE } from "../../scripts/demo.ts";

const CALLS = 600;

Deno.test("deno task demo imports the whole account and shows progress, logs and curl", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "demo"],
    cwd: new URL("../../", import.meta.url).pathname,
    env: { CI: "true", DEMO_CALLS: String(CALLS) },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `demo failed:\n${stdout}\n${stderr}`);

  const present = Math.round(CALLS * DEMO_PRESENT_SHARE);
  assert.equal(present, 36);
  assert.match(
    stdout,
    new RegExp(
      `^Demo summary: status=completed processed=${CALLS + DEMO_INVALID_CALLS} ` +
        `imported=${CALLS - present} skipped=${present} failed=${DEMO_INVALID_CALLS}$`,
      "m",
    ),
  );
  for (let step = 1; step <= 6; step++) assert.match(stdout, new RegExp(`^\\[${step}/6\\] `, "m"));
  // Plain progress lines (no carriage-return redraws) ending at 100 %. The total is the
  // account's listed objects, its 5 invalid ones included, as Ultravox counts them.
  assert.doesNotMatch(stdout, /\r/);
  assert.equal(CALLS + DEMO_INVALID_CALLS, 605);
  // The backfill is uncapped, so it walks as slices: the line shows them all done.
  assert.match(
    stdout,
    /^\[█{30}\] 100\.0% completed · slices (\d+)\/\1 done · processed 605 of 605 /m,
  );
  // After the backfill the account gains DEMO_NEW_CALLS calls, one call is billed and one
  // deleted: the catch-up imports exactly the new ones, refreshes the billed one and marks
  // the deleted one.
  assert.equal(DEMO_NEW_CALLS, 25);
  assert.match(
    stdout,
    /^Catch-up summary: status=completed imported=25 refreshed=1 deleted_marked=1$/m,
  );
  // The stored cron command, run as pg_cron runs it (no wait for a tick), and its log row.
  assert.match(stdout, /^Running the stored cron command now, as pg_cron runs it every minute: /m);
  assert.match(stdout, /^cron_job_logs rows of this run \([1-9]\d*\):$/m);
  assert.match(stdout, /process-historical-sync {2}completed/);
  assert.match(
    stdout,
    /curl -sX POST http:\/\/127\.0\.0\.1:54321\/functions\/v1\/start-historical-sync/,
  );
});
