// The direct SQL connection (postgres.js), and the isolate's service pools.
//
// timestamptz values stay strings both ways: postgres.js would otherwise go through JS
// Dates and drop Ultravox's microseconds (docs/ARCHITECTURE.md §5 "Range").
import postgres from "postgres";
import { isoFromPg } from "../time.ts";
import { config, databaseUrl } from "./config.ts";

export type Sql = postgres.Sql;

const TIMESTAMPTZ = 1184;

export function connect(
  url: string,
  opts: { max?: number; debug?: postgres.Options<never>["debug"] } = {},
): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    prepare: false, // works through Supabase's transaction pooler
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { TimeZone: "UTC", application_name: "virsyn-historical-sync" },
    types: {
      timestamptz: {
        to: TIMESTAMPTZ,
        from: [TIMESTAMPTZ],
        serialize: (v: unknown) => String(v),
        parse: isoFromPg,
      },
    },
    debug: opts.debug,
  });
}

/**
 * Who uses a service pool: the processor holds one connection per job it walks at once
 * (SYNC_MAX_JOBS_PER_RUN) plus one for claims and logs; a user endpoint runs one statement
 * or transaction at a time, so one connection serves it (docs/ARCHITECTURE.md §8).
 */
export type PoolUser = "processor" | "user";

const pools = new Map<PoolUser, Sql>();

/** The connections a pool of `user` may open, from the configuration. */
export function poolSize(user: PoolUser, c = config()): number {
  return user === "processor" ? c.SYNC_MAX_JOBS_PER_RUN + 1 : 1;
}

/**
 * The isolate's service connection for `user` (SYNC_DB_URL, else SUPABASE_DB_URL), opened on
 * first use. Authorization is checked in code (jobs/access.ts): this connection is the
 * backend and bypasses RLS.
 */
export function serviceSql(user: PoolUser): Sql {
  let sql = pools.get(user);
  if (!sql) {
    sql = connect(databaseUrl(config()), { max: poolSize(user) });
    pools.set(user, sql);
  }
  return sql;
}

/** Closes the service pools (graceful shutdown of the local server). */
export async function closeServiceSql(timeoutSeconds = 5): Promise<void> {
  const open = [...pools.values()];
  pools.clear();
  await Promise.all(open.map((sql) => sql.end({ timeout: timeoutSeconds })));
}
