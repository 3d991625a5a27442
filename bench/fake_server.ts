// The stand-in Ultravox (tests/support/fake_ultravox.ts) in a process of its own, so the CPU
// it spends building pages is not charged to the processor being measured.
//
//   deno run -A bench/fake_server.ts '<spec as JSON>'
//
// prints one line `{"baseUrl": "http://127.0.0.1:<port>/api"}` when it is serving, and runs
// until its stdin closes. With one account the stand-in answers directly; with several, a
// small router in front sends each request to the account its X-API-Key belongs to (the
// processor has one ULTRAVOX_API_BASE for every agency, as in production).
import { type FakeUltravox, startFakeUltravox } from "../tools/stand_in_ultravox/server.ts";
import { generateAccount } from "../tools/stand_in_ultravox/accounts.ts";

export interface FakeAccountSpec {
  apiKey: string;
  seed: number;
  count: number;
  days?: number;
}

export interface FakeServerSpec {
  accounts: FakeAccountSpec[];
  latencyMs: number;
  maxPageSize: number;
}

export interface FakeServerHandle {
  baseUrl: string;
  close(): Promise<void>;
}

/** Starts bench/fake_server.ts as a subprocess and waits until it serves. */
export async function spawnFakeServer(spec: FakeServerSpec): Promise<FakeServerHandle> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./fake_server.ts", import.meta.url).pathname,
      JSON.stringify(spec),
    ],
    cwd: new URL("../", import.meta.url).pathname, // the project's deno.json
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the stand-in Ultravox exited before serving");
    text += value;
  }
  const { baseUrl } = JSON.parse(text.slice(0, text.indexOf("\n"))) as { baseUrl: string };
  return {
    baseUrl,
    async close() {
      await child.stdin.close();
      await reader.cancel();
      await child.status;
    },
  };
}

/** Serves the accounts in this process; what the subprocess runs. */
export async function serveFake(spec: FakeServerSpec): Promise<FakeServerHandle> {
  const fakes: FakeUltravox[] = [];
  for (const a of spec.accounts) {
    fakes.push(
      await startFakeUltravox({
        apiKey: a.apiKey,
        calls: generateAccount({ seed: a.seed, count: a.count, days: a.days ?? 365 }),
        maxPageSize: spec.maxPageSize,
        latencyMs: spec.latencyMs,
      }),
    );
  }
  const closeAll = async () => void await Promise.all(fakes.map((f) => f.close()));
  if (fakes.length === 1) return { baseUrl: fakes[0].baseUrl, close: closeAll };

  const byKey = new Map(fakes.map((f) => [f.apiKey!, f]));
  const router = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const fake = byKey.get(req.headers.get("X-API-Key") ?? "");
    if (!fake) return Response.json({ detail: "Invalid API key." }, { status: 403 });
    const url = new URL(req.url);
    const res = await fetch(`${fake.baseUrl.replace(/\/api$/, "")}${url.pathname}${url.search}`, {
      headers: req.headers,
    });
    return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
  });
  return {
    baseUrl: `http://127.0.0.1:${router.addr.port}/api`,
    async close() {
      await router.shutdown();
      await closeAll();
    },
  };
}

if (import.meta.main) {
  const spec = JSON.parse(Deno.args[0]) as FakeServerSpec;
  const handle = await serveFake(spec);
  console.log(JSON.stringify({ baseUrl: handle.baseUrl }));
  // Serve until the parent closes our stdin (or goes away).
  for await (const _ of Deno.stdin.readable) { /* nothing is sent; wait for EOF */ }
  await handle.close();
  Deno.exit(0);
}
