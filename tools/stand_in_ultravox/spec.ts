// The stand-in Ultravox described as data (docs/ULTRAVOX.md for what it serves): generated
// accounts on one server, so another process can be told what to serve in one JSON argument
// (main.ts --spec, spawn.ts).
import { generateAccount } from "./accounts.ts";
import { type FakeAccountOptions, type FakeUltravox, startFakeUltravox } from "./server.ts";

export interface StandInAccountSpec {
  apiKey: string;
  seed: number;
  count: number;
  /** Calls are spread over the `days` before `end` (default 365). */
  days?: number;
  /** Default: generateAccount's (2026-11-01T00:00:00Z). */
  end?: string;
  /** generateAccount's quirks (running calls, unknown end reasons, …). */
  quirks?: boolean;
  accountId?: string;
}

export interface StandInSpec {
  accounts: StandInAccountSpec[];
  /** Added to every request of every account. */
  latencyMs?: number;
  maxPageSize?: number;
  defaultPageSize?: number;
  includeTotal?: boolean;
  /** Default: an ephemeral port. */
  port?: number;
}

/** Serves the spec's accounts in this process. */
export function serveSpec(spec: StandInSpec): Promise<FakeUltravox> {
  if (!Array.isArray(spec.accounts) || spec.accounts.length === 0) {
    throw new TypeError("a stand-in spec needs at least one account");
  }
  const [first, ...rest] = spec.accounts.map((a): FakeAccountOptions => ({
    apiKey: a.apiKey,
    accountId: a.accountId,
    latencyMs: spec.latencyMs ?? 0,
    calls: generateAccount({
      seed: a.seed,
      count: a.count,
      days: a.days ?? 365,
      end: a.end,
      quirks: a.quirks,
    }),
  }));
  return startFakeUltravox({
    ...first,
    accounts: rest,
    maxPageSize: spec.maxPageSize,
    defaultPageSize: spec.defaultPageSize,
    includeTotal: spec.includeTotal,
    port: spec.port,
  });
}
