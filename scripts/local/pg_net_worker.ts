// The local stand-in for pg_net's background worker (docs/ARCHITECTURE.md §8), paced like the
// real one (supabase/pg_net src/worker.c, src/core.c at 0.20):
//   - one batch at a time, in one transaction: expired responses deleted, then up to
//     `batchSize` (pg_net.batch_size, 200) committed requests taken off the queue in id order;
//   - every request of the batch is sent at once, and the batch runs to completion (each
//     request answered or timed out) before the queue is read again; a slow request holds
//     back every request queued after it;
//   - one net._http_response row per request under its id, inserted in the batch's
//     transaction, so `created` is the batch's start and the rows appear together at commit;
//   - responses older than `ttl` (pg_net.ttl, 6 hours) are deleted;
//   - the real worker is woken when a transaction that called net.http_post commits
//     (wake_at_commit); an idle one waits for that wake with no time-out, and after a batch it
//     waits one second unless a commit woke it meanwhile. Here the local net.http_post
//     notifies `virsyn_pg_net_wake`, delivered at commit, and the worker waits for it: up to a
//     second after a batch, up to `pollMs` when idle (a fallback for rows queued some other
//     way; the real worker would wait for the next wake).
// Hosted projects run the real pg_net instead.
import { connect, type Sql } from "../../supabase/functions/_shared/platform/db.ts";

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string> | null;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

interface ResponseRow {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: string | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

export interface PgNetWorker {
  /** Resolves once the batch under way (if any) has committed its responses. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export interface PgNetWorkerOptions {
  /** Longest wait when idle, for requests queued without a wake (default 1000 ms). */
  pollMs?: number;
  /** Requests per batch (pg_net.batch_size, default 200). */
  batchSize?: number;
  /** How long responses are kept (pg_net.ttl, default '6 hours'). */
  ttl?: string;
  fetch?: typeof fetch;
  onError?: (e: unknown) => void;
}

export const PG_NET_VERSION = "0.20.4";
/** Notified by the local net.http_post (scripts/db/bootstrap.sql), delivered at commit. */
export const WAKE_CHANNEL = "virsyn_pg_net_wake";
/** After a batch the real worker waits this long unless woken ("slow down queue processing"). */
const BUSY_WAIT_MS = 1000;

/**
 * Starts the worker on a connection of its own (a batch holds it for as long as its slowest
 * request), opened from `url`, or on `sql` when given one (tests).
 */
export function startPgNetWorker(
  sqlOrUrl: Sql | string,
  opts: PgNetWorkerOptions = {},
): PgNetWorker {
  const own = typeof sqlOrUrl === "string";
  const sql = own ? connect(sqlOrUrl, { max: 1 }) : sqlOrUrl;
  const pollMs = opts.pollMs ?? 1000;
  const batchSize = opts.batchSize ?? 200;
  const ttl = opts.ttl ?? "6 hours";
  const doFetch = opts.fetch ?? fetch;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<void> = Promise.resolve();
  // The latch: set by a wake at any time, even during a batch; a nap ends at once when set.
  let woken = false;
  let endNap: (() => void) | null = null;
  const wake = () => {
    woken = true;
    endNap?.();
  };
  const listening = sql.listen(WAKE_CHANNEL, wake).catch((e) => {
    opts.onError?.(e);
    return null;
  });
  const nap = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || stopped) return resolve();
      endNap = resolve;
      timer = setTimeout(resolve, ms);
    }).finally(() => {
      clearTimeout(timer);
      endNap = null;
      woken = false;
    });

  async function send(req: QueuedRequest): Promise<ResponseRow> {
    const headers = new Headers(req.headers ?? {});
    headers.set("User-Agent", `pg_net/${PG_NET_VERSION}`);
    try {
      const res = await doFetch(req.url, {
        method: req.method.toUpperCase(),
        headers,
        body: req.body && req.method.toUpperCase() !== "GET" ? new Uint8Array(req.body) : undefined,
        signal: AbortSignal.timeout(req.timeout_milliseconds),
      });
      const content = await res.text();
      return {
        id: req.id,
        status_code: res.status,
        content_type: res.headers.get("content-type"),
        headers: JSON.stringify(Object.fromEntries(res.headers)),
        content: content === "" ? null : content,
        timed_out: false,
        error_msg: null,
      };
    } catch (e) {
      const timedOut = e instanceof DOMException && e.name === "TimeoutError";
      return {
        id: req.id,
        status_code: null,
        content_type: null,
        headers: null,
        content: null,
        timed_out: timedOut,
        error_msg: timedOut
          ? `Timeout of ${req.timeout_milliseconds} ms reached`
          : e instanceof Error
          ? e.message
          : String(e),
      };
    }
  }

  /** One batch; true when it deleted or sent anything. */
  async function batch(): Promise<boolean> {
    return await sql.begin(async (tx) => {
      const expired = await tx`
        with rows as (
          select ctid from net._http_response
           where created < now() - ${ttl}::interval order by created limit ${batchSize})
        delete from net._http_response r using rows where r.ctid = rows.ctid`;
      const taken = await tx<QueuedRequest[]>`
        with rows as (select id from net.http_request_queue order by id limit ${batchSize})
        delete from net.http_request_queue q using rows where q.id = rows.id
        returning q.id, q.method, q.url, q.headers, q.body, q.timeout_milliseconds`;
      if (taken.length > 0) {
        const rows = await Promise.all(taken.map(send));
        await tx`
          insert into net._http_response
            (id, status_code, content_type, headers, content, timed_out, error_msg)
          select r.id, r.status_code, r.content_type, r.headers::jsonb, r.content, r.timed_out,
                 r.error_msg
            from jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb) as r(
              id bigint, status_code integer, content_type text, headers text, content text,
              timed_out boolean, error_msg text)`;
      }
      return taken.length > 0 || expired.count > 0;
    });
  }

  async function loop() {
    await listening; // a request committed from here on wakes us
    while (!stopped) {
      let busy = false;
      current = (async () => {
        try {
          busy = await batch();
        } catch (e) {
          opts.onError?.(e);
        }
      })();
      await current;
      if (!stopped) await nap(busy ? BUSY_WAIT_MS : pollMs);
    }
  }
  const looping = loop();

  return {
    async drain() {
      await current;
    },
    async stop() {
      stopped = true;
      endNap?.();
      await looping;
      await (await listening)?.unlisten();
      if (own) await sql.end({ timeout: 5 });
    },
  };
}
