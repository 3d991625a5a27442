-- record_sync_page: one page step in one transaction, fenced on status, lease holder and
-- cursor; counters always add up; max_calls cut from the rows really inserted; range
-- bounds inclusive at microsecond precision; completion at the end of the walk or the cap.
begin;
create extension if not exists pgtap with schema extensions;
select plan(54);

-- ── helpers ─────────────────────────────────────────────────────────────────────────
-- Call ids of this file: 030e0000-0000-4000-8000-<12 digits>.
create function pg_temp.cid(p_n bigint) returns uuid language sql immutable as $$
  select ('030e0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
-- One mapped call as the processor sends it (only id and created set; the rest null).
create function pg_temp.uv(p_ord int, p_n bigint, p_created text) returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'ord', p_ord, 'ultravox_call_id', pg_temp.cid(p_n), 'ultravox_agent_id', null,
    'created_at', p_created, 'joined_at', null, 'ended_at', null, 'end_reason', null,
    'duration_seconds', null, 'billed_duration_seconds', null, 'short_summary', null,
    'summary', null, 'recording_enabled', null, 'metadata', null,
    'raw', jsonb_build_object('callId', pg_temp.cid(p_n), 'created', p_created))
$$;
create function pg_temp.job(p_n int) returns uuid language sql immutable as $$
  select ('030c0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;

-- ── fixtures ────────────────────────────────────────────────────────────────────────
-- One agency per job (one active job per agency), plus agency 99 that already holds calls 9001, 9002.
insert into public.agencies (id, name)
select ('030a0000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid, format('Page agency %s', n)
  from unnest(array[1, 2, 3, 4, 5, 6, 10, 11, 12, 99]) as n;
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source) values
  ('030a0000-0000-4000-8000-000000000099', pg_temp.cid(9001), '2026-01-10T00:00:00Z', '{}', 'webhook'),
  ('030a0000-0000-4000-8000-000000000099', pg_temp.cid(9002), '2025-12-31T23:59:59.999999Z', '{}', 'webhook');

-- Every job: January 2026, in progress since T0 = 2026-02-01T10:00:00Z, held by H1 until T0 + 120 s.
insert into public.historical_sync_jobs (id, agency_id, date_from, date_to, status, max_calls, cursor, started_at)
select pg_temp.job(n), ('030a0000-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid,
       case when n = 3 then null else '2026-01-01T00:00:00Z'::timestamptz end,
       '2026-01-31T23:59:59.999999Z', 'in_progress',
       case n when 4 then 2 when 5 then 3 when 10 then 2 else null end,
       case when n = 6 then 'k1' end,
       '2026-02-01T10:00:00Z'
  from unnest(array[1, 2, 3, 4, 5, 6, 10, 11, 12]) as n;
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts)
select pg_temp.job(n), '030d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 2
  from unnest(array[1, 2, 3, 4, 5, 6, 10, 11, 12]) as n;

-- ══ job 1: a walk over three pages ═══════════════════════════════════════════════════
-- Page 1 at T1 = 10:00:05: three valid calls and one invalid one at position 2.
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'c1',
              %L::jsonb, %L::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(1),
    jsonb_build_array(
      jsonb_build_object(
        'ord', 0, 'ultravox_call_id', pg_temp.cid(1001),
        'ultravox_agent_id', '030f0000-0000-4000-8000-000000000001',
        'created_at', '2026-01-30T12:00:00.654321Z', 'joined_at', '2026-01-30T12:00:01.5Z',
        'ended_at', '2026-01-30T12:01:07Z', 'end_reason', 'hangup', 'duration_seconds', 65.5,
        'billed_duration_seconds', 66, 'short_summary', 'Short', 'summary', 'Long summary',
        'recording_enabled', true, 'metadata', jsonb_build_object('k', 'v'),
        'raw', jsonb_build_object('callId', pg_temp.cid(1001), 'created', '2026-01-30T12:00:00.654321Z')),
      pg_temp.uv(1, 1002, '2026-01-29T00:00:00Z'),
      pg_temp.uv(3, 1003, '2026-01-28T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 2, 'call_id', pg_temp.cid(1099), 'reason', 'created is not a date-time'))),
  $$ values ('in_progress'::public.sync_job_status, 4, 3, 0, 1, null::int, 3, 0, 1, 0) $$,
  'page 1 of job 1 imports 3 calls and fails 1: processed 4 = 3 + 0 + 1, still in progress');
select results_eq(
  format($$ select cursor, total_calls, last_activity_at, completed_at, error_message, last_error_at
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(1)),
  format($$ values ('c1', null::int, '2026-02-01T10:00:05Z'::timestamptz, null::timestamptz,
                    '1 call(s) failed validation and were not imported (latest: %s: created is not a date-time)',
                    '2026-02-01T10:00:05Z'::timestamptz) $$, pg_temp.cid(1099)),
  'after page 1 the cursor is c1, activity at T1, and error_message names the failed call and why');
select results_eq(
  format($$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values ('030d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:02:05Z'::timestamptz, 0) $$,
  'page 1 renews H1''s lease to T1 + 120 s and resets failed_attempts from 2 to 0');
select results_eq(
  format($$ select agency_id, ultravox_agent_id, created_at, joined_at, ended_at, end_reason, duration_seconds,
                   billed_duration_seconds, short_summary, summary, recording_enabled, metadata, raw, source,
                   historical_sync_job_id, imported_at
              from public.calls where ultravox_call_id = %L $$, pg_temp.cid(1001)),
  format($$ values ('030a0000-0000-4000-8000-000000000001'::uuid, '030f0000-0000-4000-8000-000000000001'::uuid,
                    '2026-01-30T12:00:00.654321Z'::timestamptz, '2026-01-30T12:00:01.5Z'::timestamptz,
                    '2026-01-30T12:01:07Z'::timestamptz, 'hangup', 65.5::numeric, 66::numeric, 'Short',
                    'Long summary', true, '{"k": "v"}'::jsonb,
                    '{"callId": "%s", "created": "2026-01-30T12:00:00.654321Z"}'::jsonb, 'historical_sync',
                    %L::uuid, '2026-02-01T10:00:05Z'::timestamptz) $$, pg_temp.cid(1001), pg_temp.job(1)),
  'call 1001 is stored with every field as sent, source historical_sync, the job id and imported_at = p_now');
select results_eq(
  format($$ select recording_enabled, metadata from public.calls where ultravox_call_id = %L $$, pg_temp.cid(1002)),
  $$ values (false, '{}'::jsonb) $$,
  'a call sent with recording_enabled and metadata null is stored with false and {}');
select is(
  (select count(*)::int from public.calls where historical_sync_job_id = pg_temp.job(1)),
  3, 'job 1 has 3 calls after page 1 (the invalid one is not stored)');

-- Page 2 at T2 = 10:00:10: call 9001 belongs to agency 99, call 1002 came on page 1.
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'c1', 'c2',
              %L::jsonb, '[]'::jsonb, 10, 120, '2026-02-01T10:00:10Z') $$,
    pg_temp.job(1),
    jsonb_build_array(pg_temp.uv(0, 1004, '2026-01-27T00:00:00Z'), pg_temp.uv(1, 9001, '2026-01-10T00:00:00Z'),
                      pg_temp.uv(2, 1002, '2026-01-29T00:00:00Z'), pg_temp.uv(3, 1005, '2026-01-26T00:00:00Z'))),
  $$ values ('in_progress'::public.sync_job_status, 8, 5, 2, 1, 10, 2, 2, 0, 0) $$,
  'page 2 imports 2 and skips 2 (one held by another agency, one already imported): processed 8 = 5 + 2 + 1; total taken as 10');
