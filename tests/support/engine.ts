// The sync engine's test harness: processHistoricalSync on the real local Postgres against the
// stand-in Ultravox (docs/ARCHITECTURE.md §5). Every test makes its own agencies, jobs and calls
// (fresh random callIds), names its job by id so it never claims another test's, and removes what
// it made. Waits are recorded, never slept.
import "./dev_env.ts";
import assert from "node:assert/strict";
import { type Config, loadConfig } from "../../supabase/functions/_shared/platform/config.ts";
import {
  processHistoricalSync,
  type ProcessorDeps,
  type RunSummary,
} from "../../supabase/functions/_shared/sync/processor.ts";
import { type Sql, TestDb, testSql } from "./db.ts";
import {
  DEFAULT_API_KEY,
  type FakeCall,
  type FakeUltravox,
  type FakeUltravoxOptions,
  microsOf,
  startFakeUltravox,
} from "../../tools/stand_in_ultravox/server.ts";
import { type AccountOptions, generateAccount } from "../../tools/stand_in_ultravox/accounts.ts";

export const BASE_CONFIG = loadConfig();
export const NO_CAP = null;

// ---- harness ---------------------------------------------------------------------------------

export interface JobOptions {
  from?: string | null;
  to?: string;
  max?: number | null;
  /** create_sync_job's p_now, i.e. created_at (claims take the oldest first). */
  createdAt?: string;
}

