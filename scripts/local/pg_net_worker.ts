// The local stand-in for pg_net's background worker (docs/ARCHITECTURE.md §8): executes the rows of
// net.http_request_queue as pg_net does — only committed requests are visible, each is
// sent with its timeout_milliseconds, answered by one net._http_response row under the
// same id, and removed from the queue. Hosted projects run the real pg_net instead.
import type { Sql } from "../../supabase/functions/_shared/platform/db.ts";

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Uint8Array | null;
  timeout_milliseconds: number;
}

export interface PgNetWorker {
  /** Resolves once every request taken so far has its response row. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export function startPgNetWorker(sql: Sql, opts: {
  pollMs?: number;
  batchSize?: number;
  fetch?: typeof fetch;
  onError?: (e: unknown) => void;
} = {}): PgNetWorker {
  const pollMs = opts.pollMs ?? 200;
  const batchSize = opts.batchSize ?? 200;
  const doFetch = opts.fetch ?? fetch;
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function execute(req: QueuedRequest) {
    let row: Record<string, unknown>;
    try {
      const res = await doFetch(req.url, {
        method: req.method.toUpperCase(),
        headers: req.headers,
        body: req.body && req.method.toUpperCase() !== "GET" ? new Uint8Array(req.body) : undefined,
        signal: AbortSignal.timeout(req.timeout_milliseconds),
      });
      row = {
        status_code: res.status,
        content_type: res.headers.get("content-type"),
        headers: Object.fromEntries(res.headers),
        content: await res.text(),
        timed_out: false,
        error_msg: null,
      };
    } catch (e) {
      const timedOut = e instanceof DOMException && e.name === "TimeoutError";
      row = {
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
    await sql`
      insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
      values (${req.id}, ${row.status_code as number | null}, ${row.content_type as string | null},
              ${row.headers ? JSON.stringify(row.headers) : null}::jsonb, ${row.content as
      | string
      | null},
              ${row.timed_out as boolean}, ${row.error_msg as string | null})`;
  }

  async function poll() {
    if (stopped) return;
    try {
      // Taking a request deletes it from the queue in the same statement, as pg_net does.
      const taken = await sql<QueuedRequest[]>`
        delete from net.http_request_queue q
         where q.id in (select id from net.http_request_queue order by id
                         limit ${batchSize} for update skip locked)
        returning q.id, q.method, q.url, q.headers, q.body, q.timeout_milliseconds`;
      for (const req of taken) {
        const p = execute(req).catch((e) => opts.onError?.(e)).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    } catch (e) {
      opts.onError?.(e);
    }
    if (!stopped) timer = setTimeout(poll, pollMs);
  }
  timer = setTimeout(poll, 0);

  return {
    async drain() {
      await Promise.all(inFlight);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await Promise.all(inFlight);
    },
  };
}
