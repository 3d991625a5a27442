// deno task test — every kind of test, one closing line: `N passed, N failed`.
//
//   1. the local database: db:start (installs what is missing) and db:reset;
//   2. static checks: type-check, lint, fmt (one test each);
//   3. pgTAP files in supabase/tests/ with pg_prove (one test per assertion);
//   4. Deno tests in tests/ (one per Deno.test), then the real pg_cron tick test, then the
//      demo's test last and alone (docs/ARCHITECTURE.md §9).
import { dbStart } from "./db/start.ts";
import { dbReset } from "./db/reset.ts";
import { dbUrl } from "./db/local_cluster.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const DEMO_TEST = "tests/demo/";
// Waits for pg_cron's own next minute, so it runs after everything else, while nothing else
// holds a job the dispatcher could pick.
const REAL_TICK_TEST = "tests/integration/cron_real_tick.test.ts";

interface Tally {
  passed: number;
  failed: number;
}
const total: Tally = { passed: 0, failed: 0 };
const failures: string[] = [];

function record(name: string, t: Tally) {
  total.passed += t.passed;
  total.failed += t.failed;
  if (t.failed > 0) failures.push(`${name}: ${t.failed} failed`);
}

/** Runs a command, streaming its output, and returns what it printed. */
async function stream(cmd: string, args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (
    src: ReadableStream<Uint8Array>,
    dst: { write(b: Uint8Array): Promise<number> },
  ) => {
    const decoder = new TextDecoder();
    for await (const chunk of src) {
      text += decoder.decode(chunk, { stream: true });
      await dst.write(chunk);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  return { code: status.code, text };
}

async function check(name: string, cmd: string, args: string[]) {
  console.log(`\n── ${name}: ${cmd} ${args.join(" ")}`);
  const r = await stream(cmd, args);
  record(name, r.code === 0 ? { passed: 1, failed: 0 } : { passed: 0, failed: 1 });
}

async function pgTap() {
  console.log("\n── pgTAP: pg_prove supabase/tests/");
  const url = new URL(dbUrl());
  const r = await stream("pg_prove", [
    "--verbose",
    "--ext",
    ".sql",
    "-h",
    url.hostname,
    "-p",
    url.port || "5432",
    "-U",
    decodeURIComponent(url.username),
    "-d",
    url.pathname.slice(1),
    "supabase/tests/",
  ], { PGPASSWORD: decodeURIComponent(url.password) });
  const passed = r.text.match(/^\s*ok \d+/gm)?.length ?? 0;
  const failed = r.text.match(/^\s*not ok \d+/gm)?.length ?? 0;
  // A file that dies before its plan completes still counts as a failure.
  const broken = r.code !== 0 && failed === 0 ? 1 : 0;
  record("pgTAP", { passed, failed: failed + broken });
}

async function denoTests(name: string, paths: string[], ignore: string[] = []) {
  console.log(`\n── ${name}: deno test ${paths.join(" ")}`);
  const args = ["test", "-A", "--no-check=remote", ...ignore.map((p) => `--ignore=${p}`), ...paths];
  const r = await stream(Deno.execPath(), args);
  const m = [...r.text.matchAll(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/g)].at(-1);
  if (!m) {
    record(name, { passed: 0, failed: 1 }); // crashed before its summary
    return;
  }
  const t = { passed: Number(m[1]), failed: Number(m[2]) };
  if (r.code !== 0 && t.failed === 0) t.failed = 1;
  record(name, t);
}

async function exists(path: string) {
  return await Deno.stat(`${ROOT}${path}`).then(() => true, () => false);
}

try {
  await dbStart();
  await dbReset();
} catch (e) {
  console.error(`The local database could not be prepared: ${e instanceof Error ? e.message : e}`);
  record("database", { passed: 0, failed: 1 });
}

if (total.failed === 0) {
  const sources = [];
  for (const dir of ["supabase/functions", "scripts", "tools", "tests", "bench"]) {
    if (await exists(dir)) sources.push(dir);
  }
  await check("type-check", Deno.execPath(), ["check", ...sources]);
  await check("lint", Deno.execPath(), ["lint"]);
  await check("fmt", Deno.execPath(), ["fmt", "--check"]);
  await pgTap();
  await denoTests("Deno tests", ["tests/"], [DEMO_TEST, REAL_TICK_TEST]);
  await denoTests("real pg_cron tick", [REAL_TICK_TEST]);
  if (await exists(DEMO_TEST)) await denoTests("demo test", [DEMO_TEST]);
}

if (failures.length) console.log(`\nFailures:\n  ${failures.join("\n  ")}`);
console.log(`\n${total.passed} passed, ${total.failed} failed`);
Deno.exit(total.failed === 0 && total.passed > 0 ? 0 : 1);
