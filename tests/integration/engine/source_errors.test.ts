// What Ultravox's errors do to a job: rejected or rotated keys, a wrong base URL, transient failures and attempts.
// The harness and its helpers: tests/support/engine.ts.
import assert from "node:assert/strict";
import { account, harness, ids, importedIds, jobState } from "../../support/engine.ts";

const REJECTED_KEY_MESSAGE = "Ultravox rejected the API key (HTTP 403). " +
  "Set a valid key for this agency with set_agency_ultravox_api_key.";

Deno.test("a rejected key fails the job at once with a message a user can act on", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.setKey("other");

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(job.error_message, REJECTED_KEY_MESSAGE);
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.processed_calls, 0);
  assert.equal(job.lease_holder, null);
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].status, 403);
  assert.deepEqual(h.sleeps, []);
});

Deno.test("a key rejected mid-walk keeps the pages already imported and fails the job", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "pass" }, { kind: "status", status: 403 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 1, imported: 5, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(job.error_message, REJECTED_KEY_MESSAGE);
  assert.equal(job.processed_calls, 5);
  assert.equal(job.cursor, h.fake.requests[1].query.cursor);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls.slice(0, 5)));
  assert.equal(h.fake.requests.length, 2);
});

Deno.test("a key rotated mid-walk is a transient error: the next run uses the new key", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  let requests = 0;
  // The agency rotates its key while the run is walking: Ultravox then refuses the old one.
  const rotatingFetch: typeof fetch = async (input, init) => {
    if (++requests === 2) {
      h.fake.setKey("Rt9xQ2wE.newkey0123456789abcdefghijklmnopq");
      await h.sql`select public.set_agency_ultravox_api_key(${agencyId}, ${h.fake.apiKey})`;
    }
    return await fetch(input, init);
  };

  const first = await h.run(jobId, { SYNC_PAGE_SIZE: 5 }, { fetch: rotatingFetch });

  assert.deepEqual(first.jobs, [
    {
      id: jobId,
      status: "in_progress",
      pages: 1,
      imported: 5,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(
    job.error_message,
    "Ultravox rejected the API key this run started with; a new key has been set since and " +
      "the next run uses it.",
  );
  assert.equal(job.lease_holder, null);

  const second = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  assert.deepEqual(second.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 10, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

Deno.test("an agency without a key fails its job without asking Ultravox", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency({ key: null });
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId);

  assert.deepEqual(run.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(
    job.error_message,
    "No Ultravox API key is set for this agency. Set one with set_agency_ultravox_api_key, " +
      "then start a new sync.",
  );
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, true);
  assert.equal(job.lease_holder, null);
  assert.equal(h.fake.requests.length, 0);
});

Deno.test("a wrong ULTRAVOX_API_BASE (404) fails the job naming the setting", async () => {
  await using h = await harness({ calls: account(5) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);

  const run = await h.run(jobId, { ULTRAVOX_API_BASE: h.fake.baseUrl.replace(/\/api$/, "") });

  assert.equal(run.jobs[0].status, "failed");
  const job = await jobState(h.sql, jobId);
  assert.equal(
    job.error_message,
    "Ultravox has no /calls (HTTP 404). Check ULTRAVOX_API_BASE: it must be the API root, " +
      "ending with /api.",
  );
  assert.equal(h.fake.requests.length, 1);
  assert.equal(h.fake.requests[0].path, "/calls");
});

Deno.test("a page that keeps failing transiently leaves the job in progress, released, one attempt counted", async () => {
  await using h = await harness({ calls: account(8) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "status", status: 503, retryAfter: "2", times: 5 });

  const run = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });

  assert.deepEqual(run.jobs, [
    {
      id: jobId,
      status: "in_progress",
      pages: 0,
      imported: 0,
      skipped: 0,
      refreshed: 0,
      failed: 0,
    },
  ]);
  assert.equal(h.fake.requests.length, 5);
  assert.deepEqual(h.sleeps, [2000, 2000, 2000, 2000], "Retry-After honoured between attempts");
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "in_progress");
  assert.equal(job.error_message, "Ultravox kept failing (HTTP 503) after 5 attempts");
  assert.equal(job.has_last_error_at, true);
  assert.equal(job.has_completed_at, false);
  assert.equal(job.lease_holder, null);
  assert.equal(job.failed_attempts, 1);
  assert.equal(job.processed_calls, 0);

  // The next invocation claims it at once and finishes the walk.
  const next = await h.run(jobId, { SYNC_PAGE_SIZE: 5 });
  assert.deepEqual(next.jobs, [
    { id: jobId, status: "completed", pages: 2, imported: 8, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  assert.equal((await jobState(h.sql, jobId)).failed_attempts, 0);
});

Deno.test("after SYNC_MAX_ATTEMPTS failed invocations in a row the job fails for good", async () => {
  await using h = await harness({ calls: account(8) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push({ kind: "status", status: 503, times: 15 });
  const cfg = { SYNC_PAGE_SIZE: 5, SYNC_MAX_ATTEMPTS: 3 };

  for (const attempt of [1, 2]) {
    assert.equal((await h.run(jobId, cfg)).jobs[0].status, "in_progress");
    const job = await jobState(h.sql, jobId);
    assert.equal(job.failed_attempts, attempt);
    assert.equal(job.lease_holder, null);
  }
  const third = await h.run(jobId, cfg);

  assert.deepEqual(third.jobs, [
    { id: jobId, status: "failed", pages: 0, imported: 0, skipped: 0, refreshed: 0, failed: 0 },
  ]);
  const job = await jobState(h.sql, jobId);
  assert.equal(job.status, "failed");
  assert.equal(
    job.error_message,
    "Ultravox kept failing (HTTP 503) after 5 attempts (gave up after 3 attempts)",
  );
  assert.equal(job.has_completed_at, true);
  assert.equal(h.fake.requests.length, 15);
  assert.equal(h.sleeps.length, 12, "4 backoffs per invocation");
  assert.deepEqual((await h.run(jobId, cfg)).jobs, []);
  assert.equal(h.fake.requests.length, 15);
});

Deno.test("a successful page resets the count of failed invocations", async () => {
  await using h = await harness({ calls: account(15) });
  const agencyId = await h.agency();
  const jobId = await h.job(agencyId);
  h.fake.faults.push(
    { kind: "status", status: 503, times: 10 }, // invocations 1 and 2
    { kind: "pass" }, // invocation 3: page 1
    { kind: "status", status: 502, times: 10 }, // invocations 4 and 5
  );
  const cfg = { SYNC_PAGE_SIZE: 5, SYNC_MAX_PAGES_PER_RUN: 1, SYNC_MAX_ATTEMPTS: 3 };
  const attempts: (number | null)[] = [];
  const statuses: string[] = [];
  for (let i = 0; i < 7; i++) {
    statuses.push((await h.run(jobId, cfg)).jobs[0].status);
    attempts.push((await jobState(h.sql, jobId)).failed_attempts);
  }

  assert.deepEqual(attempts, [1, 2, 0, 1, 2, 0, 0]);
  assert.deepEqual(statuses, [
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "in_progress",
    "completed",
  ]);
  const job = await jobState(h.sql, jobId);
  assert.deepEqual(
    [job.processed_calls, job.imported_calls, job.skipped_calls, job.failed_calls],
    [15, 15, 0, 0],
  );
  assert.deepEqual(await importedIds(h.sql, jobId), ids(h.fake.calls));
});

// ---- invalid call objects --------------------------------------------------------------------
