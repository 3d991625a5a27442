import assert from "node:assert/strict";
import { jobProgress, type JobRow, toJobView } from "../../supabase/functions/_shared/jobs/view.ts";

const LEASE = 120;

function job(fields: Partial<JobRow> = {}): JobRow {
  return {
    id: "7b3f0d2e-1c4a-4e8b-9f00-000000000001",
    agency_id: "7b3f0d2e-1c4a-4e8b-9f00-000000000002",
    date_from: null,
    date_to: "2026-11-28T23:59:59.999999Z",
    status: "in_progress",
    total_calls: null,
    processed_calls: 0,
    imported_calls: 0,
    skipped_calls: 0,
    failed_calls: 0,
    cursor: "opaque-cursor",
    error_message: null,
    last_error_at: null,
    max_calls: null,
    created_at: "2026-11-29T10:00:00.000000Z",
    started_at: "2026-11-29T10:00:00.000000Z",
    completed_at: null,
    last_activity_at: "2026-11-29T10:00:00.000000Z",
    ...fields,
  };
}

const at = (iso: string) => ({ now: new Date(iso), leaseSeconds: LEASE });

Deno.test("the view drops cursor and keeps every other column as stored", () => {
  const row = job({ date_from: "2026-01-01T00:00:00.123456Z" });
  const view = toJobView(row, at("2026-11-29T10:01:00Z"));
  assert.equal("cursor" in view, false);
  const { cursor: _c, ...rest } = row;
  const {
    progress: _p,
    refreshed_calls,
    trigger,
    waiting_until,
    fields_unreadable,
    catch_up,
    deleted_calls_marked,
    ...columns
  } = view;
  assert.deepEqual(columns, rest);
  assert.equal(view.date_from, "2026-01-01T00:00:00.123456Z");
  // Without engine state: what a job the engine never touched reports.
  assert.deepEqual(
    { refreshed_calls, trigger, waiting_until, fields_unreadable, catch_up, deleted_calls_marked },
    {
      refreshed_calls: 0,
      trigger: "user",
      waiting_until: null,
      fields_unreadable: { count: 0, fields: [] },
      catch_up: false,
      deleted_calls_marked: 0,
    },
  );
});

Deno.test("the view carries the engine state, and a job waiting out a Retry-After is not stalled", () => {
  const row = job({ last_activity_at: "2026-11-29T09:00:00.000000Z" });
  const state = {
    refreshed_calls: 3,
    trigger: "schedule" as const,
    not_before: "2026-11-29T10:30:00.000001Z",
    unreadable_calls: 2,
    unreadable_fields: ["agentId", "billedDuration"],
    catch_up: true,
    deleted_marked: 1,
    slices: null,
  };
  const waiting = toJobView(row, at("2026-11-29T10:00:00Z"), state);
  assert.equal(waiting.waiting_until, "2026-11-29T10:30:00.000001Z");
  assert.equal(waiting.progress.stalled, false, "silent for an hour, but Ultravox asked to wait");
  assert.equal(waiting.refreshed_calls, 3);
  assert.equal(waiting.trigger, "schedule");
  assert.deepEqual(waiting.fields_unreadable, { count: 2, fields: ["agentId", "billedDuration"] });
  assert.equal(waiting.catch_up, true);
  assert.equal(waiting.deleted_calls_marked, 1);
  // Once not_before has passed the job is no longer waiting, and an hour of silence is a stall.
  const after = toJobView(row, at("2026-11-29T10:30:01Z"), state);
  assert.equal(after.waiting_until, null);
  assert.equal(after.progress.stalled, true);
  // A finished job waits for nothing.
  const done = toJobView(
    job({ status: "completed", completed_at: "2026-11-29T09:59:00.000000Z" }),
    at("2026-11-29T10:00:00Z"),
    state,
  );
  assert.equal(done.waiting_until, null);
});

Deno.test("a completed job has fraction 1 whatever its counters say", () => {
  const p = jobProgress(
    job({
      status: "completed",
      total_calls: 1000,
      processed_calls: 10,
      completed_at: "2026-11-29T10:02:00.000000Z",
    }),
    at("2026-11-29T11:00:00Z"),
  );
  assert.equal(p.fraction, 1);
  assert.equal(p.eta_seconds, null);
  assert.equal(p.stalled, false);
});

