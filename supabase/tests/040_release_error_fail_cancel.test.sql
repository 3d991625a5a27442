-- release_sync_job, record_sync_error, fail_sync_job, cancel_sync_job: each names the state
-- it expects; a caller that lost the race gets no row and changes nothing. Attempts are counted
-- by the claim (021) and reset only by a landed page; release and errors never reset them.
begin;
create extension if not exists pgtap with schema extensions;
select plan(60);

create function pg_temp.job(p_n int) returns uuid language sql immutable as $$
  select ('040c0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
insert into public.agencies (id, name)
select ('040a0000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, format('Transition agency %s', n)
  from generate_series(1, 10) as n;
-- Jobs 1-4 in progress at cursor c1, held by H1 until 10:02:00; job 5 pending; 6 completed; 7 failed.
insert into public.historical_sync_jobs (id, agency_id, date_to, status, cursor, started_at, completed_at)
select pg_temp.job(n), ('040a0000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, '2026-01-31T23:59:59Z',
       s::public.sync_job_status, case when n <= 4 then 'c1' end,
       case when s <> 'pending' then '2026-02-01T09:00:00Z'::timestamptz end,
       case when s in ('completed', 'failed') then '2026-02-01T09:30:00Z'::timestamptz end
  from (values (1, 'in_progress'), (2, 'in_progress'), (3, 'in_progress'), (4, 'in_progress'),
               (5, 'pending'), (6, 'completed'), (7, 'failed')) as v(n, s);
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts)
select pg_temp.job(n), '040d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 3
  from generate_series(1, 4) as n;

-- ══ release_sync_job ═════════════════════════════════════════════════════════════════
select is_empty(
  format($$ select * from public.release_sync_job(%L, '040d0000-0000-4000-8000-000000000002') $$, pg_temp.job(1)),
  'H2 cannot release the lease H1 holds');
select results_eq(
  format($$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values ('040d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:02:00Z'::timestamptz, 3) $$,
  'after H2''s attempt H1 still holds job 1 until 10:02:00 with 3 failed attempts');
select results_eq(
  format($$ select job_id, holder, expires_at, failed_attempts, not_before
              from public.release_sync_job(%L, '040d0000-0000-4000-8000-000000000001') $$, pg_temp.job(1)),
  format($$ values (%L::uuid, null::uuid, null::timestamptz, 3, null::timestamptz) $$, pg_temp.job(1)),
  'H1 releases its lease: no holder, no expiry, no not_before, and its 3 attempts kept (only a landed page resets them)');
select is(
  (select status::text from public.historical_sync_jobs where id = pg_temp.job(1)),
  'in_progress', 'releasing leaves the job in progress');
select is_empty(
  format($$ select * from public.release_sync_job(%L, '040d0000-0000-4000-8000-000000000001') $$, pg_temp.job(1)),
  'releasing a lease already released returns no row');
select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000002', 1, 60, pg_temp.job(1),
                                                    '2026-02-01T10:00:00Z')),
  1, 'a released job is claimable at once, long before the old lease would have expired');

