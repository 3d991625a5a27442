// The isolate's one service connection (SUPABASE_DB_URL through db.ts), opened on first
// use and shared by every function served from this isolate. Authorization is checked in
// code (membership.ts): this connection is the backend and bypasses RLS.
import { config } from "./platform/config.ts";
import { connect, type Sql } from "./platform/db.ts";

/** One connection per job the processor walks at once (SYNC_MAX_JOBS_PER_RUN = 4), plus one. */
export const SERVICE_POOL_MAX = 5;

let shared: Sql | null = null;

export function serviceSql(): Sql {
  return shared ??= connect(config().SUPABASE_DB_URL, { max: SERVICE_POOL_MAX });
}

/** Closes the shared connection (graceful shutdown of the local server). */
export async function closeServiceSql(timeoutSeconds = 5): Promise<void> {
  const sql = shared;
  shared = null;
  await sql?.end({ timeout: timeoutSeconds });
}
