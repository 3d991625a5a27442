// The local Postgres of docs/ARCHITECTURE.md §8: a Debian cluster on 127.0.0.1:54322 with
// pg_cron.
import { LOCAL_DB_URL } from "../../supabase/functions/_shared/platform/config.ts";

export const PG_VERSION = "15";
export const CLUSTER_NAME = "supabase";
export const PORT = 54322;
export const DEBIAN_PACKAGES = [
  `postgresql-${PG_VERSION}`,
  `postgresql-${PG_VERSION}-cron`,
  `postgresql-${PG_VERSION}-pgtap`,
  "libtap-parser-sourcehandler-pgtap-perl",
];

export function dbUrl(): string {
  return Deno.env.get("SUPABASE_DB_URL") || LOCAL_DB_URL;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(cmd: string, args: string[], opts: { quiet?: boolean } = {}) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const result: CommandResult = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (result.code !== 0 && !opts.quiet) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${result.code}):\n${result.stderr}`);
  }
  return result;
}

/** Runs SQL through psql (ON_ERROR_STOP), so files may use psql meta-commands. */
export async function psql(args: string[], opts: { quiet?: boolean } = {}) {
  return await run("psql", [
    dbUrl(),
    "--no-psqlrc",
    "--quiet",
    "--set",
    "ON_ERROR_STOP=1",
    ...args,
  ], opts);
}

export async function canConnect(): Promise<boolean> {
  try {
    const r = await psql(["--tuples-only", "--command", "select 1"], { quiet: true });
    return r.code === 0;
  } catch {
    return false;
  }
}

export function log(message: string) {
  console.error(`[db] ${message}`);
}
