// The stand-in Ultravox in a process of its own (main.ts --spec), so the CPU it spends building
// pages is not charged to the process being measured (docs/ULTRAVOX.md for what it serves).
import type { StandInSpec } from "./spec.ts";
import type { KeyStats } from "./stats.ts";

export type { StandInAccountSpec, StandInSpec } from "./spec.ts";

export interface StandInProcess {
  /** http://127.0.0.1:<port>/api, for every account of the spec. */
  baseUrl: string;
  /** What each account's key was asked since the previous call, by key. */
  stats(): Promise<Record<string, KeyStats>>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the stand-in as a subprocess and waits until it serves. */
export async function spawnStandIn(spec: StandInSpec): Promise<StandInProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./main.ts", import.meta.url).pathname,
      "--spec",
      JSON.stringify(spec),
    ],
    cwd: new URL("../../", import.meta.url).pathname, // the project's deno.json
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) {
      await child.stdin.close().catch(() => {});
      await child.status;
      throw new Error("the stand-in Ultravox exited before serving");
    }
    text += value;
  }
  const { baseUrl } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { baseUrl: string };
  text = text.slice(text.indexOf("\n") + 1);
  const writer = child.stdin.getWriter();
  let closed: Promise<void> | null = null;
  const handle: StandInProcess = {
    baseUrl,
    async stats() {
      await writer.write(new TextEncoder().encode("stats\n"));
      while (!text.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("the stand-in Ultravox exited before answering stats");
        text += value;
      }
      const line = text.slice(0, text.indexOf("\n"));
      text = text.slice(text.indexOf("\n") + 1);
      return JSON.parse(line) as Record<string, KeyStats>;
    },
    close() {
      closed ??= (async () => {
        await writer.close();
        await reader.cancel();
        await child.status;
      })();
      return closed;
    },
    [Symbol.asyncDispose]: () => handle.close(),
  };
  return handle;
}