-- ══ release_sync_job with p_not_before: a Retry-After too long to wait out ════════════
-- Job 9 is held by H1 after its second claim (2 attempts), job 10 (oddly) with 0 attempts.
insert into public.historical_sync_jobs (id, agency_id, date_to, status, cursor, started_at)
select pg_temp.job(n), ('040a0000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, '2026-01-31T23:59:59Z',
       'in_progress', 'c3', '2026-02-01T09:00:00Z'
  from generate_series(9, 10) as n;
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts, last_problem)
values (pg_temp.job(9), '040d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 2, 'HTTP 503'),
       (pg_temp.job(10), '040d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 0, null);
select is_empty(
  format($$ select * from public.release_sync_job(%L, '040d0000-0000-4000-8000-000000000002',
              '2026-02-01T10:10:00Z') $$, pg_temp.job(9)),
  'H2 cannot release, with not_before, the lease H1 holds');
select results_eq(
  format($$ select holder, failed_attempts, not_before from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(9)),
  $$ values ('040d0000-0000-4000-8000-000000000001'::uuid, 2, null::timestamptz) $$,
  'and H2''s attempt set no not_before and took back no attempt');
select results_eq(
  format($$ select holder, expires_at, failed_attempts, not_before, last_problem
              from public.release_sync_job(%L, '040d0000-0000-4000-8000-000000000001',
                                           '2026-02-01T10:10:00Z') $$, pg_temp.job(9)),
  $$ values (null::uuid, null::timestamptz, 1, '2026-02-01T10:10:00Z'::timestamptz, 'HTTP 503') $$,
  'H1 releases job 9 with not_before 10:10: lease dropped, not_before set, the claim''s attempt taken back (2 → 1)');
select is_empty(
  format($$ select * from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000002', 1, 60, %L,
                                                 '2026-02-01T10:09:59.999999Z') $$, pg_temp.job(9)),
  'job 9 is not claimable one microsecond before its not_before');
select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000002', 1, 60, pg_temp.job(9),
                                                    '2026-02-01T10:10:00Z')),
  1, 'job 9 is claimable at exactly its not_before');
select results_eq(
  format($$ select holder, failed_attempts, not_before from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(9)),
  $$ values ('040d0000-0000-4000-8000-000000000002'::uuid, 2, null::timestamptz) $$,
  'that claim clears not_before and counts an attempt again (1 → 2)');
select results_eq(
  format($$ select failed_attempts, not_before from public.release_sync_job(%L,
              '040d0000-0000-4000-8000-000000000001', '2026-02-01T10:10:00Z') $$, pg_temp.job(10)),
  $$ values (0, '2026-02-01T10:10:00Z'::timestamptz) $$,
  'releasing with not_before never takes failed_attempts below 0');

-- ══ record_sync_error: notes the problem; the claim counted the attempt ══════════════
-- Job 2 was claimed once by H1: its first attempt is counted.
update public.historical_sync_job_leases set failed_attempts = 1 where job_id = pg_temp.job(2);
select is_empty(
  format($$ select * from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000002', 'c1',
              'HTTP 503', 3, '2026-02-01T10:00:01Z') $$, pg_temp.job(2)),
  'an error reported by H2, who does not hold the lease, returns no row');
select is_empty(
  format($$ select * from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000001', 'c0',
              'HTTP 503', 3, '2026-02-01T10:00:01Z') $$, pg_temp.job(2)),
  'an error reported at a stale cursor returns no row');
select results_eq(
  format($$ select error_message, last_error_at, failed_attempts, last_problem from public.historical_sync_jobs j
              join public.historical_sync_job_leases l on l.job_id = j.id where j.id = %L $$, pg_temp.job(2)),
  $$ values (null::text, null::timestamptz, 1, null::text) $$,
  'the two fenced errors recorded nothing: no message, no problem, still 1 attempt');

select results_eq(
  format($$ select status::text, error_message, last_error_at, completed_at
              from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000001', 'c1',
                     'Ultravox answered 503 three times', 3, '2026-02-01T10:00:02Z') $$, pg_temp.job(2)),
  $$ values ('in_progress', 'Ultravox answered 503 three times', '2026-02-01T10:00:02Z'::timestamptz, null::timestamptz) $$,
  'an error in attempt 1 of 3 records the message and keeps the job in progress');
select results_eq(
  format($$ select holder, expires_at, failed_attempts, last_problem from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(2)),
  $$ values (null::uuid, null::timestamptz, 1, 'Ultravox answered 503 three times') $$,
  'the error releases the lease, keeps it as last_problem and counts no further attempt (still 1)');
select is_empty(
  format($$ select * from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000001', 'c1',
              'again', 3, '2026-02-01T10:00:03Z') $$, pg_temp.job(2)),
  'once released, the same worker cannot record a second error without claiming again');