Deno.test("a pending job with neither total nor max_calls has no fraction, rate or eta", () => {
  const p = jobProgress(
    job({ status: "pending", started_at: null, last_activity_at: null, max_calls: null }),
    at("2026-11-29T10:05:00Z"),
  );
  assert.deepEqual(p, {
    fraction: null,
    calls_per_minute: null,
    eta_seconds: null,
    stalled: false,
  });
});

Deno.test("a pending job with max_calls reports fraction 0 and no rate", () => {
  const p = jobProgress(
    job({ status: "pending", started_at: null, last_activity_at: null, max_calls: 100 }),
    at("2026-11-29T10:05:00Z"),
  );
  assert.deepEqual(p, { fraction: 0, calls_per_minute: null, eta_seconds: null, stalled: false });
});

Deno.test("fraction is processed/total_calls when only the total is known", () => {
  const p = jobProgress(
    job({ total_calls: 400, processed_calls: 100, imported_calls: 100 }),
    at("2026-11-29T10:02:00Z"),
  );
  assert.equal(p.fraction, 0.25);
  assert.equal(p.calls_per_minute, 50); // 100 calls in 2 minutes
  assert.equal(p.eta_seconds, 360); // 300 left at 50/min
});

Deno.test("fraction is the larger measure and eta uses that measure's calls left", () => {
  // processed/total = 100/1000 = 0.1, imported/max = 80/100 = 0.8 → 20 imports left
  const p = jobProgress(
    job({
      total_calls: 1000,
      processed_calls: 100,
      imported_calls: 80,
      skipped_calls: 20,
      max_calls: 100,
    }),
    at("2026-11-29T10:01:00Z"),
  );
  assert.equal(p.fraction, 0.8);
  assert.equal(p.calls_per_minute, 100);
  assert.equal(p.eta_seconds, 12); // 20 left at 100/min
});

Deno.test("fraction stays below 1 until the job completes", () => {
  const p = jobProgress(
    job({ total_calls: 10, processed_calls: 10, imported_calls: 10 }),
    at("2026-11-29T10:01:00Z"),
  );
  assert.equal(p.fraction, 0.9999);
  assert.equal(p.eta_seconds, 0);
});

Deno.test("calls_per_minute counts from started_at to completed_at for a finished job", () => {
  const p = jobProgress(
    job({
      status: "cancelled",
      processed_calls: 90,
      completed_at: "2026-11-29T10:00:30.000000Z",
    }),
    at("2026-11-29T12:00:00Z"),
  );
  assert.equal(p.calls_per_minute, 180); // 90 calls in 30 s
  assert.equal(p.eta_seconds, null); // not in progress
});

Deno.test("durations keep sub-millisecond precision of the stored timestamps", () => {
  // 60 calls between .000000 and 10 s + 500 µs later
  const p = jobProgress(
    job({
      status: "completed",
      processed_calls: 60,
      started_at: "2026-11-29T10:00:00.000000Z",
      completed_at: "2026-11-29T10:00:10.000500Z",
    }),
    at("2026-11-29T12:00:00Z"),
  );
  assert.equal(p.calls_per_minute, 60 * 60e6 / 10_000_500);
});

Deno.test("a running job with no processed calls has rate 0 and no eta", () => {
  const p = jobProgress(job({ max_calls: 100 }), at("2026-11-29T10:00:30Z"));
  assert.equal(p.calls_per_minute, 0);
  assert.equal(p.eta_seconds, null);
});

Deno.test("stalled flips one millisecond past max(2 × lease, 120 s) of silence", () => {
  const row = job({ last_activity_at: "2026-11-29T10:00:00.000000Z" });
  assert.equal(jobProgress(row, at("2026-11-29T10:04:00.000Z")).stalled, false); // exactly 240 s
  assert.equal(jobProgress(row, at("2026-11-29T10:04:00.001Z")).stalled, true);
});

Deno.test("a short lease still waits 120 s before calling a job stalled", () => {
  const row = job({ last_activity_at: "2026-11-29T10:00:00.000000Z" });
  const short = (iso: string) => ({ now: new Date(iso), leaseSeconds: 30 });
  assert.equal(jobProgress(row, short("2026-11-29T10:01:59Z")).stalled, false);
  assert.equal(jobProgress(row, short("2026-11-29T10:02:01Z")).stalled, true);
});

Deno.test("only an in-progress job can be stalled", () => {
  const old = { last_activity_at: "2026-11-29T10:00:00.000000Z" };
  for (const status of ["pending", "completed", "failed", "cancelled"] as const) {
    assert.equal(jobProgress(job({ ...old, status }), at("2026-11-30T00:00:00Z")).stalled, false);
  }
});