select results_eq(
  format($$ select agency_id, historical_sync_job_id, source from public.calls where ultravox_call_id = %L $$, pg_temp.cid(9001)),
  $$ values ('030a0000-0000-4000-8000-000000000099'::uuid, null::uuid, 'webhook') $$,
  'the skipped call 9001 still belongs to agency 99, untouched');
select results_eq(
  format($$ select error_message like '1 call(s) failed validation%%', last_error_at
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(1)),
  $$ values (true, '2026-02-01T10:00:05Z'::timestamptz) $$,
  'a page without failures leaves error_message and last_error_at from page 1');

-- Fenced attempts at T3 = 10:00:15 store nothing; a fenced-out worker drops its own lease,
-- never another holder's.
select is_empty(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000002', 'c2', 'c9',
              %L::jsonb, %L::jsonb, 99, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(1), jsonb_build_array(pg_temp.uv(0, 1006, '2026-01-25T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 1, 'call_id', 'x', 'reason', 'y'))),
  'a page from H2, who does not hold the lease, returns no row');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values ('030d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:02:10Z'::timestamptz) $$,
  'H2''s fenced page leaves H1''s lease as it was: another holder''s lease is never dropped');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'c1', 'c9',
              %L::jsonb, %L::jsonb, 99, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(1), jsonb_build_array(pg_temp.uv(0, 1006, '2026-01-25T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 1, 'call_id', 'x', 'reason', 'y'))),
  'a page of H1 fenced on a moved cursor (c1, the job is at c2) returns no row');
select results_eq(
  format($$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values (null::uuid, null::timestamptz, 0) $$,
  'fenced out on the moved cursor, H1 dropped its own lease (attempts untouched)');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(1006)),
  0, 'neither fenced page stored call 1006');
select results_eq(
  format($$ select cursor, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls, last_activity_at
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(1)),
  $$ values ('c2', 8, 5, 2, 1, 10, '2026-02-01T10:00:10Z'::timestamptz) $$,
  'neither fenced page moved the cursor, the counters, total_calls or last_activity_at');
-- H1 claims job 1 again (an attempt) and goes on from c2.
select is(
  (select count(*)::int from public.claim_sync_jobs('030d0000-0000-4000-8000-000000000001', 1, 120,
     pg_temp.job(1), '2026-02-01T10:00:15Z')),
  1, 'the dropped lease makes job 1 claimable at once: H1 claims it again');

-- Page 3, the last (next cursor null), at T3.
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'c2', null,
              %L::jsonb, '[]'::jsonb, 99, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(1), jsonb_build_array(pg_temp.uv(0, 1006, '2026-01-25T00:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 9, 6, 2, 1, 10, 1, 0, 0, 0) $$,
  'the last page (next cursor null) imports 1 and completes the job; total_calls stays 10, not 99');
select results_eq(
  format($$ select cursor, completed_at, last_activity_at, error_message, last_error_at
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(1)),
  format($$ values (null::text, '2026-02-01T10:00:15Z'::timestamptz, '2026-02-01T10:00:15Z'::timestamptz,
                    '1 call(s) failed validation and were not imported (latest: %s: created is not a date-time)',
                    '2026-02-01T10:00:05Z'::timestamptz) $$, pg_temp.cid(1099)),
  'the completed job has completed_at T3 and error_message still names the 1 counted failure and why');
select results_eq(
  format($$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values (null::uuid, null::timestamptz, 0) $$,
  'completion releases the lease and resets the attempt the re-claim counted');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:20Z') $$,
    pg_temp.job(1), jsonb_build_array(pg_temp.uv(0, 1007, '2026-01-24T00:00:00Z'))),
  'a page for the completed job returns no row');
select is(
  (select count(*)::int from public.calls where historical_sync_job_id = pg_temp.job(1)),
  6, 'job 1 ends with exactly its 6 imported calls');

-- ══ job 6: fences on a released lease and a cancelled job ═══════════════════════════
update public.historical_sync_job_leases set holder = null, expires_at = null where job_id = pg_temp.job(6);
select is_empty(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'k1', 'k2',
              %L::jsonb, '[]'::jsonb, 5, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(6), jsonb_build_array(pg_temp.uv(0, 6001, '2026-01-20T00:00:00Z'))),
  'a page after the lease was released returns no row');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  $$ values (null::uuid, null::timestamptz) $$,
  'and does not take the released lease back');

