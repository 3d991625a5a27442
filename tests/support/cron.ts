// The cron path in tests (docs/ARCHITECTURE.md §7-§8): transactions that always roll back, pausing a
// schedule and putting it back, and process-historical-sync served over real HTTP with the
// local pg_net worker and the Vault secrets pointing at it, as `deno task serve` runs them.
//
// The database is shared with other people's tests and a live pg_cron, so everything here
// restores what it found, and the processor served is scoped to the one job a test owns:
// an unscoped one would claim other tests' active jobs and walk them against our stand-in.
import "./dev_env.ts";
import type postgres from "postgres";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import type { Sql } from "../../supabase/functions/_shared/platform/db.ts";
import { makeHandler } from "../../supabase/functions/process-historical-sync/index.ts";
import {
  processHistoricalSync,
  type RunSummary,
} from "../../supabase/functions/_shared/sync/processor.ts";
import { type RunningServer, startServer } from "../../scripts/serve.ts";
import { type PgNetWorker, startPgNetWorker } from "../../scripts/local/pg_net_worker.ts";
import { putVaultSecret as putSecret } from "../../scripts/local/vault_secrets.ts";

export { putSecret };

export type Tx = postgres.TransactionSql;

export const DISPATCH_JOB = "process-historical-sync";
export const CLEANUP_JOB = "cleanup-cron-job-logs";
export const DISPATCH_SECRETS = ["project_url", "functions_secret_key"] as const;

class RolledBack<T> {
  constructor(readonly value: T) {}
}

/**
 * Runs `fn` in a transaction that is always rolled back and returns what `fn` returned.
 * Under `repeatable read` a serialization failure (a concurrent update of a row `fn`
 * touches) retries the whole transaction, up to 5 times.
 */
export async function inRollback<T>(
  sql: Sql,
  fn: (tx: Tx) => Promise<T>,
  opts: { isolation?: "read committed" | "repeatable read" } = {},
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      await sql.begin(`isolation level ${opts.isolation ?? "read committed"}`, async (tx) => {
        throw new RolledBack(await fn(tx));
      });
      throw new Error("unreachable: the transaction must roll back");
    } catch (e) {
      if (e instanceof RolledBack) return e.value as T;
      const code = (e as { code?: string }).code;
      if (code === "40001" && attempt < 5) continue;
      throw e;
    }
  }
}

/** The Postgres error code `promise` rejects with (fails when it resolves). */
export async function sqlErrorCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return (e as { code?: string }).code ?? `not a database error: ${e}`;
  }
  throw new Error("expected a database error, got a result");
}

export interface CronJobRow {
  jobid: number;
  jobname: string;
  schedule: string;
  command: string;
  active: boolean;
}

export async function cronJob(sql: Sql, jobname: string): Promise<CronJobRow> {
  const [job] = await sql<CronJobRow[]>`
    select jobid::int as jobid, jobname, schedule, command, active
      from cron.job where jobname = ${jobname}`;
  if (!job) throw new Error(`no cron job named ${jobname}: run deno task db:reset`);
  return job;
}

/**
 * Pauses the schedule if it is active and returns what puts it back (a no-op when it was
 * already paused by someone else, whose pause is theirs to end).
 */
export async function pauseCronJob(sql: Sql, jobname: string): Promise<() => Promise<void>> {
  const job = await cronJob(sql, jobname);
  if (!job.active) return async () => {};
  await sql`select cron.alter_job(${job.jobid}::bigint, active := false)`;
  return async () => {
    await sql`select cron.alter_job(${job.jobid}::bigint, active := true)`;
  };
}

/** The dispatcher's Vault secrets as they are now (absent ones left out). */
export async function readDispatchSecrets(sql: Sql): Promise<Record<string, string>> {
  const rows = await sql<{ name: string; value: string }[]>`
    select name, decrypted_secret as value from vault.decrypted_secrets
     where name = any (${DISPATCH_SECRETS as unknown as string[]}::text[])`;
  return Object.fromEntries(rows.map((r) => [r.name, r.value]));
}

