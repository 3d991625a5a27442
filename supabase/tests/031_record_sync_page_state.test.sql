-- record_sync_page and the engine state beside the job (20261201000200): a landed page resets the
-- attempts; a fenced-out worker drops its own lease, never another's; changed calls the importer
-- wrote are refreshed, never made less final, and no other row is touched; the oldest counted
-- call (the mark) is kept so a walk resumed by time counts nothing twice; unreadable fields
-- accumulate; error_message is built from stored data. T0 = 2026-02-01T10:00:00Z.
begin;
create extension if not exists pgtap with schema extensions;
select plan(47);

-- ── helpers ─────────────────────────────────────────────────────────────────────────
-- Call ids of this file: 031e0000-0000-4000-8000-<12 digits>.
create function pg_temp.cid(p_n bigint) returns uuid language sql immutable as $$
  select ('031e0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
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
  select ('031c0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create function pg_temp.agency(p_n int) returns uuid language sql immutable as $$
  select ('031a0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
-- A page step of H1 at p_now with a 120 s lease.
create function pg_temp.page(p_job int, p_from text, p_next text, p_calls jsonb, p_invalid jsonb, p_now text)
returns setof record language sql as $$
  select * from public.record_sync_page(pg_temp.job(p_job), '031d0000-0000-4000-8000-000000000001',
    p_from, p_next, p_calls, p_invalid, null, 120, p_now::timestamptz)
$$;

-- ── fixtures ────────────────────────────────────────────────────────────────────────
-- One agency per job; agency 5 holds a call of its own. Every job covers January 2026, is in
-- progress since T0 and held by H1 until T0 + 120 s, except as said.
insert into public.agencies (id, name)
select pg_temp.agency(n), format('Page state agency %s', n) from unnest(array[1, 2, 3, 4, 5, 6, 7]) as n;
insert into public.historical_sync_jobs (id, agency_id, date_from, date_to, status, cursor, started_at, completed_at)
select pg_temp.job(n), pg_temp.agency(n), '2026-01-01T00:00:00Z', '2026-01-31T23:59:59.999999Z',
       case when n = 3 then 'cancelled' else 'in_progress' end::public.sync_job_status,
       case n when 2 then 'm1' when 3 then 'x1' end, '2026-02-01T10:00:00Z',
       case when n = 3 then '2026-02-01T10:00:01Z'::timestamptz end
  from unnest(array[1, 2, 3, 4, 6, 7]) as n;
-- Job 1 is in its fourth attempt in a row, the last one having seen HTTP 503. Jobs 2 and 3 are
-- held by H2, who took job 2 over from H1 and moved its cursor from m0 to m1.
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts, last_problem)
select pg_temp.job(n),
       case when n in (2, 3) then '031d0000-0000-4000-8000-000000000002'
            else '031d0000-0000-4000-8000-000000000001' end::uuid,
       '2026-02-01T10:02:00Z', case when n = 1 then 4 else 1 end,
       case when n = 1 then 'Ultravox answered HTTP 503' end
  from unnest(array[1, 2, 3, 4, 6, 7]) as n;

-- ══ job 1: a landed page resets the attempts; error_message from stored data ═════════
select results_eq(
  format($$ select * from pg_temp.page(1, null, 'p1', %L::jsonb, %L::jsonb, '2026-02-01T10:00:05Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 1001, '2026-01-30T00:00:00Z')),
    jsonb_build_array(jsonb_build_object('ord', 1, 'call_id', 'bad-1', 'reason', 'created is not a date-time'))),
  $$ values ('in_progress'::public.sync_job_status, 2, 1, 0, 1, null::int, 1, 0, 1, 0) $$,
  'page 1 of job 1 imports 1 and fails 1, and returns page_refreshed 0');
select results_eq(
  format($$ select failed_attempts, last_problem, latest_failure from public.historical_sync_job_leases
             where job_id = %L $$, pg_temp.job(1)),
  $$ values (0, null::text, 'bad-1: created is not a date-time') $$,
  'the landed page resets failed_attempts from 4 to 0, clears last_problem and stores the latest failure');
select is(
  (select error_message from public.historical_sync_jobs where id = pg_temp.job(1)),
  '1 call(s) failed validation and were not imported (latest: bad-1: created is not a date-time)',
  'error_message counts the 1 failure and names it');
select is(
  (select error_message from public.record_sync_error(pg_temp.job(1), '031d0000-0000-4000-8000-000000000001', 'p1',
     'Ultravox answered HTTP 502', 10, '2026-02-01T10:00:10Z')),
  'Ultravox answered HTTP 502', 'a transient error then replaces error_message');
select is(
  (select count(*)::int from public.claim_sync_jobs('031d0000-0000-4000-8000-000000000001', 1, 120, pg_temp.job(1),
     '2026-02-01T10:01:00Z')),
  1, 'H1 claims job 1 again');
select results_eq(
  format($$ select status, processed_calls, failed_calls, page_imported
              from pg_temp.page(1, 'p1', null, %L::jsonb, '[]'::jsonb, '2026-02-01T10:01:05Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 1002, '2026-01-29T00:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 3, 1, 1) $$,
  'the last page, without failures, completes job 1');
select results_eq(
  format($$ select error_message, last_error_at from public.historical_sync_jobs where id = %L $$, pg_temp.job(1)),
  $$ values ('1 call(s) failed validation and were not imported (latest: bad-1: created is not a date-time)',
             '2026-02-01T10:00:10Z'::timestamptz) $$,
  'at completion error_message is rebuilt from the stored count and latest failure, not the transient message');
select results_eq(
  format($$ select holder, failed_attempts, last_problem from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(1)),
  $$ values (null::uuid, 0, null::text) $$,
  'the completing page releases the lease, resets the claim''s attempt and clears last_problem HTTP 502');

-- ══ jobs 2 and 3: a fenced-out page never drops another holder's lease ══════════════
select is_empty(
  format($$ select * from public.record_sync_page(%L, '031d0000-0000-4000-8000-000000000001', 'm0', 'm2',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(2), jsonb_build_array(pg_temp.uv(0, 2001, '2026-01-20T00:00:00Z'))),
  'H1''s page from cursor m0, after H2 took job 2 over and moved it to m1, returns no row');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '031d0000-0000-4000-8000-000000000001', 'm1', 'm2',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(2), jsonb_build_array(pg_temp.uv(0, 2001, '2026-01-20T00:00:00Z'))),
  'H1''s page at the current cursor m1 returns no row either: H1 is not the holder');
select results_eq(
  format($$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(2)),
  $$ values ('031d0000-0000-4000-8000-000000000002'::uuid, '2026-02-01T10:02:00Z'::timestamptz, 1) $$,
  'H2''s lease of job 2 is untouched by both fenced pages');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '031d0000-0000-4000-8000-000000000001', 'x1', 'x2',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(3), jsonb_build_array(pg_temp.uv(0, 3001, '2026-01-20T00:00:00Z'))),
  'H1''s page of the cancelled job 3 returns no row');
select results_eq(
  format($$ select holder, expires_at from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(3)),
  $$ values ('031d0000-0000-4000-8000-000000000002'::uuid, '2026-02-01T10:02:00Z'::timestamptz) $$,
  'and leaves the lease in H2''s name');
select is(
  (select count(*)::int from public.calls where ultravox_call_id in (pg_temp.cid(2001), pg_temp.cid(3001))),
  0, 'none of the fenced pages stored a call');

-- ══ job 4: refresh ═══════════════════════════════════════════════════════════════════
-- Stored before the walk, all imported at 2026-01-31 (raw as Ultravox returned it then):
--   4001 agency 4, historical_sync, not ended, PENDING    → changed upstream (ended, billed)
--   4002 agency 4, historical_sync                         → listed unchanged
--   4003 agency 4, webhook                                 → changed upstream, another source
--   4004 agency 5, historical_sync                         → changed upstream, another agency
--   4005 agency 4, historical_sync, ended                  → listed as not ended
--   4006 agency 4, historical_sync, BILLED                 → listed as PENDING
--   4008 agency 4, historical_sync, PENDING                → listed BILLED on page 2
insert into public.calls (agency_id, ultravox_call_id, created_at, ended_at, end_reason, summary, raw, source,
                          historical_sync_job_id, imported_at)
select pg_temp.agency(a), pg_temp.cid(n), created::timestamptz, ended::timestamptz, reason, summary,
       jsonb_build_object('callId', pg_temp.cid(n), 'created', created) || extra, source, null,
       '2026-01-31T00:00:00Z'
  from (values
    (4001, 4, '2026-01-20T10:00:00Z', null, null, null, '{"billingStatus": "BILLING_STATUS_PENDING"}'::jsonb, 'historical_sync'),
    (4002, 4, '2026-01-20T09:00:00Z', null, null, null, '{}', 'historical_sync'),
    (4003, 4, '2026-01-20T08:00:00Z', null, null, null, '{}', 'webhook'),
    (4004, 5, '2026-01-20T07:00:00Z', null, null, null, '{}', 'historical_sync'),
    (4005, 4, '2026-01-20T06:00:00Z', '2026-01-20T06:05:00Z', 'hangup', null,
       '{"ended": "2026-01-20T06:05:00Z", "endReason": "hangup"}', 'historical_sync'),
    (4006, 4, '2026-01-20T05:00:00Z', null, null, 'Billed',
       '{"billingStatus": "BILLING_STATUS_BILLED", "summary": "Billed"}', 'historical_sync'),
    (4008, 4, '2026-01-20T04:00:00Z', null, null, null, '{"billingStatus": "BILLING_STATUS_PENDING"}', 'historical_sync')
  ) as v(n, a, created, ended, reason, summary, extra, source);
create temporary table before_refresh on commit drop as
  select ultravox_call_id, c::text as row_text from public.calls c
   where ultravox_call_id in (pg_temp.cid(4002), pg_temp.cid(4003), pg_temp.cid(4004), pg_temp.cid(4005), pg_temp.cid(4006));

select results_eq(
  format($$ select * from pg_temp.page(4, null, 'r1', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:05Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(
      pg_temp.uv(0, 4001, '2026-01-20T10:00:00Z')
        || jsonb_build_object('ended_at', '2026-01-20T10:05:00Z', 'end_reason', 'hangup', 'summary', 'Done',
             'raw', jsonb_build_object('callId', pg_temp.cid(4001), 'created', '2026-01-20T10:00:00Z',
                      'ended', '2026-01-20T10:05:00Z', 'endReason', 'hangup', 'summary', 'Done',
                      'billingStatus', 'BILLING_STATUS_BILLED')),
      pg_temp.uv(1, 4002, '2026-01-20T09:00:00Z'),
      pg_temp.uv(2, 4003, '2026-01-20T08:00:00Z') || jsonb_build_object('summary', 'Changed',
        'raw', jsonb_build_object('callId', pg_temp.cid(4003), 'created', '2026-01-20T08:00:00Z', 'summary', 'Changed')),
      pg_temp.uv(3, 4004, '2026-01-20T07:00:00Z') || jsonb_build_object('summary', 'Changed',
        'raw', jsonb_build_object('callId', pg_temp.cid(4004), 'created', '2026-01-20T07:00:00Z', 'summary', 'Changed')),
      pg_temp.uv(4, 4005, '2026-01-20T06:00:00Z') || jsonb_build_object('summary', 'Changed',
        'raw', jsonb_build_object('callId', pg_temp.cid(4005), 'created', '2026-01-20T06:00:00Z', 'summary', 'Changed')),
      pg_temp.uv(5, 4006, '2026-01-20T05:00:00Z') || jsonb_build_object('summary', 'Changed',
        'raw', jsonb_build_object('callId', pg_temp.cid(4006), 'created', '2026-01-20T05:00:00Z', 'summary', 'Changed',
                 'billingStatus', 'BILLING_STATUS_PENDING')),
      pg_temp.uv(6, 4007, '2026-01-10T00:00:00Z'))),
  $$ values ('in_progress'::public.sync_job_status, 7, 1, 6, 0, null::int, 1, 6, 0, 1) $$,
  'page 1 of job 4 imports the new call 4007, counts the 6 existing ones as skipped, and refreshes exactly 1');
select results_eq(
  format($$ select ended_at, end_reason, summary, raw ->> 'billingStatus', raw ->> 'ended', created_at, source,
                   agency_id, historical_sync_job_id, imported_at
              from public.calls where ultravox_call_id = %L $$, pg_temp.cid(4001)),
  $$ values ('2026-01-20T10:05:00Z'::timestamptz, 'hangup', 'Done', 'BILLING_STATUS_BILLED', '2026-01-20T10:05:00Z',
             '2026-01-20T10:00:00Z'::timestamptz, 'historical_sync', '031a0000-0000-4000-8000-000000000004'::uuid,
             null::uuid, '2026-01-31T00:00:00Z'::timestamptz) $$,
  'call 4001 (historical_sync, agency 4, changed upstream) is refreshed: ended, hangup, summary, billed raw; created, source, agency, job and imported_at kept');
select is(
  (select c::text from public.calls c where ultravox_call_id = pg_temp.cid(4002)),
  (select row_text from before_refresh where ultravox_call_id = pg_temp.cid(4002)),
  'call 4002, listed unchanged, is not rewritten');
select is(
  (select c::text from public.calls c where ultravox_call_id = pg_temp.cid(4003)),
  (select row_text from before_refresh where ultravox_call_id = pg_temp.cid(4003)),
  'call 4003 of source webhook is byte-for-byte unchanged although it changed upstream');
select is(
  (select c::text from public.calls c where ultravox_call_id = pg_temp.cid(4004)),
  (select row_text from before_refresh where ultravox_call_id = pg_temp.cid(4004)),
  'call 4004 of agency 5 is byte-for-byte unchanged although it changed upstream');
select is(
  (select c::text from public.calls c where ultravox_call_id = pg_temp.cid(4005)),
  (select row_text from before_refresh where ultravox_call_id = pg_temp.cid(4005)),
  'call 4005, ended, is not refreshed by an object without ended: an ended call never becomes unended');
select is(
  (select c::text from public.calls c where ultravox_call_id = pg_temp.cid(4006)),
  (select row_text from before_refresh where ultravox_call_id = pg_temp.cid(4006)),
  'call 4006, BILLING_STATUS_BILLED, is not refreshed by a PENDING object: a billed call never goes back to pending');
select is(
  (select refreshed_calls from public.historical_sync_job_leases where job_id = pg_temp.job(4)),
  1, 'job 4 counts refreshed_calls 1');
-- Page 2 lists 4001 as now stored (unchanged) and 4008 billed.
select results_eq(
  format($$ select * from pg_temp.page(4, 'r1', 'r2', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:10Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(
      pg_temp.uv(0, 4001, '2026-01-20T10:00:00Z')
        || jsonb_build_object('ended_at', '2026-01-20T10:05:00Z', 'end_reason', 'hangup', 'summary', 'Done',
             'raw', jsonb_build_object('callId', pg_temp.cid(4001), 'created', '2026-01-20T10:00:00Z',
                      'ended', '2026-01-20T10:05:00Z', 'endReason', 'hangup', 'summary', 'Done',
                      'billingStatus', 'BILLING_STATUS_BILLED')),
      pg_temp.uv(1, 4008, '2026-01-20T04:00:00Z') || jsonb_build_object('billed_duration_seconds', 61,
        'raw', jsonb_build_object('callId', pg_temp.cid(4008), 'created', '2026-01-20T04:00:00Z',
                 'billedDuration', '61s', 'billingStatus', 'BILLING_STATUS_BILLED')))),
  $$ values ('in_progress'::public.sync_job_status, 9, 1, 8, 0, null::int, 0, 2, 0, 1) $$,
  'page 2 skips 2: 4001, now unchanged, is not refreshed again; 4008, PENDING then, is refreshed to billed');
select results_eq(
  format($$ select billed_duration_seconds, raw ->> 'billingStatus' from public.calls where ultravox_call_id = %L $$, pg_temp.cid(4008)),
  $$ values (61::numeric, 'BILLING_STATUS_BILLED') $$,
  'call 4008 now has billed_duration_seconds 61 and a billed raw');
select results_eq(
  format($$ select refreshed_calls, (select skipped_calls from public.historical_sync_jobs where id = %L)
              from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(4), pg_temp.job(4)),
  $$ values (2, 8) $$,
  'job 4 counts refreshed_calls 2, both among its 8 skipped');

-- ══ job 6: the oldest counted call (the mark) ════════════════════════════════════════
select results_eq(
  format($$ select page_imported from pg_temp.page(6, null, 'k1', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:05Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 6001, '2026-01-20T12:00:00Z'), pg_temp.uv(1, 6002, '2026-01-20T11:00:00Z'),
                      pg_temp.uv(2, 6003, '2026-01-20T10:00:00.000001Z'),
                      pg_temp.uv(3, 6099, '2025-12-31T23:59:59.999999Z'))),  -- before the range: not counted
  $$ values (3) $$,
  'page 1 of job 6 imports 3 calls (the one before the range is not counted)');
select results_eq(
  format($$ select oldest_counted_at, oldest_counted_ids from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  format($$ values ('2026-01-20T10:00:00.000001Z'::timestamptz, array[%L]::uuid[]) $$, pg_temp.cid(6003)),
  'the mark is the oldest counted call, 6003 at 10:00:00.000001, to the microsecond');
select results_eq(
  format($$ select page_imported from pg_temp.page(6, 'k1', 'k2', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:10Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 6005, '2026-01-20T10:00:00Z'), pg_temp.uv(1, 6004, '2026-01-20T10:00:00Z'))),
  $$ values (2) $$,
  'page 2 imports 6005 and 6004, created at the same instant');
select results_eq(
  format($$ select oldest_counted_at, array(select unnest(oldest_counted_ids) order by 1)
              from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  format($$ values ('2026-01-20T10:00:00Z'::timestamptz, array[%L, %L]::uuid[]) $$, pg_temp.cid(6004), pg_temp.cid(6005)),
  'the mark moves to 10:00:00 and holds both calls tied there, 6004 and 6005');
-- Ultravox rejected cursor k2: the walk resumes by time at the mark and lists 6004 and 6005
-- again, beside 6007, new, created at the same instant.
select results_eq(
  format($$ select processed_calls, imported_calls, skipped_calls, page_imported, page_skipped
              from pg_temp.page(6, 'k2', 't1', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:15Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 6004, '2026-01-20T10:00:00Z'), pg_temp.uv(1, 6005, '2026-01-20T10:00:00Z'),
                      pg_temp.uv(2, 6007, '2026-01-20T10:00:00Z'))),
  $$ values (6, 6, 0, 1, 0) $$,
  'the resumed page counts neither 6004 nor 6005 again, and counts and imports 6007: processed 6 = 6 + 0 + 0');
select results_eq(
  format($$ select oldest_counted_at, array(select unnest(oldest_counted_ids) order by 1)
              from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  format($$ values ('2026-01-20T10:00:00Z'::timestamptz, array[%L, %L, %L]::uuid[]) $$,
    pg_temp.cid(6004), pg_temp.cid(6005), pg_temp.cid(6007)),
  'the mark stays at 10:00:00 and now holds 6004, 6005 and 6007, each once');
select results_eq(
  format($$ select processed_calls, page_imported, page_skipped
              from pg_temp.page(6, 't1', 't2', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:20Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 6007, '2026-01-20T10:00:00Z'), pg_temp.uv(1, 6004, '2026-01-20T10:00:00Z'),
                      pg_temp.uv(2, 6008, '2026-01-20T09:00:00Z'))),
  $$ values (7, 1, 0) $$,
  'a page listing 6007 and 6004 at the mark again and 6008 older counts only 6008');
select results_eq(
  format($$ select oldest_counted_at, oldest_counted_ids from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  format($$ values ('2026-01-20T09:00:00Z'::timestamptz, array[%L]::uuid[]) $$, pg_temp.cid(6008)),
  'the mark moves to 6008 at 09:00:00 and forgets the calls of the former instant');
select results_eq(
  format($$ select status, processed_calls, page_imported
              from pg_temp.page(6, 't2', null, %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:25Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(pg_temp.uv(0, 6009, '2026-01-20T12:30:00Z'))),
  $$ values ('completed'::public.sync_job_status, 8, 1) $$,
  'a last page with a newer call (the list moved) counts it and completes the job');
select results_eq(
  format($$ select oldest_counted_at, oldest_counted_ids from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(6)),
  format($$ values ('2026-01-20T09:00:00Z'::timestamptz, array[%L]::uuid[]) $$, pg_temp.cid(6008)),
  'a newer call leaves the mark where it was');
select is(
  (select count(*)::int from public.calls where historical_sync_job_id = pg_temp.job(6)),
  8, 'job 6 stored exactly its 8 imported calls, none twice');

-- ══ job 7: unreadable fields accumulate, sorted and distinct ═════════════════════════
-- Call 7009 already belongs to agency 5: it is skipped, nothing of it is stored by job 7.
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
values (pg_temp.agency(5), pg_temp.cid(7009), '2026-01-19T00:00:00Z', '{}', 'historical_sync');
select results_eq(
  format($$ select page_imported, page_skipped
              from pg_temp.page(7, null, 'u1', %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:05Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(
      pg_temp.uv(0, 7001, '2026-01-20T05:00:00Z') || '{"unreadable": ["summary", "agentId"]}',
      pg_temp.uv(1, 7002, '2026-01-20T04:00:00Z') || '{"unreadable": []}',
      pg_temp.uv(2, 7003, '2026-01-20T03:00:00Z') || '{"unreadable": ["agentId"]}',
      pg_temp.uv(3, 7004, '2026-01-20T02:00:00Z'),
      pg_temp.uv(4, 7009, '2026-01-19T00:00:00Z') || '{"unreadable": ["recordingEnabled"]}')),
  $$ values (4, 1) $$,
  'page 1 of job 7 imports 4 calls and skips 7009, held by agency 5');
select results_eq(
  format($$ select unreadable_calls, unreadable_fields from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(7)),
  $$ values (2, array['agentId', 'summary']) $$,
  'after page 1: 2 imported calls had unreadable fields, agentId and summary (sorted, each once); the skipped 7009 is not counted');
select results_eq(
  format($$ select page_imported
              from pg_temp.page(7, 'u1', null, %L::jsonb, '[]'::jsonb, '2026-02-01T10:00:10Z')
              as (status public.sync_job_status, processed_calls int, imported_calls int, skipped_calls int,
                  failed_calls int, total_calls int, page_imported int, page_skipped int, page_failed int,
                  page_refreshed int) $$,
    jsonb_build_array(
      pg_temp.uv(0, 7005, '2026-01-18T00:00:00Z') || '{"unreadable": ["summary", "endReason"]}',
      pg_temp.uv(1, 7006, '2026-01-17T00:00:00Z') || '{"unreadable": ["billedDuration"]}',
      pg_temp.uv(2, 7001, '2026-01-20T05:00:00Z') || '{"unreadable": ["summary", "agentId"]}')),
  $$ values (2) $$,
  'page 2 imports 7005 and 7006 and re-lists 7001, already imported');
select results_eq(
  format($$ select unreadable_calls, unreadable_fields from public.historical_sync_job_leases where job_id = %L $$, pg_temp.job(7)),
  $$ values (4, array['agentId', 'billedDuration', 'endReason', 'summary']) $$,
  'after page 2: 4 calls with unreadable fields (7001 once) and the 4 fields, sorted and distinct');

-- ══ definition ═════════════════════════════════════════════════════════════════════
select has_composite('public', 'sync_page_call', 'the composite type sync_page_call exists');
select is(
  (select array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) order by a.attnum)
     from pg_attribute a where a.attrelid = 'public.sync_page_call'::regclass and a.attnum > 0),
  array['ord integer', 'ultravox_call_id uuid', 'ultravox_agent_id uuid', 'created_at timestamp with time zone',
        'joined_at timestamp with time zone', 'ended_at timestamp with time zone', 'end_reason text',
        'duration_seconds numeric', 'billed_duration_seconds numeric', 'short_summary text', 'summary text',
        'recording_enabled boolean', 'metadata jsonb', 'raw jsonb', 'unreadable text[]'],
  'sync_page_call has the 14 call fields and unreadable text[], in that order');
select has_composite('public', 'sync_page_invalid', 'the composite type sync_page_invalid exists');
select is(
  (select array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) order by a.attnum)
     from pg_attribute a where a.attrelid = 'public.sync_page_invalid'::regclass and a.attnum > 0),
  array['ord integer', 'call_id text', 'reason text', 'created timestamp with time zone'],
  'sync_page_invalid is (ord integer, call_id text, reason text, created timestamptz): created added by 20261201000600');
select is(
  (select array_to_string(proargnames[10:], ', ') from pg_proc
    where oid = 'public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz)'::regprocedure),
  'status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls, page_imported, page_skipped, page_failed, page_refreshed',
  'record_sync_page returns the job''s status and counters and the page''s imported, skipped, failed and refreshed');
select function_privs_are('public', 'record_sync_page',
  array['uuid', 'uuid', 'text', 'text', 'jsonb', 'jsonb', 'integer', 'integer', 'timestamp with time zone'],
  'service_role', array['EXECUTE'], 'service_role may execute record_sync_page');

-- ══ invariants over every job of this file ══════════════════════════════════════════
select is_empty(
  $$ select j.id from public.historical_sync_jobs j
      where j.agency_id::text like '031a0000-%'
        and j.imported_calls <> (select count(*) from public.calls c where c.historical_sync_job_id = j.id) $$,
  'imported_calls equals the number of calls stored for every job of this file');

select * from finish();
rollback;