update public.historical_sync_job_leases
   set holder = '030d0000-0000-4000-8000-000000000001', expires_at = '2026-02-01T10:02:00Z'
 where job_id = pg_temp.job(6);
update public.historical_sync_jobs set status = 'cancelled', completed_at = '2026-02-01T10:00:04Z'
 where id = pg_temp.job(6);
select is_empty(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'k1', 'k2',
              %L::jsonb, %L::jsonb, 5, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(6), jsonb_build_array(pg_temp.uv(0, 6001, '2026-01-20T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 1, 'call_id', 'x', 'reason', 'y'))),
  'a page of a cancelled job, by the lease holder at the right cursor, returns no row');
select results_eq(
  format($$ select status::text, cursor, processed_calls, imported_calls, skipped_calls, failed_calls,
                   total_calls, completed_at, last_activity_at, error_message
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(6)),
  $$ values ('cancelled', 'k1', 0, 0, 0, 0, null::int, '2026-02-01T10:00:04Z'::timestamptz, null::timestamptz, null::text) $$,
  'the cancelled job keeps its cursor, zero counters and completed_at');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(6001)),
  0, 'no call of the cancelled job''s page was stored');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  $$ values (null::uuid, null::timestamptz) $$,
  'the fenced page did not renew the lease: H1, fenced out by the cancel, dropped it');

