// Spawning processor_child.ts and following what it prints.
import type { Config } from "../../../supabase/functions/_shared/platform/config.ts";
import { configEnv } from "./harness.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const CHILD = new URL("./processor_child.ts", import.meta.url).pathname;

export type ChildEvent = Record<string, unknown> & { event: string };

export interface ChildProcessor {
  pid: number;
  /** Everything printed so far, in order. */
  events: ChildEvent[];
  /** Resolves with the first event (past or future) `pred` accepts. */
  waitFor(pred: (e: ChildEvent) => boolean, timeoutMs?: number): Promise<ChildEvent>;
  /** SIGKILL: no finally blocks, no goodbye to Postgres. */
  kill(): void;
  /** Any other signal (SIGSTOP freezes the worker like a long pause, SIGCONT thaws it). */
  signal(sig: Deno.Signal): void;
  /** Exit status and stderr, once the process is gone and its pipes are drained. */
  done: Promise<{ code: number; signal: string | null; stderr: string }>;
}

export function spawnProcessor(
  jobIds: string[],
  config: Config,
  opts: { loop?: boolean } = {},
): ChildProcessor {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, ...(opts.loop ? ["--loop"] : []), ...jobIds],
    cwd: ROOT,
    env: configEnv(config),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const events: ChildEvent[] = [];
  const waiters: { pred: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }[] = [];

  const reading = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        let event: ChildEvent;
        try {
          event = JSON.parse(line);
        } catch {
          continue; // not one of ours
        }
        events.push(event);
        for (const w of [...waiters]) {
          if (w.pred(event)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(event);
          }
        }
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  const done = (async () => {
    const [status] = await Promise.all([child.status, reading]);
    return { code: status.code, signal: status.signal, stderr: await stderr };
  })();

  return {
    pid: child.pid,
    events,
    waitFor(pred, timeoutMs = 15_000) {
      const past = events.find(pred);
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`child ${child.pid}: no matching event in ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          pred,
          resolve: (e: ChildEvent) => {
            clearTimeout(timer);
            resolve(e);
          },
        };
        waiters.push(waiter);
        // The child may exit without ever printing it.
        done.then(() => {
          if (waiters.includes(waiter)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            clearTimeout(timer);
            reject(new Error(`child ${child.pid} exited before the awaited event`));
          }
        });
      });
    },
    kill() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
    },
    signal(sig) {
      child.kill(sig);
    },
    done,
  };
}
