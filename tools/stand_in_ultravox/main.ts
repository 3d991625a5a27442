// `deno run -A scripts/local/stand_in_ultravox.ts [calls]` — the stand-in Ultravox on a
// fixed local port with a deterministic account, for trying the functions by hand.
// Prints the ULTRAVOX_API_BASE to give `deno task serve` and the account's API key.
import { DEFAULT_API_KEY, startFakeUltravox } from "./server.ts";
import { generateAccount } from "./accounts.ts";

export const STAND_IN_PORT = 54329;

if (import.meta.main) {
  const count = Number(Deno.args[0] ?? "2000");
  if (!Number.isInteger(count) || count < 1) {
    console.error("usage: stand_in_ultravox.ts [number of calls, default 2000]");
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