-- A lease past its expiry that nobody took over still belongs to its holder: the fence is the
-- holder, not the clock.
update public.historical_sync_jobs set status = 'in_progress', completed_at = null where id = pg_temp.job(6);
update public.historical_sync_job_leases
   set holder = '030d0000-0000-4000-8000-000000000001', expires_at = '2026-02-01T10:02:00Z'
 where job_id = pg_temp.job(6);
select results_eq(
  format($$ select status, imported_calls, page_imported from public.record_sync_page(%L,
              '030d0000-0000-4000-8000-000000000001', 'k1', 'k2', %L::jsonb, '[]'::jsonb, 5, 120,
              '2026-02-01T11:00:00Z') $$,
    pg_temp.job(6), jsonb_build_array(pg_temp.uv(0, 6001, '2026-01-20T00:00:00Z'))),
  $$ values ('in_progress'::public.sync_job_status, 1, 1) $$,
  'the holder of a lease that expired an hour ago, not taken over, still records its page');
select is(
  (select expires_at from public.historical_sync_job_leases where job_id = pg_temp.job(6)),
  '2026-02-01T11:02:00Z'::timestamptz, 'and the page renews the lease to p_now + 120 s');

-- ══ job 2: the range bounds, inclusive, at microsecond precision ════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, '[]'::jsonb, 6, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(2),
    jsonb_build_array(
      pg_temp.uv(0, 2001, '2026-02-01T01:00:00+01:00'),        -- date_to + 1 µs, with an offset
      pg_temp.uv(1, 2002, '2026-01-31T23:59:59.999999Z'),      -- exactly date_to
      pg_temp.uv(2, 2003, '2026-01-15T00:00:00Z'),
      pg_temp.uv(3, 9002, '2025-12-31T23:59:59.999999Z'),      -- held by agency 99, and before the range
      pg_temp.uv(4, 2004, '2026-01-01T00:00:00Z'),             -- exactly date_from
      pg_temp.uv(5, 2005, '2025-12-31T23:59:59.999999Z'))),    -- date_from - 1 µs
  $$ values ('completed'::public.sync_job_status, 3, 3, 0, 0, 6, 3, 0, 0, 0) $$,
  'of six calls, the three inside [date_from, date_to] are imported and counted; the three outside are not counted at all');
select results_eq(
  format($$ select ultravox_call_id, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
              from public.calls where historical_sync_job_id = %L order by created_at desc $$, pg_temp.job(2)),
  $$ values ('030e0000-0000-4000-8000-000000002002'::uuid, '2026-01-31T23:59:59.999999'),
            ('030e0000-0000-4000-8000-000000002003'::uuid, '2026-01-15T00:00:00.000000'),
            ('030e0000-0000-4000-8000-000000002004'::uuid, '2026-01-01T00:00:00.000000') $$,
  'the call at exactly date_to (…59.999999) and the one at exactly date_from are stored, to the microsecond');
select is(
  (select count(*)::int from public.calls where ultravox_call_id in (pg_temp.cid(2001), pg_temp.cid(2005))),
  0, 'the calls one microsecond after date_to and one microsecond before date_from are not stored');

-- ══ job 3: date_from null is the beginning of time ══════════════════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'n1',
              %L::jsonb, '[]'::jsonb, null, 300, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(3),
    jsonb_build_array(pg_temp.uv(0, 3002, '2026-02-01T00:00:00Z'), pg_temp.uv(1, 3001, '1970-01-01T00:00:00Z'))),
  $$ values ('in_progress'::public.sync_job_status, 1, 1, 0, 0, null::int, 1, 0, 0, 0) $$,
  'with date_from null a call from 1970 is imported; the one after date_to is not counted');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(3)),
  $$ values ('030d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:05:05Z'::timestamptz) $$,
  'p_lease_seconds 300 renews the lease to p_now + 300 s');

