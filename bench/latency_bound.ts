// The latency bound: with every Ultravox answer taking `latencyMs`, an import can be no faster
// than one page after the other, pages × latency. The processor fetches page n+1 while it
// writes page n, so its wall time should sit just above that. For reference, the bare walk:
// the same pages fetched back to back by a loop that only reads the cursor, nothing else.
import { callsUrl, cursorFromNext } from "../supabase/functions/_shared/ultravox/client.ts";
import { ACCOUNT_END } from "./database.ts";

export interface BareWalk {
  pages: number;
  wallMs: number;
}

export async function measureBareWalk(
  opts: { apiBase: string; apiKey: string; pageSize: number },
): Promise<BareWalk> {
  const started = performance.now();
  let cursor: string | null = null;
  let pages = 0;
  do {
    const url = callsUrl(opts.apiBase, {
      fromDate: null,
      toDate: ACCOUNT_END,
      pageSize: opts.pageSize,
      cursor,
    });
    const res = await fetch(url, { headers: { "X-API-Key": opts.apiKey } });
    const body = JSON.parse(await res.text()) as { next?: unknown };
    cursor = cursorFromNext(body.next);
    pages++;
  } while (cursor !== null);
  return { pages, wallMs: performance.now() - started };
}
