// The fuzz runs' knobs (docs/RELIABILITY.md "Fuzzing"): FUZZ_RUNS sizes every property
// (default 10,000), FUZZ_SEED and FUZZ_PATH replay a failure fast-check reported.

function envInt(name: string): number | undefined {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${text}`);
  return n;
}

export const FUZZ_RUNS = Math.max(1, envInt("FUZZ_RUNS") ?? 10_000);
const SEED = envInt("FUZZ_SEED");
const PATH = Deno.env.get("FUZZ_PATH") || undefined;

/** fast-check parameters: the run count, and the seed and path to replay when given. */
export function fuzzParameters(): { numRuns: number; seed?: number; path?: string } {
  return {
    numRuns: FUZZ_RUNS,
    ...(SEED !== undefined ? { seed: SEED } : {}),
    ...(PATH !== undefined ? { path: PATH } : {}),
  };
}