export interface Harness {
  /** The test's own connection (fixtures and assertions). */
  sql: Sql;
  fake: FakeUltravox;
  /** Every wait the engine asked for, in ms. */
  sleeps: number[];
  agency(opts?: { key?: string | null }): Promise<string>;
  job(agencyId: string, opts?: JobOptions): Promise<string>;
  run(
    jobId: string | undefined,
    config?: Partial<Config>,
    deps?: Partial<ProcessorDeps>,
  ): Promise<RunSummary>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The stand-in, a test database handle and a separate pool for the engine (as in production). */
export async function harness(fakeOpts: FakeUltravoxOptions = {}): Promise<Harness> {
  const db = await TestDb.open();
  const engineSql = testSql();
  const fake = await startFakeUltravox(fakeOpts);
  const sleeps: number[] = [];
  return {
    sql: db.sql,
    fake,
    sleeps,
    async agency(opts = {}) {
      const key = opts.key === undefined ? DEFAULT_API_KEY : opts.key;
      return (await db.createAgency(key === null ? {} : { ultravoxKey: key })).id;
    },
    async job(agencyId, opts = {}) {
      const [job] = await db.sql<{ id: string }[]>`
        select id from public.create_sync_job(
          ${agencyId}, ${opts.from ?? null}, ${opts.to ?? "2026-11-01T00:00:00.000000Z"},
          ${opts.max === undefined ? NO_CAP : opts.max},
          ${opts.createdAt ?? new Date().toISOString()})`;
      assert.ok(job, "create_sync_job refused: the agency already has an active job");
      return job.id;
    },
    run(jobId, config = {}, deps = {}) {
      return processHistoricalSync(
        {
          sql: engineSql,
          config: {
            ...BASE_CONFIG,
            ULTRAVOX_API_BASE: fake.baseUrl,
            SYNC_PAGE_SIZE: 10,
            SYNC_MAX_PAGES_PER_RUN: 100,
            SYNC_TIME_BUDGET_MS: 60_000,
            SYNC_LEASE_SECONDS: 120,
            SYNC_MAX_ATTEMPTS: 10,
            ...config,
          },
          sleep: (ms) => {
            sleeps.push(ms);
            return Promise.resolve();
          },
          log: () => {},
          ...deps,
        },
        jobId === undefined ? {} : { jobId },
      );
    },
    async [Symbol.asyncDispose]() {
      try {
        // A discarded prefetch may still be on its way: let every request be answered first.
        await until(
          "the stand-in answered every request",
          () => fake.requests.every((r) => r.status !== 0),
        );
        await new Promise((r) => setTimeout(r, 20));
        await fake.close();
      } finally {
        await engineSql.end({ timeout: 5 });
        await db.close();
      }
    },
  };
}

/**
 * `count` realistic calls (ultravox_accounts.ts) with fresh callIds, so tests never share one.
 * Newest first, ties (about 1% of the calls share a `created`) by callId descending as Ultravox
 * lists them: the fresh callIds would otherwise leave ties in the generator's order, which the
 * stand-in serves as given and importedIds does not read back.
 */
export function account(count: number, opts: Partial<AccountOptions> = {}): FakeCall[] {
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  return generateAccount({ seed, count, ...opts })
    .map((c) => ({ ...c, callId: crypto.randomUUID() }))
    .sort((a, b) => {
      const d = microsOf(b.created)! - microsOf(a.created)!;
      return d > 0n ? 1 : d < 0n ? -1 : a.callId < b.callId ? 1 : a.callId > b.callId ? -1 : 0;
    });
}

export async function until(
  what: string,
  test: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface JobState {
  status: string;
  processed_calls: number;
  imported_calls: number;
  skipped_calls: number;
  failed_calls: number;
  total_calls: number | null;
  cursor: string | null;
  error_message: string | null;
  has_last_error_at: boolean;
  has_started_at: boolean;
  has_completed_at: boolean;
  lease_holder: string | null;
  lease_expires_at: string | null;
  failed_attempts: number | null;
}

export async function jobState(sql: Sql, jobId: string): Promise<JobState> {
  const [row] = await sql<JobState[]>`
    select j.status, j.processed_calls, j.imported_calls, j.skipped_calls, j.failed_calls,
           j.total_calls, j.cursor, j.error_message,
           j.last_error_at is not null as has_last_error_at,
           j.started_at is not null as has_started_at,
           j.completed_at is not null as has_completed_at,
           l.holder::text as lease_holder, l.expires_at::text as lease_expires_at,
           l.failed_attempts
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.id = ${jobId}`;
  assert.ok(row, `job ${jobId} is gone`);
  return row;
}

export type Counters = Pick<
  JobState,
  | "status"
  | "processed_calls"
  | "imported_calls"
  | "skipped_calls"
  | "failed_calls"
  | "total_calls"
>;

export function counters(s: JobState): Counters {
  const { status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls } = s;
  return { status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls };
}

/** The callIds a job imported, in API order (newest first, ties by callId descending). */
export async function importedIds(sql: Sql, jobId: string): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where historical_sync_job_id = ${jobId}
     order by created_at desc, ultravox_call_id desc`;
  return rows.map((r) => r.id);
}

export async function presentIds(sql: Sql, ids: string[]): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select ultravox_call_id::text as id from public.calls
     where ultravox_call_id = any (${ids}::uuid[])`;
  return rows.map((r) => r.id).sort();
}

/** Puts calls into `calls` as if someone (another agency, a webhook) had them already. */
export async function holdCalls(sql: Sql, agencyId: string, calls: FakeCall[]): Promise<void> {
  for (const c of calls) {
    await sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
      values (${agencyId}, ${c.callId}, ${c.created}, ${sql.json({ held: true })}, 'webhook')`;
  }
}

export const ids = (calls: readonly FakeCall[]) => calls.map((c) => c.callId);
export const cursors = (fake: FakeUltravox) => fake.requests.map((r) => r.query.cursor ?? null);

/** A protobuf duration ("27s", "0.384s") as exact microseconds. */
export function durationMicros(d: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,6}))?s$/.exec(d);
  if (!m) throw new Error(`fixture duration ${d} is not µs-exact`);
  return BigInt(m[1]) * 1_000_000n + BigInt((m[2] ?? "").padEnd(6, "0"));
}

export const AS_UTC_ISO = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

/** Every column of the job's rows equals what the stand-in served, to the microsecond. */
export async function assertRowsMatch(
  sql: Sql,
  jobId: string,
  agencyId: string,
  served: readonly FakeCall[],
): Promise<void> {
  const rows = await sql<Record<string, unknown>[]>`
    select ultravox_call_id::text as id, agency_id::text, source,
           historical_sync_job_id::text as job_id, ultravox_agent_id::text as agent_id,
           to_char(created_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as created,
           to_char(joined_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as joined,
           to_char(ended_at at time zone 'UTC', ${sql.unsafe(AS_UTC_ISO)}) as ended,
           (duration_seconds * 1000000)::bigint::text as duration_us,
           duration_seconds * 1000000 = trunc(duration_seconds * 1000000) as duration_whole_us,
           (billed_duration_seconds * 1000000)::bigint::text as billed_us,
           end_reason, short_summary, summary, recording_enabled, metadata, raw
      from public.calls
     where historical_sync_job_id = ${jobId}`;
  const byId = new Map(rows.map((r) => [r.id as string, r]));
  assert.equal(rows.length, served.length);
  for (const c of served) {
    const row = byId.get(c.callId);
    assert.ok(row, `call ${c.callId} was not imported`);
    const joined = c.joined ?? null;
    const ended = c.ended ?? null;
    assert.deepEqual(row, {
      id: c.callId,
      agency_id: agencyId,
      source: "historical_sync",
      job_id: jobId,
      agent_id: c.agentId ?? c.agent?.agentId ?? null,
      created: c.created,
      joined,
      ended,
      duration_us: joined !== null && ended !== null
        ? String(microsOf(ended)! - microsOf(joined)!)
        : null,
      duration_whole_us: joined !== null && ended !== null ? true : null,
      billed_us: c.billedDuration ? String(durationMicros(c.billedDuration)) : null,
      end_reason: c.endReason ?? null,
      short_summary: c.shortSummary ?? null,
      summary: c.summary ?? null,
      recording_enabled: c.recordingEnabled ?? false,
      metadata: c.metadata ?? {},
      raw: JSON.parse(JSON.stringify(c)),
    }, `row of call ${c.callId}`);
  }
}

// ---- one invocation --------------------------------------------------------------------------
