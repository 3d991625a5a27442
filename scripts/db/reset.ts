// deno task db:reset — returns the database to empty without dropping it, then rebuilds:
// platform bootstrap, every migration (through the Supabase CLI), supabase/seed.sql.
import { redact } from "../../supabase/functions/_shared/http/errors.ts";
import { dbUrl, log, psql, run } from "./local_cluster.ts";

export const SUPABASE_CLI = "supabase@2.117.0";
const BOOTSTRAP = new URL("./bootstrap.sql", import.meta.url).pathname;
const PROJECT_DIR = new URL("../../", import.meta.url).pathname;

// pg_cron's launcher stays connected to this database, so it is emptied, never dropped.
// Only schemas the bootstrap marked are dropped: a real platform schema is never touched.
const EMPTY_DATABASE = `
set client_min_messages = warning;
do $$
declare
  s record;
begin
  if exists (select from pg_extension where extname = 'pg_cron') then
    perform cron.unschedule(jobid) from cron.job;
    drop extension pg_cron cascade;
  end if;
  for s in
    select nspname from pg_namespace n
     where nspname = 'supabase_migrations'
        or obj_description(n.oid, 'pg_namespace') = 'virsyn:local-bootstrap'
  loop
    execute format('drop schema %I cascade', s.nspname);
  end loop;
  drop schema if exists public cascade;
  create schema public authorization pg_database_owner;
  comment on schema public is 'standard public schema';
  grant usage on schema public to public;
end
$$;
`;

export async function dbReset() {
  log(`resetting ${redact(dbUrl())}`);
  // As the superuser: it owns what the platform owns. Migrations and seed run as postgres.
  await psql(["--command", EMPTY_DATABASE], { admin: true });
  await psql(["--file", BOOTSTRAP], { admin: true });
  log(`applying migrations and seed with ${SUPABASE_CLI} db push`);
  const r = await run("npx", [
    "--yes",
    SUPABASE_CLI,
    "db",
    "push",
    "--db-url",
    dbUrl(),
    "--include-seed",
    "--yes",
    "--workdir",
    PROJECT_DIR,
  ], { quiet: true });
  if (r.code !== 0) {
    throw new Error(`supabase db push failed:\n${redact(r.stdout + r.stderr)}`);
  }
  log("database reset");
}

if (import.meta.main) {
  try {
    await dbReset();
  } catch (e) {
    console.error(`db:reset failed: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
