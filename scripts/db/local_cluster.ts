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

/** The platform's superuser: it runs the bootstrap; everything else runs as `postgres`. */
export const ADMIN_ROLE = "supabase_admin";

export function dbUrl(): string {
  return Deno.env.get("SUPABASE_DB_URL") || LOCAL_DB_URL;
}

/** dbUrl() as supabase_admin (same host, database and password). */
export function adminDbUrl(): string {
  const url = new URL(dbUrl());
  url.username = ADMIN_ROLE;
  return url.toString();
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

/**
 * Runs SQL through psql (ON_ERROR_STOP), so files may use psql meta-commands; as `postgres`,
 * or with `admin` as supabase_admin.
 */
export async function psql(args: string[], opts: { quiet?: boolean; admin?: boolean } = {}) {
  return await run("psql", [
    opts.admin ? adminDbUrl() : dbUrl(),
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
