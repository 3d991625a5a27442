// Writes the two Vault secrets the cron dispatcher reads (docs/ARCHITECTURE.md §7), creating or
// replacing each, so an override of SUPABASE_URL or the secret key never leaves cron
// calling with stale values.
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