-- ══ job 4: max_calls 2 cuts inside a page ═══════════════════════════════════════════
-- API order: 4001 new, (invalid), 9001 held elsewhere, 4002 out of range, 4003 new (reaches 2),
-- 4004 new (past the cut), (invalid past the cut).
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'c1',
              %L::jsonb, %L::jsonb, 50, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(4),
    jsonb_build_array(pg_temp.uv(0, 4001, '2026-01-20T00:00:00Z'), pg_temp.uv(2, 9001, '2026-01-10T00:00:00Z'),
                      pg_temp.uv(3, 4002, '2026-02-15T00:00:00Z'), pg_temp.uv(4, 4003, '2026-01-18T00:00:00Z'),
                      pg_temp.uv(5, 4004, '2026-01-17T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 1, 'call_id', pg_temp.cid(4098), 'reason', 'bad one'),
                      jsonb_build_object('ord', 6, 'call_id', pg_temp.cid(4099), 'reason', 'bad two'))),
  $$ values ('completed'::public.sync_job_status, 4, 2, 1, 1, 50, 2, 1, 1, 0) $$,
  'max_calls 2: imports 4001 and 4003, skips 9001 without spending the cap, fails the invalid call before the cut, and completes');
select results_eq(
  format($$ select ultravox_call_id from public.calls where historical_sync_job_id = %L order by ultravox_call_id $$, pg_temp.job(4)),
  $$ values ('030e0000-0000-4000-8000-000000004001'::uuid), ('030e0000-0000-4000-8000-000000004003'::uuid) $$,
  'exactly calls 4001 and 4003 are stored for job 4');
select is(
  (select count(*)::int from public.calls where ultravox_call_id in (pg_temp.cid(4002), pg_temp.cid(4004))),
  0, 'the out-of-range call and the call past the cut are not stored');
select results_eq(
  format($$ select cursor, completed_at, error_message, last_error_at from public.historical_sync_jobs where id = %L $$, pg_temp.job(4)),
  format($$ values ('c1', '2026-02-01T10:00:05Z'::timestamptz,
                    '1 call(s) failed validation and were not imported (latest: %s: bad one)',
                    '2026-02-01T10:00:05Z'::timestamptz) $$, pg_temp.cid(4098)),
  'the job completed at the cap reports only the failure before the cut');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(4)),
  $$ values (null::uuid, null::timestamptz) $$,
  'completion at the cap releases the lease');

-- ══ job 5: max_calls 3 across pages ═════════════════════════════════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'c1',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(5),
    jsonb_build_array(pg_temp.uv(0, 5001, '2026-01-20T00:00:00Z'), pg_temp.uv(1, 5002, '2026-01-19T00:00:00Z'))),
  $$ values ('in_progress'::public.sync_job_status, 2, 2, 0, 0, null::int, 2, 0, 0, 0) $$,
  'max_calls 3: after 2 imports, one short of the cap, the job is still in progress');
-- The next page repeats 5002 (the list moved). 5002 is the oldest call job 5 counted (its mark),
-- so it is not counted again; and it does not spend the cap.
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', 'c1', 'c2',
              %L::jsonb, '[]'::jsonb, 40, 120, '2026-02-01T10:00:10Z') $$,
    pg_temp.job(5),
    jsonb_build_array(pg_temp.uv(0, 5002, '2026-01-19T00:00:00Z'), pg_temp.uv(1, 5003, '2026-01-18T00:00:00Z'),
                      pg_temp.uv(2, 5004, '2026-01-17T00:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 3, 3, 0, 0, 40, 1, 0, 0, 0) $$,
  'the next page does not count 5002 again (at the mark), imports 5003 to reach exactly 3, and neither counts nor imports 5004');
select is(
  (select count(*)::int from public.calls where historical_sync_job_id = pg_temp.job(5)),
  3, 'job 5 stored exactly max_calls = 3 calls');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(5004)),
  0, 'call 5004, past the cut, is not stored');

-- ══ job 10: the cap reached by the last call of a page ══════════════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'c1',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(10),
    jsonb_build_array(pg_temp.uv(0, 10001, '2026-01-20T00:00:00Z'), pg_temp.uv(1, 10002, '2026-01-19T00:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 2, 2, 0, 0, null::int, 2, 0, 0, 0) $$,
  'max_calls 2 reached by the page''s last call completes the job although a next cursor exists');

-- ══ job 11: an empty last page ══════════════════════════════════════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, null,
              null, null, 0, 120, '2026-02-01T10:00:05Z') $$, pg_temp.job(11)),
  $$ values ('completed'::public.sync_job_status, 0, 0, 0, 0, 0, 0, 0, 0, 0) $$,
  'an empty page (calls and invalid null) with no next cursor completes the job with zero counts and total 0');
