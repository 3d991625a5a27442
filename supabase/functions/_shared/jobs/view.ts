// The `job` of every reply (docs/ARCHITECTURE.md §6): the historical_sync_jobs row without `cursor`,
// timestamps as Postgres stores them (ISO UTC, six fractional digits, via db.ts), plus
// a derived `progress`.
import { microsFromIso } from "../time.ts";

export type SyncJobStatus = "pending" | "in_progress" | "completed" | "failed" | "cancelled";

/** A historical_sync_jobs row as db.ts returns it (timestamptz as ISO strings). */
export interface JobRow {
  id: string;
  agency_id: string;
  date_from: string | null;
  date_to: string;
  status: SyncJobStatus;
  total_calls: number | null;
  processed_calls: number;
  imported_calls: number;
  skipped_calls: number;
  failed_calls: number;
  cursor: string | null;
  error_message: string | null;
  last_error_at: string | null;
  max_calls: number | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  last_activity_at: string | null;
}

export interface JobProgress {
  /** 0…1; 1 only when completed; null while nothing tells how far the job is. */
  fraction: number | null;
  calls_per_minute: number | null;
  eta_seconds: number | null;
  stalled: boolean;
}

/** What the job view carries from the engine's state beside the row (the companion table). */
export interface JobEngineState {
  refreshed_calls: number;
  trigger: "user" | "schedule";
  /** A Retry-After being honoured: no worker claims the job before then. */
  not_before: string | null;
  unreadable_calls: number;
  unreadable_fields: string[];
  catch_up: boolean;
  deleted_marked: number;
  /** A sliced walk's slices (null: the job walks as one). */
  slices: { total: number; done: number } | null;
}

export const NO_ENGINE_STATE: JobEngineState = {
  refreshed_calls: 0,
  trigger: "user",
  not_before: null,
  unreadable_calls: 0,
  unreadable_fields: [],
  catch_up: false,
  deleted_marked: 0,
  slices: null,
};

export type JobView = Omit<JobRow, "cursor"> & {
  progress: JobProgress;
  refreshed_calls: number;
  trigger: "user" | "schedule";
  waiting_until: string | null;
  fields_unreadable: { count: number; fields: string[] };
  /** A catch-up also walks Ultravox's deleted calls and marks them. */
  catch_up: boolean;
  deleted_calls_marked: number;
  /** Present for a sliced walk: its slices, and how many are done. */
  slices?: { total: number; done: number };
};

/** Below 1 until the job is really completed. */
export const FRACTION_CAP = 0.9999;
/** A running job is stalled once silent for max(2 × lease, this). */
export const MIN_STALL_SECONDS = 120;

export interface ViewOptions {
  now: Date;
  /** SYNC_LEASE_SECONDS. */
  leaseSeconds: number;
}

export function toJobView(
  row: JobRow,
  opts: ViewOptions,
  state: JobEngineState = NO_ENGINE_STATE,
): JobView {
  const { cursor: _cursor, ...job } = row;
  const waitingUntil = waitingUntilOf(row, state, opts.now);
  return {
    ...job,
    progress: jobProgress(row, opts, waitingUntil),
    refreshed_calls: state.refreshed_calls,
    trigger: state.trigger,
    waiting_until: waitingUntil,
    fields_unreadable: { count: state.unreadable_calls, fields: state.unreadable_fields },
    catch_up: state.catch_up,
    deleted_calls_marked: state.deleted_marked,
    ...(state.slices ? { slices: state.slices } : {}),
  };
}

/** The Retry-After still being waited out by an active job, else null. */
function waitingUntilOf(row: JobRow, state: JobEngineState, now: Date): string | null {
  if (state.not_before === null) return null;
  if (row.status !== "pending" && row.status !== "in_progress") return null;
  return microsFromIso(state.not_before) > now.getTime() * 1000 ? state.not_before : null;
}

export function jobProgress(
  row: JobRow,
  { now, leaseSeconds }: ViewOptions,
  waitingUntil: string | null = null,
): JobProgress {
  const nowMicros = now.getTime() * 1000;

  // The measures: processed of total_calls, imported of max_calls, each where known.
  const measures: { ratio: number; left: number }[] = [];
  if (row.total_calls !== null && row.total_calls > 0) {
    measures.push({
      ratio: row.processed_calls / row.total_calls,
      left: Math.max(0, row.total_calls - row.processed_calls),
    });
  }
  if (row.max_calls !== null && row.max_calls > 0) {
    measures.push({
      ratio: row.imported_calls / row.max_calls,
      left: Math.max(0, row.max_calls - row.imported_calls),
    });
  }
  // The larger ratio gives the fraction; on a tie, the measure that ends first.
  const leading = measures.reduce<{ ratio: number; left: number } | null>(
    (best, m) =>
      best === null || m.ratio > best.ratio || (m.ratio === best.ratio && m.left < best.left)
        ? m
        : best,
    null,
  );

  const fraction = row.status === "completed"
    ? 1
    : leading === null
    ? null
    : Math.min(leading.ratio, FRACTION_CAP);

  let callsPerMinute: number | null = null;
  if (row.started_at !== null) {
    const end = row.completed_at !== null ? microsFromIso(row.completed_at) : nowMicros;
    const elapsedMicros = end - microsFromIso(row.started_at);
    if (elapsedMicros > 0) callsPerMinute = row.processed_calls * 60e6 / elapsedMicros;
  }

  const etaSeconds = row.status === "in_progress" && callsPerMinute !== null &&
      callsPerMinute > 0 && leading !== null
    ? Math.ceil(leading.left * 60 / callsPerMinute)
    : null;

  const lastSign = row.last_activity_at ?? row.started_at;
  const stallMicros = Math.max(2 * leaseSeconds, MIN_STALL_SECONDS) * 1e6;
  // Waiting out a Retry-After is not stalling: the job is idle because Ultravox asked.
  const stalled = row.status === "in_progress" && lastSign !== null && waitingUntil === null &&
    nowMicros - microsFromIso(lastSign) > stallMicros;

  return { fraction, calls_per_minute: callsPerMinute, eta_seconds: etaSeconds, stalled };
}
