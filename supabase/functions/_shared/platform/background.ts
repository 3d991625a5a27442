// Work that outlives the response (start-historical-sync kicks the processor). Under the
// Supabase edge runtime `EdgeRuntime.waitUntil` keeps the isolate alive for it; elsewhere
// (the local router, `deno serve`) the promise simply runs on. Either way it is never
// awaited by the request, and its errors are logged, not thrown.
import { logUnexpected } from "../http/errors.ts";

interface EdgeRuntimeGlobal {
  waitUntil(promise: Promise<unknown>): void;
}

const running = new Set<Promise<unknown>>();

export function runInBackground(task: () => Promise<unknown>, label: string): void {
  const promise = (async () => {
    try {
      await task();
    } catch (e) {
      logUnexpected(e, label);
    }
  })();
  running.add(promise);
  promise.finally(() => running.delete(promise));
  const edge = (globalThis as { EdgeRuntime?: EdgeRuntimeGlobal }).EdgeRuntime;
  if (typeof edge?.waitUntil === "function") edge.waitUntil(promise);
}

/** Waits for background work to finish, at most `timeoutMs` (graceful shutdown). */
export async function drainBackground(timeoutMs: number): Promise<boolean> {
  if (running.size === 0) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const done = Promise.allSettled([...running]).then(() => true);
  const finished = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return finished;
}
