// Writes what the cron dispatcher reads (docs/ARCHITECTURE.md §7): the two Vault secrets,
// creating or replacing each, and how far it fans out, so an override of SUPABASE_URL, the
// secret key, SYNC_MAX_INVOCATIONS or SYNC_MAX_JOBS_PER_RUN never leaves cron on stale values.
import type postgres from "postgres";
import type { Sql } from "../../supabase/functions/_shared/platform/db.ts";

/** Creates the named Vault secret, or replaces its value when it exists. */
export async function putVaultSecret(
  sql: Sql | postgres.TransactionSql,
  name: string,
  value: string,
): Promise<void> {
  await sql`
    select case
      when exists (select 1 from vault.secrets where name = ${name})
        then (select vault.update_secret(id, ${value}) from vault.secrets where name = ${name})::text
      else vault.create_secret(${value}, ${name})::text
    end`;
}

export async function writeDispatchSecrets(
  sql: Sql,
  secrets: { projectUrl: string; functionsSecretKey: string },
) {
  await putVaultSecret(sql, "project_url", secrets.projectUrl);
  await putVaultSecret(sql, "functions_secret_key", secrets.functionsSecretKey);
}

/** The dispatcher's fan-out, from the functions' settings (public.sync_dispatch_settings). */
export async function writeDispatchSettings(
  sql: Sql,
  settings: { maxInvocations: number; jobsPerInvocation: number },
) {
  await sql`
    update public.sync_dispatch_settings
       set max_invocations = ${settings.maxInvocations},
           jobs_per_invocation = ${settings.jobsPerInvocation}, updated_at = now()`;
}