/** Puts the dispatcher's secrets back as `readDispatchSecrets` found them. */
export async function restoreDispatchSecrets(
  sql: Sql,
  before: Record<string, string>,
): Promise<void> {
  for (const name of DISPATCH_SECRETS) {
    if (before[name] !== undefined) await putSecret(sql, name, before[name]);
    else await sql`delete from vault.secrets where name = ${name}`;
  }
}

/** The processor settings the tests' exact counts assume, whatever the environment says. */
export const PINNED = {
  SYNC_PAGE_SIZE: 100,
  SYNC_MAX_PAGES_PER_RUN: 100,
  SYNC_MAX_JOBS_PER_RUN: 4,
  SYNC_TIME_BUDGET_MS: 50_000,
  SYNC_LEASE_SECONDS: 120,
} as const;

export interface CronRig {
  server: RunningServer;
  config: Config;
  /** Replies of process-historical-sync, in order (status and parsed body). */
  replies: { status: number; body: unknown }[];
  /** Summaries of the processor runs that finished, in order (also those answered 202). */
  runs: RunSummary[];
  /** Errors the pg_net worker reported. */
  workerErrors: unknown[];
  /** Starts the local pg_net worker (if `worker: false` was given at first). */
  startWorker(): PgNetWorker;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * process-historical-sync on a free port (the real router, handler and processor, the
 * processor scoped to `jobId` and reading Ultravox at `ultravoxBase`), the Vault secrets
 * pointing at it (put back on close), and, unless `worker: false`, the local pg_net
 * worker draining net.http_request_queue into it.
 */
export async function serveProcessor(sql: Sql, opts: {
  ultravoxBase: string;
  jobId: string;
  /** false: neither the Vault secrets nor the worker, only the server (default true). */
  dispatch?: boolean;
  /** false: start the worker later with startWorker() (default true). */
  worker?: boolean;
  /** Settings on top of PINNED (e.g. a page budget of 1). */
  config?: Partial<Config>;
}): Promise<CronRig> {
  const config: Config = {
    ...loadConfig(),
    ...PINNED,
    ULTRAVOX_API_BASE: opts.ultravoxBase,
    ...opts.config,
  };
  const handler = makeHandler({
    sql,
    config,
    // A kick names its job and is served as the real function serves it; the dispatcher's
    // body names none, and ours then claims only the test's own (see the top).
    process: async (asked) => {
      const run = await processHistoricalSync({ sql, config, log: () => {} }, {
        jobId: asked.jobId ?? opts.jobId,
      });
      runs.push(run);
      return run;
    },
  });
  const replies: CronRig["replies"] = [];
  const runs: RunSummary[] = [];
  const server = await startServer({
    supabaseUrl: "http://127.0.0.1:54321",
    port: 0,
    log: () => {},
    functions: {
      [DISPATCH_JOB]: {
        fetch: async (req) => {
          const res = await handler(req);
          const text = await res.clone().text();
          replies.push({ status: res.status, body: text ? JSON.parse(text) : null });
          return res;
        },
      },
    },
  });
  const dispatch = opts.dispatch ?? true;
  const secretsBefore = dispatch ? await readDispatchSecrets(sql) : null;
  const workerErrors: unknown[] = [];
  let worker: PgNetWorker | null = null;
  const rig: CronRig = {
    server,
    config,
    replies,
    runs,
    workerErrors,
    startWorker() {
      worker ??= startPgNetWorker(sql, {
        pollMs: 100,
        onError: (e) => void workerErrors.push(e),
      });
      return worker;
    },
    async close() {
      try {
        await worker?.stop();
      } finally {
        try {
          if (secretsBefore) await restoreDispatchSecrets(sql, secretsBefore);
        } finally {
          await server.close();
        }
      }
    },
    [Symbol.asyncDispose]() {
      return rig.close();
    },
  };
  if (!dispatch) return rig;
  try {
    await putSecret(sql, "project_url", server.url);
    await putSecret(sql, "functions_secret_key", config.secretKeys.default);
    if (opts.worker ?? true) rig.startWorker();
  } catch (e) {
    await rig.close();
    throw e;
  }
  return rig;
}

/** Polls `probe` until it returns a value other than undefined; fails at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${opts.timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