select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000001', 1, 60, pg_temp.job(2),
                                                    '2026-02-01T10:01:00Z')),
  1, 'the next tick claims job 2 again');
select is(
  (select failed_attempts from public.historical_sync_job_leases where job_id = pg_temp.job(2)),
  2, 'that claim counts attempt 2');
select results_eq(
  format($$ select status::text, error_message from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000001',
              'c1', 'timeout', 3, '2026-02-01T10:01:01Z') $$, pg_temp.job(2)),
  $$ values ('in_progress', 'timeout') $$,
  'an error in attempt 2 of 3, one short of the limit, keeps the job in progress');
select results_eq(
  format($$ select failed_attempts, last_problem from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(2)),
  $$ values (2, 'timeout') $$,
  'failed_attempts stays 2 and last_problem is the latest, timeout');

select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000001', 1, 60, pg_temp.job(2),
                                                    '2026-02-01T10:02:00Z')),
  1, 'the next tick claims job 2 once more, for attempt 3');
select results_eq(
  format($$ select status::text, error_message, last_error_at, completed_at
              from public.record_sync_error(%L, '040d0000-0000-4000-8000-000000000001', 'c1',
                     'connection reset', 3, '2026-02-01T10:02:01Z') $$, pg_temp.job(2)),
  $$ values ('failed', 'connection reset (gave up after 3 attempts)', '2026-02-01T10:02:01Z'::timestamptz,
             '2026-02-01T10:02:01Z'::timestamptz) $$,
  'an error in attempt 3 of 3 fails the job for good, with completed_at and a message saying it gave up');
select results_eq(
  format($$ select holder, failed_attempts, last_problem from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(2)),
  $$ values (null::uuid, 3, 'connection reset') $$,
  'the failed job''s lease is released with 3 attempts counted');
select is_empty(
  format($$ select * from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000001', 1, 60, %L,
                                                 '2026-02-01T10:03:00Z') $$, pg_temp.job(2)),
  'a job failed after its attempts is never claimed again');

-- A page that lands starts the count again. Job 3 is held after its third claim.
select is(
  (select status::text from public.record_sync_error(pg_temp.job(3), '040d0000-0000-4000-8000-000000000001', 'c1',
     'HTTP 500', 10, '2026-02-01T10:00:01Z')),
  'in_progress', 'job 3, in its attempt 3 of 10 allowed, records an error and stays in progress');
select is(
  (select failed_attempts from public.historical_sync_job_leases where job_id = pg_temp.job(3)),
  3, 'job 3 still counts 3 attempts: the error counted none');
select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000001', 1, 60, pg_temp.job(3),
                                                    '2026-02-01T10:01:00Z')),
  1, 'job 3 is claimed again, for attempt 4');
select is(
  (select processed_calls from public.record_sync_page(pg_temp.job(3), '040d0000-0000-4000-8000-000000000001', 'c1', 'c2',
     '[]'::jsonb, '[]'::jsonb, null, 60, '2026-02-01T10:01:01Z')),
  0, 'job 3 records an empty page');
select results_eq(
  format($$ select failed_attempts, last_problem from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(3)),
  $$ values (0, null::text) $$,
  'the landed page resets failed_attempts from 4 to 0 and clears last_problem HTTP 500');
select results_eq(
  format($$ select status::text, error_message from public.record_sync_error(%L,
              '040d0000-0000-4000-8000-000000000001', 'c2', 'HTTP 502', 1, '2026-02-01T10:01:02Z') $$, pg_temp.job(3)),
  $$ values ('in_progress', 'HTTP 502') $$,
  'an error after the landed page, in the same claim, is within 0 attempts: even with p_max_attempts 1 the job stays in progress');
select is(
  (select count(*)::int from public.claim_sync_jobs('040d0000-0000-4000-8000-000000000001', 1, 60, pg_temp.job(3),
                                                    '2026-02-01T10:01:03Z', 1)),
  1, 'with p_max_attempts 1, job 3 (0 attempts since the page) is claimed for its 1 attempt');
