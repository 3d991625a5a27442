// deno task serve — the four edge functions under one port, as the Supabase CLI serves
// them: <SUPABASE_URL>/functions/v1/<name>, plus `GET /auth/v1/user` as Supabase Auth
// answers it (tools/stand_in_auth.ts), so legacy HS256 tokens work end to end. Configured
// only from the environment (supabase/functions/_shared/platform/config.ts); what is unset
// of the keys comes from the committed dev keys, with SYNC_ALLOW_DEV_KEYS=1
// (tools/dev_env.ts). stdout carries exactly one line, once listening:
// "Serving functions at <SUPABASE_URL>/functions/v1/"; everything else goes to stderr.
import { config, databaseUrl, dispatchKey } from "../supabase/functions/_shared/platform/config.ts";
import { drainBackground } from "../supabase/functions/_shared/platform/background.ts";
import { withCorsHeaders } from "../supabase/functions/_shared/http/cors.ts";
import { errorBody } from "../supabase/functions/_shared/http/errors.ts";
import { closeServiceSql, serviceSql } from "../supabase/functions/_shared/platform/db.ts";
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";
import { type PgNetWorker, startPgNetWorker } from "./local/pg_net_worker.ts";
import { writeDispatchSecrets, writeDispatchSettings } from "./local/vault_secrets.ts";
import { applyDevEnv } from "../tools/dev_env.ts";
import { authUserHandler } from "../tools/stand_in_auth.ts";
import startHistoricalSync from "../supabase/functions/start-historical-sync/index.ts";
import processHistoricalSync from "../supabase/functions/process-historical-sync/index.ts";
import cancelHistoricalSync from "../supabase/functions/cancel-historical-sync/index.ts";
import getSyncStatus from "../supabase/functions/get-sync-status/index.ts";

export interface FunctionModule {
  fetch: (req: Request) => Response | Promise<Response>;
}

/** The functions as deployed: each folder's default export. */
export function defaultFunctions(): Record<string, FunctionModule> {
  return {
    "start-historical-sync": startHistoricalSync,
    "process-historical-sync": processHistoricalSync,
    "cancel-historical-sync": cancelHistoricalSync,
    "get-sync-status": getSyncStatus,
  };
}

const FUNCTION_PATH = /^\/functions\/v1\/([^/]+)(?:\/.*)?$/;

/** Routes /functions/v1/<name>[/…] to the function; anything else is a 404 envelope. */
export function functionsRouter(functions: Record<string, FunctionModule>) {
  return async (req: Request): Promise<Response> => {
    const name = FUNCTION_PATH.exec(new URL(req.url).pathname)?.[1];
    const fn = name !== undefined && Object.hasOwn(functions, name) ? functions[name] : null;
    if (!fn) {
      return withCorsHeaders(
        Response.json(errorBody("not_found", "No function at this path."), { status: 404 }),
      );
    }
    return await fn.fetch(req);
  };
}

export interface ServerOptions {
  /** Host and port to bind come from this URL (default: SUPABASE_URL of the config). */
  supabaseUrl?: string;
  /** Overrides the URL's port; 0 picks a free one (tests). */
  port?: number;
  functions?: Record<string, FunctionModule>;
  /** Answers GET /auth/v1/user (default: the stand-in Auth with the dev keys; null: 404). */
  authUser?: FunctionModule["fetch"] | null;
  /** Per-request log lines (stderr by default). */
  log?: (line: string) => void;
}

export interface RunningServer {
  /** Base URL actually served, without a trailing slash (http://host:port). */
  url: string;
  /** `${url}/functions/v1/` */
  functionsUrl: string;
  /** Stops accepting, lets requests in flight finish. */
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const base = new URL(opts.supabaseUrl ?? config().SUPABASE_URL);
  const hostname = base.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = opts.port ?? (base.port ? Number(base.port) : base.protocol === "https:" ? 443 : 80);
  const functions = functionsRouter(opts.functions ?? defaultFunctions());
  const authUser = opts.authUser === undefined ? authUserHandler() : opts.authUser;
  const route = (req: Request) =>
    authUser && new URL(req.url).pathname === "/auth/v1/user" ? authUser(req) : functions(req);
  const log = opts.log ?? ((line: string) => console.error(line));

  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname,
    port,
    onListen: (addr) => resolve(addr as Deno.NetAddr), // silent: stdout is reserved
  }, async (req) => {
    const started = performance.now();
    const response = await route(req);
    const path = new URL(req.url).pathname;
    log(
      `[serve] ${req.method} ${path} ${response.status} ${
        Math.round(performance.now() - started)
      }ms`,
    );
    return response;
  });
  const addr = await listening;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const url = opts.port === 0 ? `http://${host}:${addr.port}` : base.origin;
  return {
    url,
    functionsUrl: `${url}/functions/v1/`,
    close: async () => {
      await server.shutdown();
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM. */
function shutdownSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        handlers.forEach(([s, h]) => Deno.removeSignalListener(s, h));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return [signal, handler] as const;
    });
  });
}

/** True when `net` is the local bootstrap's stand-in, which nothing else executes. */
async function needsLocalPgNet(sql: Sql): Promise<boolean> {
  const [row] = await sql<{ local: boolean }[]>`
    select coalesce(obj_description(to_regnamespace('net'), 'pg_namespace') = 'virsyn:local-bootstrap', false)
      as local`;
  return row.local;
}

/**
 * Start-up, in order: bind the port, write the Vault secrets cron dispatches with
 * (so an override of SUPABASE_URL or the secret key never leaves cron calling stale
 * values), start the local pg_net worker, then print the ready line.
 */
export async function main(): Promise<void> {
  const added = Object.keys(applyDevEnv());
  if (added.length) {
    console.error(`[serve] local dev keys (supabase/dev-keys.json) for: ${added.join(", ")}`);
  }
  const cfg = config();
  // Its gateway lets through the keys the functions were given, whichever they are.
  const apiKeys = [...Object.values(cfg.publishableKeys), ...Object.values(cfg.secretKeys)];
  const authUser = authUserHandler({ apiKeys });
  const server = await startServer({ supabaseUrl: cfg.SUPABASE_URL, authUser });
  const sql = serviceSql("processor");
  await writeDispatchSecrets(sql, {
    projectUrl: cfg.SUPABASE_URL.replace(/\/+$/, ""),
    functionsSecretKey: dispatchKey(cfg),
  });
  await writeDispatchSettings(sql, {
    maxInvocations: cfg.SYNC_MAX_INVOCATIONS,
    jobsPerInvocation: cfg.SYNC_MAX_JOBS_PER_RUN,
  });
  let worker: PgNetWorker | null = null;
  if (await needsLocalPgNet(sql)) {
    worker = startPgNetWorker(databaseUrl(cfg), {
      onError: (e) => console.error(`[pg_net] ${e instanceof Error ? e.message : e}`),
    });
  }
  console.log(`Serving functions at ${cfg.SUPABASE_URL.replace(/\/+$/, "")}/functions/v1/`);

  const signal = await shutdownSignal();
  console.error(`[serve] ${signal}: shutting down`);
  await server.close();
  await worker?.stop();
  if (!await drainBackground(10_000)) {
    console.error("[serve] background work still running; its leases will expire");
  }
  await closeServiceSql();
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    console.error(`[serve] ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
