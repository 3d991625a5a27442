// The stand-in Ultravox's command line (docs/ULTRAVOX.md for what it serves).
//
//   deno run -A tools/stand_in_ultravox/main.ts [calls]
//     By hand: one deterministic account of `calls` calls (default 2000) over the last 90 days
//     on the fixed port 54329; prints the ULTRAVOX_API_BASE to give `deno task serve` and the
//     account's API key. Stops on Ctrl-C.
//
//   deno run -A tools/stand_in_ultravox/main.ts --spec '<StandInSpec as JSON>'
//     For another process (spawn.ts): serves the spec's accounts on one server, prints one line
//     `{"baseUrl": "http://127.0.0.1:<port>/api"}` once it serves, and runs until stdin closes.
//     Each line `stats` on stdin is answered with one line: every account's KeyStats by key,
//     over the requests since the previous `stats`.
import { generateAccount } from "./accounts.ts";
import { DEFAULT_API_KEY, startFakeUltravox } from "./server.ts";
import { serveSpec, type StandInSpec } from "./spec.ts";
import { keyStats } from "./stats.ts";

export const STAND_IN_PORT = 54329;

/** The JSON after `--spec` (or in `--spec=…`), or null when the arguments name none. */
export function specArgument(args: string[]): string | null {
  const i = args.indexOf("--spec");
  if (i >= 0) return args[i + 1] ?? "";
  return args.find((a) => a.startsWith("--spec="))?.slice("--spec=".length) ?? null;
}

async function serveBySpec(text: string): Promise<never> {
  const fake = await serveSpec(JSON.parse(text) as StandInSpec);
  console.log(JSON.stringify({ baseUrl: fake.baseUrl }));
  // Serve until the parent closes our stdin (or goes away), answering `stats` lines.
  const reported = new Map<string, number>(); // requests per key already in a stats answer
  for await (const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    if (line.trim().split("\n").includes("stats")) {
      // By the account's key; an account whose key was revoked has none to report under.
      const keyed = fake.accounts.flatMap((a) =>
        a.apiKey === null ? [] : [{ ...a, key: a.apiKey }]
      );
      console.log(JSON.stringify(Object.fromEntries(keyed.map((a) => {
        const since = reported.get(a.key) ?? 0;
        reported.set(a.key, a.requests.length);
        return [a.key, keyStats(a.requests.slice(since))];
      }))));
    }
  }
  await fake.close();
  Deno.exit(0);
}

async function serveByHand(arg: string | undefined): Promise<void> {
  const count = Number(arg ?? "2000");
  if (!Number.isInteger(count) || count < 1) {
    console.error("usage: main.ts [number of calls, default 2000] | main.ts --spec '<json>'");
    Deno.exit(2);
  }
  const end = new Date(Date.now() - 3600_000).toISOString();
  const fake = await startFakeUltravox({
    port: STAND_IN_PORT,
    calls: generateAccount({ seed: 20261129, count, days: 90, end }),
  });
  console.log(`Stand-in Ultravox with ${count} calls over 90 days`);
  console.log(`ULTRAVOX_API_BASE=${fake.baseUrl}`);
  console.log(`API key: ${DEFAULT_API_KEY}`);
  const stop = async () => {
    await fake.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) {
  const spec = specArgument(Deno.args);
  if (spec !== null) await serveBySpec(spec);
  else await serveByHand(Deno.args[0]);
}