select results_eq(
  format($$ select status::text, error_message from public.record_sync_error(%L,
              '040d0000-0000-4000-8000-000000000001', 'c2', 'HTTP 502', 1, '2026-02-01T10:01:04Z') $$, pg_temp.job(3)),
  $$ values ('failed', 'HTTP 502 (gave up after 1 attempts)') $$,
  'an error in that attempt, 1 of 1, fails the job');
select is(
  (select failed_attempts from public.historical_sync_job_leases where job_id = pg_temp.job(3)),
  1, 'counting exactly 1 attempt since the landed page');
select is(
  (select count(*)::int from public.record_sync_error(pg_temp.job(6), '040d0000-0000-4000-8000-000000000001', null,
     'HTTP 500', 3, '2026-02-01T10:00:01Z')),
  0, 'an error on a completed job returns no row');

-- ══ fail_sync_job: fenced like a page step ═══════════════════════════════════════════
select is_empty(
  format($$ select * from public.fail_sync_job(%L, '040d0000-0000-4000-8000-000000000002', 'c1',
              'Ultravox rejected the API key (401).', '2026-02-01T10:00:05Z') $$, pg_temp.job(4)),
  'H2, who does not hold the lease, cannot fail job 4');
select is_empty(
  format($$ select * from public.fail_sync_job(%L, '040d0000-0000-4000-8000-000000000001', 'c0',
              'Ultravox rejected the API key (401).', '2026-02-01T10:00:05Z') $$, pg_temp.job(4)),
  'H1 at a stale cursor cannot fail job 4');
select results_eq(
  format($$ select status::text, error_message, completed_at from public.historical_sync_jobs where id = %L $$, pg_temp.job(4)),
  $$ values ('in_progress', null::text, null::timestamptz) $$,
  'job 4 is untouched by both fenced attempts');
select results_eq(
  format($$ select status::text, error_message, last_error_at, completed_at, cursor
              from public.fail_sync_job(%L, '040d0000-0000-4000-8000-000000000001', 'c1',
                     'Ultravox rejected the API key (401).', '2026-02-01T10:00:06Z') $$, pg_temp.job(4)),
  $$ values ('failed', 'Ultravox rejected the API key (401).', '2026-02-01T10:00:06Z'::timestamptz,
             '2026-02-01T10:00:06Z'::timestamptz, 'c1') $$,
  'the holder fails job 4 at once: failed, completed_at and last_error_at p_now, the message kept');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(4)),
  $$ values (null::uuid, null::timestamptz) $$,
  'failing the job releases the lease');
select is_empty(
  format($$ select * from public.fail_sync_job(%L, '040d0000-0000-4000-8000-000000000001', 'c1',
              'again', '2026-02-01T10:00:07Z') $$, pg_temp.job(4)),
  'failing an already failed job returns no row');
select is(
  (select error_message from public.historical_sync_jobs where id = pg_temp.job(4)),
  'Ultravox rejected the API key (401).', 'and keeps the first message');

-- ══ cancel_sync_job ══════════════════════════════════════════════════════════════════
select results_eq(
  format($$ select status::text, completed_at, last_activity_at
              from public.cancel_sync_job(%L, '2026-02-01T10:05:00Z') $$, pg_temp.job(5)),
  $$ values ('cancelled', '2026-02-01T10:05:00Z'::timestamptz, '2026-02-01T10:05:00Z'::timestamptz) $$,
  'cancelling a pending job returns it cancelled with completed_at p_now');

