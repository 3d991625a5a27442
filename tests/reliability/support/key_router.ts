// One ULTRAVOX_API_BASE for several stand-in accounts: requests are forwarded to the fake
// whose key they carry (as Ultravox itself tells accounts apart), so processors that share
// a config can work on jobs of different agencies at once.
import type { FakeUltravox } from "../../../tools/stand_in_ultravox/server.ts";

export interface KeyRouter {
  /** http://127.0.0.1:<port>/api */
  baseUrl: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An Ultravox-shaped key: 8 characters, a dot, 32 characters. */
export function fakeKey(): string {
  const hex = Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => b.toString(16))
    .join("").padEnd(40, "0");
  return `${hex.slice(0, 8)}.${hex.slice(8, 40)}`;
}

export function startKeyRouter(fakes: FakeUltravox[]): KeyRouter {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const key = req.headers.get("X-API-Key");
    const fake = fakes.find((f) => key !== null && f.apiKey === key);
    if (!fake) return Response.json({ detail: "Invalid API key." }, { status: 403 });
    const url = new URL(req.url);
    const target = new URL(fake.baseUrl);
    target.pathname = url.pathname;
    target.search = url.search;
    try {
      const res = await fetch(target, {
        headers: { "X-API-Key": key!, Accept: "application/json" },
      });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } catch {
      // The client went away (or the fake dropped the line): nobody reads this answer.
      return new Response(null, { status: 502 });
    }
  });
  const router: KeyRouter = {
    baseUrl: `http://127.0.0.1:${server.addr.port}/api`,
    close: () => server.shutdown(),
    [Symbol.asyncDispose]: () => router.close(),
  };
  return router;
}