select results_eq(
  format($$ select error_message, last_error_at, completed_at from public.historical_sync_jobs where id = %L $$, pg_temp.job(11)),
  $$ values (null::text, null::timestamptz, '2026-02-01T10:00:05Z'::timestamptz) $$,
  'a job completed without failures has no error_message');

-- ══ job 12: invalid calls only ══════════════════════════════════════════════════════
select results_eq(
  format($$ select * from public.record_sync_page(%L, '030d0000-0000-4000-8000-000000000001', null, 'c1',
              '[]'::jsonb, %L::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(12), jsonb_build_array(jsonb_build_object('ord', 0, 'call_id', null, 'reason', 'not an object'))),
  $$ values ('in_progress'::public.sync_job_status, 1, 0, 0, 1, null::int, 0, 0, 1, 0) $$,
  'a page whose only object is invalid counts 1 failed and 1 processed');
select is(
  (select error_message from public.historical_sync_jobs where id = pg_temp.job(12)),
  '1 call(s) failed validation and were not imported (latest: a call without a valid callId: not an object)',
  'an invalid object without a callId is named as such in error_message');
select results_eq(
  format($$ select failed_calls, processed_calls, page_failed from public.record_sync_page(%L,
              '030d0000-0000-4000-8000-000000000001', 'c1', 'c2', '[]'::jsonb, %L::jsonb, null, 120) $$,
    pg_temp.job(12),
    jsonb_build_array(jsonb_build_object('ord', 0, 'call_id', 'abc', 'reason', 'first reason'),
                      jsonb_build_object('ord', 1, 'call_id', 'def', 'reason', 'second reason'))),
  $$ values (3, 3, 2) $$,
  'two more invalid objects bring failed_calls to 3');
select results_eq(
  format($$ select error_message, last_error_at = now(), last_activity_at = now()
              from public.historical_sync_jobs where id = %L $$, pg_temp.job(12)),
  $$ values ('3 call(s) failed validation and were not imported (latest: def: second reason)', true, true) $$,
  'error_message counts all 3 failures and names the last in API order; without p_now the page is stamped now()');

-- ══ invariants over every job of this file ══════════════════════════════════════════
select is_empty(
  $$ select id from public.historical_sync_jobs
      where agency_id::text like '030a0000-%' and processed_calls <> imported_calls + skipped_calls + failed_calls $$,
  'processed = imported + skipped + failed holds for every job');
select is_empty(
  $$ select j.id from public.historical_sync_jobs j
      where j.agency_id::text like '030a0000-%'
        and j.imported_calls <> (select count(*) from public.calls c where c.historical_sync_job_id = j.id) $$,
  'imported_calls equals the number of stored calls for every job');
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz)'::regprocedure),
  'record_sync_page is security definer with an empty search_path');

-- ══ a call repeated within one page ══════════════════════════════════════════════════
-- It is stored once; its second position counts as skipped, so the counters stay exact.
insert into public.agencies (id, name) values ('030a0000-0000-4000-8000-000000000013', 'Page agency 13');
insert into public.historical_sync_jobs (id, agency_id, date_to, status)
values (pg_temp.job(13), '030a0000-0000-4000-8000-000000000013', '2026-01-31T23:59:59.999999Z', 'in_progress');
insert into public.historical_sync_job_leases (job_id, holder, expires_at)
values (pg_temp.job(13), '030d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z');
select results_eq(
  format($$ select imported_calls, skipped_calls from public.record_sync_page(%L,
              '030d0000-0000-4000-8000-000000000001', null, 'c1', %L::jsonb, '[]'::jsonb, null, 120,
              '2026-02-01T10:00:05Z') $$,
    pg_temp.job(13),
    jsonb_build_array(pg_temp.uv(0, 13001, '2026-01-20T00:00:00Z'), pg_temp.uv(1, 13001, '2026-01-20T00:00:00Z'))),
  $$ values (1, 1) $$,
  'a call repeated within one page is imported once and then counted as skipped');

select * from finish();
rollback;