insert into public.historical_sync_jobs (id, agency_id, date_to, status, cursor, started_at)
values (pg_temp.job(8), '040a0000-0000-4000-8000-000000000008', '2026-01-31T23:59:59Z', 'in_progress', 'c1', '2026-02-01T09:00:00Z');
insert into public.historical_sync_job_leases (job_id, holder, expires_at)
values (pg_temp.job(8), '040d0000-0000-4000-8000-000000000001', '2026-02-01T10:07:00Z');
select results_eq(
  format($$ select status::text, completed_at, cursor from public.cancel_sync_job(%L, '2026-02-01T10:05:01Z') $$, pg_temp.job(8)),
  $$ values ('cancelled', '2026-02-01T10:05:01Z'::timestamptz, 'c1') $$,
  'cancelling an in-progress job returns it cancelled with completed_at p_now');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(8)),
  $$ values (null::uuid, null::timestamptz) $$,
  'cancelling releases the worker''s lease');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '040d0000-0000-4000-8000-000000000001', 'c1', 'c2',
              '[{"ord": 0, "ultravox_call_id": "040e0000-0000-4000-8000-000000000001", "created_at": "2026-01-02T00:00:00Z", "raw": {}}]'::jsonb,
              '[]'::jsonb, null, 60, '2026-02-01T10:05:02Z') $$, pg_temp.job(8)),
  'a page the former holder records after the cancel returns no row');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = '040e0000-0000-4000-8000-000000000001'),
  0, 'no call lands for the job once the cancel returned');

select is_empty(
  format($$ select * from public.cancel_sync_job(%L, '2026-02-01T10:06:00Z') $$, pg_temp.job(8)),
  'cancelling a cancelled job again returns no row (the caller treats that as idempotent)');
select is(
  (select completed_at from public.historical_sync_jobs where id = pg_temp.job(8)),
  '2026-02-01T10:05:01Z'::timestamptz, 'the second cancel leaves completed_at from the first');
select is_empty(
  format($$ select * from public.cancel_sync_job(%L, '2026-02-01T10:06:00Z') $$, pg_temp.job(6)),
  'cancelling a completed job returns no row');
select results_eq(
  format($$ select status::text, completed_at from public.historical_sync_jobs where id = %L $$, pg_temp.job(6)),
  $$ values ('completed', '2026-02-01T09:30:00Z'::timestamptz) $$,
  'the completed job stays completed with its completed_at');
select is_empty(
  format($$ select * from public.cancel_sync_job(%L, '2026-02-01T10:06:00Z') $$, pg_temp.job(7)),
  'cancelling a failed job returns no row');
select is(
  (select status::text from public.historical_sync_jobs where id = pg_temp.job(7)),
  'failed', 'the failed job stays failed');
select is_empty(
  $$ select * from public.cancel_sync_job('040c0000-0000-4000-8000-0000000000ff', '2026-02-01T10:06:00Z') $$,
  'cancelling an unknown job returns no row');
select is(
  (select count(*)::int from public.create_sync_job('040a0000-0000-4000-8000-000000000008', null,
     '2026-03-31Z', 100, '2026-02-01T10:07:00Z')),
  1, 'after the cancel the agency may start a new job');
select is(
  (select completed_at = now() from public.cancel_sync_job(
     (select id from public.historical_sync_jobs where agency_id = '040a0000-0000-4000-8000-000000000008' and status = 'pending'))),
  true, 'without p_now, cancel stamps completed_at with now()');

select ok(
  (select bool_and(prosecdef and proconfig = array['search_path=""']) from pg_proc
    where oid in ('public.release_sync_job(uuid, uuid, timestamptz)'::regprocedure,
                  'public.record_sync_error(uuid, uuid, text, text, integer, timestamptz)'::regprocedure,
                  'public.fail_sync_job(uuid, uuid, text, text, timestamptz)'::regprocedure,
                  'public.cancel_sync_job(uuid, timestamptz)'::regprocedure)),
  'release, error, fail and cancel are security definer with an empty search_path');
select function_privs_are('public', 'release_sync_job', array['uuid', 'uuid', 'timestamp with time zone'],
  'service_role', array['EXECUTE'], 'service_role may execute release_sync_job(uuid, uuid, timestamptz)');

select * from finish();
rollback;
