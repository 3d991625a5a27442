-- Catch-up (docs/ARCHITECTURE.md §5 "Catch-up", "Deleted calls"; §7 "Catch-up cron"): where
-- a catch-up starts, the phase switch after its calls walk, the fenced page step of the
-- deleted-calls walk, per-agency settings under RLS, and the hourly scheduler.
begin;
-- One snapshot for the whole file: the scheduler's counts over every agency of the shared
-- database are compared with counts taken in this same transaction.
set transaction isolation level repeatable read;
create extension if not exists pgtap with schema extensions;
select plan(93);

-- ── helpers ─────────────────────────────────────────────────────────────────────────
-- Ids of this file: agencies 080a…, users 080b…, jobs 080c…, holders 080d…, calls 080e….
create function pg_temp.ag(p_n int) returns uuid language sql immutable as $$
  select ('080a0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid $$;
create function pg_temp.usr(p_n int) returns uuid language sql immutable as $$
  select ('080b0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid $$;
create function pg_temp.job(p_n int) returns uuid language sql immutable as $$
  select ('080c0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid $$;
create function pg_temp.cid(p_n int) returns uuid language sql immutable as $$
  select ('080e0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid $$;
-- One mapped call as the processor sends it to record_sync_page (id and created only).
create function pg_temp.uv(p_ord int, p_n int, p_created text) returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'ord', p_ord, 'ultravox_call_id', pg_temp.cid(p_n), 'ultravox_agent_id', null,
    'created_at', p_created, 'joined_at', null, 'ended_at', null, 'end_reason', null,
    'duration_seconds', null, 'billed_duration_seconds', null, 'short_summary', null,
    'summary', null, 'recording_enabled', null, 'metadata', null,
    'raw', jsonb_build_object('callId', pg_temp.cid(p_n), 'created', p_created)) $$;
-- One tombstone as deleted_walk.ts sends it to record_deleted_page.
create function pg_temp.tomb(p_n int, p_created text, p_deleted text) returns jsonb language sql immutable as $$
  select jsonb_build_object('call_id', pg_temp.cid(p_n), 'created', p_created, 'deletion_time', p_deleted) $$;
create function pg_temp.deleted_at(p_n int) returns timestamptz language sql stable as $$
  select ultravox_deleted_at from public.calls where ultravox_call_id = pg_temp.cid(p_n) $$;

insert into public.agencies (id, name)
select pg_temp.ag(n), format('Catch-up agency %s', n)
  from generate_series(1, 40) as n;

-- ══ catch_up_from ═══════════════════════════════════════════════════════════════════
-- Agency 1: no job. Agency 2: two completed jobs (newest date_to 2026-03-01T00:00:00.000001Z),
-- and newer failed, cancelled and pending ones. Agency 3: only a failed and a cancelled job.
insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at, created_at) values
  (pg_temp.job(21), pg_temp.ag(2), '2026-01-31T23:59:59.999999Z', 'completed', '2026-02-01Z', '2026-02-01Z'),
  (pg_temp.job(22), pg_temp.ag(2), '2026-03-01T00:00:00.000001Z', 'completed', '2026-03-01T01:00Z', '2026-03-01Z'),
  (pg_temp.job(23), pg_temp.ag(2), '2026-06-01Z', 'failed', '2026-06-01T01:00Z', '2026-06-01Z'),
  (pg_temp.job(24), pg_temp.ag(2), '2026-07-01Z', 'cancelled', '2026-07-01T01:00Z', '2026-07-01Z'),
  (pg_temp.job(25), pg_temp.ag(2), '2026-08-01Z', 'pending', null, '2026-08-01Z'),
  (pg_temp.job(31), pg_temp.ag(3), '2026-06-01Z', 'failed', '2026-06-01T01:00Z', '2026-06-01Z'),
  (pg_temp.job(32), pg_temp.ag(3), '2026-07-01Z', 'cancelled', '2026-07-01T01:00Z', '2026-07-01Z');

select is(public.catch_up_from(pg_temp.ag(1), 24), null,
  'catch_up_from is null for an agency without any job (a catch-up is then a full sync)');
select is(public.catch_up_from(pg_temp.ag(2), 24), '2026-02-28T00:00:00.000001Z'::timestamptz,
  'catch_up_from is the newest completed date_to (2026-03-01T00:00:00.000001Z) minus 24 h, to the microsecond');
select is(public.catch_up_from(pg_temp.ag(2), 0), '2026-03-01T00:00:00.000001Z'::timestamptz,
  'with an overlap of 0 h it is the newest completed date_to itself');
select is(public.catch_up_from(pg_temp.ag(2), 48), '2026-02-27T00:00:00.000001Z'::timestamptz,
  'with an overlap of 48 h it is two days before');
select is(public.catch_up_from(pg_temp.ag(3), 24), null,
  'catch_up_from ignores failed and cancelled jobs: null for an agency with only those');

-- ══ create_sync_job(..., p_catch_up) ════════════════════════════════════════════════
select results_eq(
  $$ select agency_id, status::text, date_from, max_calls
       from public.create_sync_job(pg_temp.ag(4), '2026-02-28Z', '2026-03-05Z', null,
                                   '2026-03-05Z', 'user', p_catch_up => true) $$,
  $$ values (pg_temp.ag(4), 'pending', '2026-02-28Z'::timestamptz, null::int) $$,
  'create_sync_job(..., p_catch_up => true) creates the pending job');
select results_eq(
  $$ select l.catch_up, l.trigger, l.phase, l.deleted_cursor, l.deleted_marked
       from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
      where j.agency_id = pg_temp.ag(4) $$,
  $$ values (true, 'user', 'calls', null::text, 0) $$,
  'and stores catch_up true in its engine state: phase calls, no deleted cursor, 0 marked');
select isnt_empty(
  $$ select * from public.create_sync_job(pg_temp.ag(5), null, '2026-03-05Z', 100, '2026-03-05Z') $$,
  'create_sync_job without p_catch_up creates a job');
select results_eq(
  $$ select l.catch_up, l.trigger, l.phase
       from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
      where j.agency_id = pg_temp.ag(5) $$,
  $$ values (false, 'user', 'calls') $$,
  'which stores catch_up false (the default)');
select throws_ok(
  $$ update public.historical_sync_job_leases l set phase = 'deleted_calls'
       from public.historical_sync_jobs j where j.id = l.job_id and j.agency_id = pg_temp.ag(5) $$,
  '23514', null, 'only a catch-up may be in the deleted_calls phase (sync_job_leases_phase_needs_catch_up)');

-- ══ record_sync_page: the last calls page of a catch-up starts the deleted-calls walk ══
-- Jobs 61 (catch-up) and 71 (not): January 2026, in progress, held by H1 until T0 + 120 s.
insert into public.historical_sync_jobs (id, agency_id, date_from, date_to, status, max_calls, cursor, started_at)
values (pg_temp.job(61), pg_temp.ag(6), '2026-01-01Z', '2026-01-31T23:59:59.999999Z', 'in_progress', null, 'c1', '2026-02-01T10:00:00Z'),
       (pg_temp.job(71), pg_temp.ag(7), '2026-01-01Z', '2026-01-31T23:59:59.999999Z', 'in_progress', null, 'c1', '2026-02-01T10:00:00Z'),
       (pg_temp.job(72), pg_temp.ag(17), '2026-01-01Z', '2026-01-31T23:59:59.999999Z', 'in_progress', 2, null, '2026-02-01T10:00:00Z');
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts, catch_up) values
  (pg_temp.job(61), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 1, true),
  (pg_temp.job(71), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 1, false),
  (pg_temp.job(72), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 1, true);

select results_eq(
  format($$ select status::text, processed_calls, imported_calls, page_imported
              from public.record_sync_page(%L, '080d0000-0000-4000-8000-000000000001', 'c1', null,
                     %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
         pg_temp.job(61),
         jsonb_build_array(pg_temp.uv(0, 6001, '2026-01-20Z'), pg_temp.uv(1, 6002, '2026-01-10Z'))),
  $$ values ('in_progress', 2, 2, 2) $$,
  'the last calls page of a catch-up imports its 2 calls and leaves the job in_progress');
select results_eq(
  format($$ select j.status::text, j.completed_at, j.cursor, l.phase, l.holder, l.expires_at,
                   l.failed_attempts, l.deleted_cursor
              from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
             where j.id = %L $$, pg_temp.job(61)),
  $$ values ('in_progress', null::timestamptz, null::text, 'deleted_calls',
             '080d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:02:05Z'::timestamptz, 0, null::text) $$,
  'then the catch-up is in phase deleted_calls, not completed, and H1 keeps its lease (renewed to T + 120 s)');
select results_eq(
  format($$ select status::text, imported_calls
              from public.record_sync_page(%L, '080d0000-0000-4000-8000-000000000001', 'c1', null,
                     %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
         pg_temp.job(71), jsonb_build_array(pg_temp.uv(0, 7001, '2026-01-20Z'))),
  $$ values ('completed', 1) $$,
  'the last page of a job that is not a catch-up completes it, as before');
select results_eq(
  format($$ select j.status::text, j.completed_at, l.phase, l.holder, l.expires_at
              from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
             where j.id = %L $$, pg_temp.job(71)),
  $$ values ('completed', '2026-02-01T10:00:05Z'::timestamptz, 'calls', null::uuid, null::timestamptz) $$,
  'it is completed at p_now, stays in phase calls, and its lease is dropped');
-- A capped catch-up: the cap ends its calls walk in the middle of the range.
select results_eq(
  format($$ select status::text, imported_calls, page_imported
              from public.record_sync_page(%L, '080d0000-0000-4000-8000-000000000001', null, 'c2',
                     %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:05Z') $$,
         pg_temp.job(72),
         jsonb_build_array(pg_temp.uv(0, 7201, '2026-01-20Z'), pg_temp.uv(1, 7202, '2026-01-19Z'),
                           pg_temp.uv(2, 7203, '2026-01-18Z'))),
  $$ values ('in_progress', 2, 2) $$,
  'a catch-up with max_calls 2 imports 2 of a page of 3 and goes on (next is not null)');
select is(
  (select phase from public.historical_sync_job_leases where job_id = pg_temp.job(72)),
  'deleted_calls', 'reaching the cap moves a catch-up to the deleted_calls phase too');
select is_empty(
  format($$ select * from public.record_sync_page(%L, '080d0000-0000-4000-8000-000000000001', 'c2', 'c3',
              %L::jsonb, '[]'::jsonb, null, 120, '2026-02-01T10:00:06Z') $$,
         pg_temp.job(72), jsonb_build_array(pg_temp.uv(0, 7204, '2026-01-17Z'))),
  'a calls page after the calls walk ended (the page after the cap) is fenced out');
select is(
  (select count(*)::int from public.calls where historical_sync_job_id = pg_temp.job(72)),
  2, 'the capped catch-up holds exactly its 2 calls: nothing past the cap landed');

-- ══ record_deleted_page ═════════════════════════════════════════════════════════════
-- Job 81 (agency 8): a catch-up over January 2026 in its deleted-calls walk, held by H1 until
-- T0 + 120 s, with 2 failed attempts. Agency 8's calls:
--   8001 in range, 8002 at date_from exactly, 8003 at date_to exactly,
--   8004 1 µs before the range, 8005 1 µs after it,
--   8006 in range but already marked (2026-01-20), 8007 in range (marked on the last page),
--   8008 in range, never tombstoned.
-- Agency 9 holds 9001 (in range). Job 82 (agency 10): a catch-up still in phase calls. Job 83
-- (agency 11): cancelled, yet a lease in H1's name. Job 84 (agency 12): date_from null.
insert into public.historical_sync_jobs (id, agency_id, date_from, date_to, status, started_at,
                                         processed_calls, imported_calls, skipped_calls, completed_at)
values (pg_temp.job(81), pg_temp.ag(8), '2026-01-01T00:00:00Z', '2026-01-31T23:59:59.999999Z', 'in_progress',
        '2026-02-01T10:00:00Z', 7, 5, 2, null),
       (pg_temp.job(82), pg_temp.ag(10), '2026-01-01Z', '2026-01-31T23:59:59.999999Z', 'in_progress',
        '2026-02-01T10:00:00Z', 0, 0, 0, null),
       (pg_temp.job(83), pg_temp.ag(11), '2026-01-01Z', '2026-01-31T23:59:59.999999Z', 'cancelled',
        '2026-02-01T10:00:00Z', 0, 0, 0, '2026-02-01T10:00:01Z'),
       (pg_temp.job(84), pg_temp.ag(12), null, '2026-01-31T23:59:59.999999Z', 'in_progress',
        '2026-02-01T10:00:00Z', 0, 0, 0, null);
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts, catch_up, phase) values
  (pg_temp.job(81), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 2, true, 'deleted_calls'),
  (pg_temp.job(82), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 0, true, 'calls'),
  (pg_temp.job(83), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 0, true, 'deleted_calls'),
  (pg_temp.job(84), '080d0000-0000-4000-8000-000000000001', '2026-02-01T10:02:00Z', 0, true, 'deleted_calls');
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source, ultravox_deleted_at) values
  (pg_temp.ag(8), pg_temp.cid(8001), '2026-01-10T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8002), '2026-01-01T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8003), '2026-01-31T23:59:59.999999Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8004), '2025-12-31T23:59:59.999999Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8005), '2026-02-01T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8006), '2026-01-15T00:00:00Z', '{}', 'historical_sync', '2026-01-20T00:00:00Z'),
  (pg_temp.ag(8), pg_temp.cid(8007), '2026-01-20T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(8), pg_temp.cid(8008), '2026-01-21T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(9), pg_temp.cid(9001), '2026-01-12T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(10), pg_temp.cid(10001), '2026-01-12T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(11), pg_temp.cid(11001), '2026-01-12T00:00:00Z', '{}', 'historical_sync', null),
  (pg_temp.ag(12), pg_temp.cid(12001), '2001-01-01T00:00:00Z', '{}', 'historical_sync', null);

-- Page 1 at T1 = 10:00:05, from no cursor to d1: 8001 and 8002 (both in range), 8004 (before
-- the range), 9001 (agency 9's), a call nobody holds, and 8001 a second time.
select results_eq(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', null, 'd1',
              %L::jsonb, 120, '2026-02-01T10:00:05Z') $$,
    pg_temp.job(81),
    jsonb_build_array(
      pg_temp.tomb(8001, '2026-01-10T00:00:00Z', '2026-02-01T09:00:00.123456Z'),
      pg_temp.tomb(8002, '2026-01-01T00:00:00Z', '2026-02-01T09:00:01.000001Z'),
      pg_temp.tomb(8004, '2025-12-31T23:59:59.999999Z', '2026-02-01T09:00:02Z'),
      pg_temp.tomb(9001, '2026-01-12T00:00:00Z', '2026-02-01T09:00:03Z'),
      pg_temp.tomb(8999, '2026-01-13T00:00:00Z', '2026-02-01T09:00:04Z'),
      pg_temp.tomb(8001, '2026-01-10T00:00:00Z', '2026-02-01T09:00:00.123456Z'))),
  $$ values ('in_progress'::public.sync_job_status, 2, 2) $$,
  'page 1 marks 2 calls (8001, 8002): not the one before the range, not agency 9''s, not an unknown one, not 8001 twice');
select is(pg_temp.deleted_at(8001), '2026-02-01T09:00:00.123456Z'::timestamptz,
  'call 8001 is marked with its tombstone''s deletionTime, to the microsecond');
select is(pg_temp.deleted_at(8002), '2026-02-01T09:00:01.000001Z'::timestamptz,
  'call 8002, created at date_from exactly, is marked (the bound is inclusive)');
select is(pg_temp.deleted_at(8004), null,
  'call 8004, 1 µs before date_from, is not marked');
select is(pg_temp.deleted_at(9001), null,
  'agency 9''s call 9001 is never marked by agency 8''s job');
select is((select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(8999)), 0,
  'a tombstone of a call nobody holds creates no row');
select results_eq(
  format($$ select l.deleted_cursor, l.deleted_marked, l.holder, l.expires_at, l.failed_attempts, l.phase,
                   j.status::text, j.last_activity_at, j.completed_at,
                   j.processed_calls, j.imported_calls, j.skipped_calls, j.cursor
              from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
             where l.job_id = %L $$, pg_temp.job(81)),
  $$ values ('d1', 2, '080d0000-0000-4000-8000-000000000001'::uuid, '2026-02-01T10:02:05Z'::timestamptz, 0,
             'deleted_calls', 'in_progress', '2026-02-01T10:00:05Z'::timestamptz, null::timestamptz,
             7, 5, 2, null::text) $$,
  'after page 1: deleted_cursor d1, deleted_marked 2, H1''s lease renewed to T1 + 120 s, attempts reset, calls counters untouched');

-- Page 2 at T2 = 10:00:10, d1 → d2: 8001 again (another deletionTime), 8006 (marked before),
-- 8003 (at date_to exactly), 8005 (after the range).
select results_eq(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', 'd1', 'd2',
              %L::jsonb, 120, '2026-02-01T10:00:10Z') $$,
    pg_temp.job(81),
    jsonb_build_array(
      pg_temp.tomb(8001, '2026-01-10T00:00:00Z', '2026-02-01T09:30:00Z'),
      pg_temp.tomb(8006, '2026-01-15T00:00:00Z', '2026-02-01T09:30:01Z'),
      pg_temp.tomb(8003, '2026-01-31T23:59:59.999999Z', '2026-02-01T09:30:02.999999Z'),
      pg_temp.tomb(8005, '2026-02-01T00:00:00Z', '2026-02-01T09:30:03Z'))),
  $$ values ('in_progress'::public.sync_job_status, 3, 1) $$,
  'page 2 marks 1 call (8003): 8001 and 8006 are marked already, 8005 is after the range; deleted_marked 3');
select is(pg_temp.deleted_at(8001), '2026-02-01T09:00:00.123456Z'::timestamptz,
  'call 8001 keeps its first deletionTime: a call is never marked twice');
select is(pg_temp.deleted_at(8006), '2026-01-20T00:00:00Z'::timestamptz,
  'call 8006, marked before the job, keeps its mark');
select is(pg_temp.deleted_at(8003), '2026-02-01T09:30:02.999999Z'::timestamptz,
  'call 8003, created at date_to exactly, is marked (the bound is inclusive)');
select is(pg_temp.deleted_at(8005), null,
  'call 8005, 1 µs after date_to, is not marked');

-- Fences at T3 = 10:00:15: nothing lands, and a fenced-out caller drops only its own lease.
select is_empty(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000002', 'd2', null,
              %L::jsonb, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(81), jsonb_build_array(pg_temp.tomb(8007, '2026-01-20T00:00:00Z', '2026-02-01T10:00:00Z'))),
  'a page from H2, which does not hold the lease, is fenced out (empty)');
select results_eq(
  format($$ select l.holder, l.deleted_cursor, l.deleted_marked, j.status::text
              from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
             where l.job_id = %L $$, pg_temp.job(81)),
  $$ values ('080d0000-0000-4000-8000-000000000001'::uuid, 'd2', 3, 'in_progress') $$,
  'the wrong holder changed nothing: H1 keeps its lease, cursor d2, 3 marked, still in progress');
select is_empty(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', 'd1', 'd2',
              %L::jsonb, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(81), jsonb_build_array(pg_temp.tomb(8007, '2026-01-20T00:00:00Z', '2026-02-01T10:00:00Z'))),
  'a page from a moved deleted_cursor (d1, the cursor is d2) is fenced out');
select results_eq(
  format($$ select l.holder, l.expires_at, l.deleted_cursor, l.deleted_marked
              from public.historical_sync_job_leases l where l.job_id = %L $$, pg_temp.job(81)),
  $$ values (null::uuid, null::timestamptz, 'd2', 3) $$,
  'the fenced-out caller (H1) dropped its own lease; cursor and count are unchanged');
select is(pg_temp.deleted_at(8007), null, 'neither fenced page marked call 8007');

select is_empty(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(82), jsonb_build_array(pg_temp.tomb(10001, '2026-01-12T00:00:00Z', '2026-02-01T10:00:00Z'))),
  'a deleted-calls page for a catch-up still in phase calls is fenced out');
select results_eq(
  format($$ select pg_temp.deleted_at(10001), l.holder, l.phase, j.status::text
              from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
             where l.job_id = %L $$, pg_temp.job(82)),
  $$ values (null::timestamptz, null::uuid, 'calls', 'in_progress') $$,
  'it marked nothing, left the phase and status, and dropped H1''s lease');
select is_empty(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, 120, '2026-02-01T10:00:15Z') $$,
    pg_temp.job(83), jsonb_build_array(pg_temp.tomb(11001, '2026-01-12T00:00:00Z', '2026-02-01T10:00:00Z'))),
  'a deleted-calls page for a cancelled job is fenced out');
select results_eq(
  format($$ select pg_temp.deleted_at(11001), l.holder, l.deleted_marked, j.status::text, j.completed_at
              from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
             where l.job_id = %L $$, pg_temp.job(83)),
  $$ values (null::timestamptz, null::uuid, 0, 'cancelled', '2026-02-01T10:00:01Z'::timestamptz) $$,
  'it marked nothing, the job stays cancelled as it was, and H1''s lease is dropped');

-- H1 claims job 81 again; the last page at T4 = 10:00:20 (next null) marks 8007 and completes.
update public.historical_sync_job_leases
   set holder = '080d0000-0000-4000-8000-000000000001', expires_at = '2026-02-01T10:02:16Z'
 where job_id = pg_temp.job(81);
select results_eq(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', 'd2', null,
              %L::jsonb, 120, '2026-02-01T10:00:20Z') $$,
    pg_temp.job(81),
    jsonb_build_array(pg_temp.tomb(8007, '2026-01-20T00:00:00Z', '2026-02-01T10:00:00Z'),
                      pg_temp.tomb(9001, '2026-01-12T00:00:00Z', '2026-02-01T10:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 4, 1) $$,
  'the last page (next null) marks 8007 (not agency 9''s 9001) and completes the job: deleted_marked 4');
select results_eq(
  format($$ select j.status::text, j.completed_at, j.last_activity_at, l.holder, l.expires_at,
                   l.deleted_cursor, l.deleted_marked, j.processed_calls, j.imported_calls, j.skipped_calls
              from public.historical_sync_job_leases l join public.historical_sync_jobs j on j.id = l.job_id
             where l.job_id = %L $$, pg_temp.job(81)),
  $$ values ('completed', '2026-02-01T10:00:20Z'::timestamptz, '2026-02-01T10:00:20Z'::timestamptz,
             null::uuid, null::timestamptz, null::text, 4, 7, 5, 2) $$,
  'job 81 is completed at T4 with its lease dropped, 4 marked, its calls counters as they were');
select results_eq(
  $$ select ultravox_call_id, ultravox_deleted_at from public.calls
      where agency_id = pg_temp.ag(8) and ultravox_deleted_at is not null order by ultravox_call_id $$,
  $$ values (pg_temp.cid(8001), '2026-02-01T09:00:00.123456Z'::timestamptz),
            (pg_temp.cid(8002), '2026-02-01T09:00:01.000001Z'::timestamptz),
            (pg_temp.cid(8003), '2026-02-01T09:30:02.999999Z'::timestamptz),
            (pg_temp.cid(8006), '2026-01-20T00:00:00Z'::timestamptz),
            (pg_temp.cid(8007), '2026-02-01T10:00:00Z'::timestamptz) $$,
  'agency 8 has exactly 5 marked calls: the 4 the job marked and the one marked before');
select is((select count(*)::int from public.calls where agency_id = pg_temp.ag(8)), 8,
  'no call row was deleted: agency 8 still has its 8 calls');
select is(pg_temp.deleted_at(9001), null, 'agency 9''s call is still unmarked');
select is_empty(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, 120, '2026-02-01T10:00:25Z') $$,
    pg_temp.job(81), jsonb_build_array(pg_temp.tomb(8008, '2026-01-21T00:00:00Z', '2026-02-01T10:00:00Z'))),
  'a page after completion is fenced out');
select is(pg_temp.deleted_at(8008), null, 'and marks nothing');

-- date_from null: the range has no lower bound.
select results_eq(
  format($$ select * from public.record_deleted_page(%L, '080d0000-0000-4000-8000-000000000001', null, null,
              %L::jsonb, 120, '2026-02-01T10:00:30Z') $$,
    pg_temp.job(84), jsonb_build_array(pg_temp.tomb(12001, '2001-01-01T00:00:00Z', '2026-02-01T10:00:00Z'))),
  $$ values ('completed'::public.sync_job_status, 1, 1) $$,
  'with date_from null, a call from 2001 is marked, and the one-page walk completes');

-- ══ agency_sync_settings under RLS ══════════════════════════════════════════════════
-- Agency 13: owner U1, member U3. Agency 14: admin U2. Agency 15: owner U4, with a row
-- (opted in). Agency 16: no member, no row. U5 belongs to no agency.
insert into auth.users (id, email)
select pg_temp.usr(n), format('u%s@catch-up.pgtap.test', n) from generate_series(1, 5) n;
insert into public.agency_members (agency_id, user_id, role) values
  (pg_temp.ag(13), pg_temp.usr(1), 'owner'),
  (pg_temp.ag(13), pg_temp.usr(3), 'member'),
  (pg_temp.ag(14), pg_temp.usr(2), 'admin'),
  (pg_temp.ag(15), pg_temp.usr(4), 'owner');
insert into public.agency_sync_settings (agency_id, auto_catch_up, updated_at)
values ('080a0000-0000-4000-8000-000000000015', true, '2026-01-01Z');

select is(
  (select auto_catch_up::text || ' ' || (updated_at = now())::text from public.agency_sync_settings
    where agency_id = '080a0000-0000-4000-8000-000000000015'),
  'true false', 'fixture: agency 15 is opted in, updated_at 2026-01-01');
select ok(not has_table_privilege('anon', 'public.agency_sync_settings', 'select, insert, update, delete'),
  'anon holds no privilege on agency_sync_settings');
select ok(not has_table_privilege('authenticated', 'public.agency_sync_settings', 'delete, truncate'),
  'authenticated may not delete or truncate agency_sync_settings');

-- The member U3 of agency 13.
set local role authenticated;
set local request.jwt.claims = '{"sub":"080b0000-0000-4000-8000-000000000003","role":"authenticated"}';
select throws_ok(
  $$ insert into public.agency_sync_settings (agency_id, auto_catch_up)
     values ('080a0000-0000-4000-8000-000000000013', true) $$,
  '42501', 'new row violates row-level security policy for table "agency_sync_settings"',
  'a member cannot add their agency''s settings');
reset role;

-- The owner U1 of agency 13.
set local role authenticated;
set local request.jwt.claims = '{"sub":"080b0000-0000-4000-8000-000000000001","role":"authenticated"}';
select lives_ok(
  $$ insert into public.agency_sync_settings (agency_id, auto_catch_up, updated_at)
     values ('080a0000-0000-4000-8000-000000000013', false, '2026-01-02Z') $$,
  'an owner adds their agency''s settings');
select results_eq(
  $$ select agency_id, auto_catch_up from public.agency_sync_settings $$,
  $$ values ('080a0000-0000-4000-8000-000000000013'::uuid, false) $$,
  'the owner sees exactly their agency''s row, not agency 15''s');
select results_eq(
  $$ with u as (update public.agency_sync_settings set auto_catch_up = true
                 where agency_id = '080a0000-0000-4000-8000-000000000013' returning auto_catch_up, updated_at = now())
     select * from u $$,
  $$ values (true, true) $$,
  'the owner opts their agency in (1 row), and updated_at moves to now');
select is_empty(
  $$ update public.agency_sync_settings set auto_catch_up = false
      where agency_id = '080a0000-0000-4000-8000-000000000015' returning agency_id $$,
  'the owner of agency 13 changes no row of agency 15');
select throws_ok(
  $$ insert into public.agency_sync_settings (agency_id, auto_catch_up)
     values ('080a0000-0000-4000-8000-000000000016', true) $$,
  '42501', 'new row violates row-level security policy for table "agency_sync_settings"',
  'the owner of agency 13 cannot add settings for agency 16');
select throws_ok(
  $$ update public.agency_sync_settings set agency_id = '080a0000-0000-4000-8000-000000000016'
      where agency_id = '080a0000-0000-4000-8000-000000000013' $$,
  '42501', 'new row violates row-level security policy for table "agency_sync_settings"',
  'the owner cannot move their row to another agency');
select throws_ok(
  $$ delete from public.agency_sync_settings $$,
  '42501', 'permission denied for table agency_sync_settings', 'the owner cannot delete settings');
reset role;

-- The member U3 again: reads, cannot change.
set local role authenticated;
set local request.jwt.claims = '{"sub":"080b0000-0000-4000-8000-000000000003","role":"authenticated"}';
select results_eq(
  $$ select agency_id, auto_catch_up from public.agency_sync_settings $$,
  $$ values ('080a0000-0000-4000-8000-000000000013'::uuid, true) $$,
  'a member reads exactly their agency''s row');
select is_empty(
  $$ update public.agency_sync_settings set auto_catch_up = false returning agency_id $$,
  'a member''s update changes no row');
select throws_ok(
  $$ insert into public.agency_sync_settings (agency_id, auto_catch_up)
     values ('080a0000-0000-4000-8000-000000000013', false)
     on conflict (agency_id) do update set auto_catch_up = excluded.auto_catch_up $$,
  '42501', null, 'a member cannot upsert their agency''s row either');
reset role;

-- The admin U2 of agency 14.
set local role authenticated;
set local request.jwt.claims = '{"sub":"080b0000-0000-4000-8000-000000000002","role":"authenticated"}';
select lives_ok(
  $$ insert into public.agency_sync_settings (agency_id) values ('080a0000-0000-4000-8000-000000000014') $$,
  'an admin adds their agency''s settings (auto_catch_up defaults to false)');
select results_eq(
  $$ with u as (update public.agency_sync_settings set auto_catch_up = true, updated_at = '2000-01-01Z'
                 returning agency_id, auto_catch_up, updated_at = now())
     select * from u $$,
  $$ values ('080a0000-0000-4000-8000-000000000014'::uuid, true, true) $$,
  'an admin''s update touches exactly their agency''s row, and updated_at is now whatever is sent');
select is_empty(
  $$ select * from public.agency_sync_settings
      where agency_id in ('080a0000-0000-4000-8000-000000000013', '080a0000-0000-4000-8000-000000000015') $$,
  'the admin of agency 14 sees no other agency''s row');
reset role;

-- U5, in no agency.
set local role authenticated;
set local request.jwt.claims = '{"sub":"080b0000-0000-4000-8000-000000000005","role":"authenticated"}';
select is_empty($$ select * from public.agency_sync_settings $$, 'a user in no agency sees no settings');
select is_empty($$ update public.agency_sync_settings set auto_catch_up = false returning agency_id $$,
  'and changes none');
reset role;

-- anon.
set local role anon;
select throws_ok($$ select * from public.agency_sync_settings $$,
  '42501', 'permission denied for table agency_sync_settings', 'anon cannot read agency_sync_settings');
select throws_ok(
  $$ insert into public.agency_sync_settings (agency_id) values ('080a0000-0000-4000-8000-000000000016') $$,
  '42501', 'permission denied for table agency_sync_settings', 'anon cannot add settings');
reset role;

select results_eq(
  $$ select agency_id, auto_catch_up, updated_at = now() from public.agency_sync_settings
      where agency_id in (pg_temp.ag(13), pg_temp.ag(14), pg_temp.ag(15), pg_temp.ag(16)) order by agency_id $$,
  $$ values (pg_temp.ag(13), true, true), (pg_temp.ag(14), true, true), (pg_temp.ag(15), true, false) $$,
  'as postgres: agencies 13 and 14 opted in by their owner and admin, agency 15 untouched, agency 16 without a row');
select is(
  (select updated_at from public.agency_sync_settings where agency_id = pg_temp.ag(15)),
  '2026-01-01Z'::timestamptz, 'agency 15''s updated_at did not move');

-- ══ privileges of the new functions ═════════════════════════════════════════════════
select ok(not has_function_privilege(r, f, 'execute'), format('%s cannot execute %s', r, f))
  from unnest(array['anon', 'authenticated']) r,
       unnest(array['public.catch_up_from(uuid, integer)',
                    'public.record_deleted_page(uuid, uuid, text, text, jsonb, integer, timestamptz)',
                    'public.schedule_catch_ups(integer, timestamptz)']) f
 order by r, f;
select ok(has_function_privilege('service_role', f, 'execute'), format('service_role can execute %s', f))
  from unnest(array['public.catch_up_from(uuid, integer)',
                    'public.record_deleted_page(uuid, uuid, text, text, jsonb, integer, timestamptz)',
                    'public.schedule_catch_ups(integer, timestamptz)']) f
 order by f;
select ok(not has_function_privilege('anon', 'public.my_agency_ids_as(text[])', 'execute'),
  'anon cannot execute my_agency_ids_as');

-- ══ schedule_catch_ups ══════════════════════════════════════════════════════════════
-- Agencies (a) 20: opted in, key, a completed job (date_to 2026-03-01T00:00:00.000001Z), no active
-- job; (b) 21: opted in, no key; (c) 22: opted in, key, a pending job; (d) 23: key, no row;
-- (e) 24: key, a row with auto_catch_up false. Agencies 13-15 of the RLS section opt out again.
update public.agency_sync_settings set auto_catch_up = false
 where agency_id in (pg_temp.ag(13), pg_temp.ag(14), pg_temp.ag(15));
select public.set_agency_ultravox_api_key(pg_temp.ag(n), 'uv_pgtap_080_' || n) from unnest(array[20, 22, 23, 24]) n;
insert into public.agency_sync_settings (agency_id, auto_catch_up) values
  (pg_temp.ag(20), true), (pg_temp.ag(21), true), (pg_temp.ag(22), true), (pg_temp.ag(24), false);
insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at, created_at) values
  (pg_temp.job(201), pg_temp.ag(20), '2026-03-01T00:00:00.000001Z', 'completed', '2026-03-01T00:10Z', '2026-03-01Z'),
  (pg_temp.job(221), pg_temp.ag(22), '2026-03-04Z', 'pending', null, '2026-03-04Z');

-- What the scheduler should find, counted here independently, over every agency of the
-- database (this file's and any other test's), in this transaction's snapshot.
create temp table mine as select pg_temp.ag(n) as id from generate_series(1, 40) n;
create temp table expected as
with s as (
  select a.id,
         a.id in (select id from mine) as mine,
         coalesce(s.auto_catch_up, false) as opted_in,
         public.agency_has_ultravox_api_key(a.id) as has_key,
         exists (select 1 from public.historical_sync_jobs j
                  where j.agency_id = a.id and j.status in ('pending', 'in_progress')) as active
    from public.agencies a left join public.agency_sync_settings s on s.agency_id = a.id
)
select count(*) filter (where not mine and opted_in and has_key and not active)::int as others_started,
       count(*) filter (where not mine and opted_in and not has_key)::int as others_no_key,
       count(*) filter (where not mine and opted_in and has_key and active)::int as others_active_job,
       count(*) filter (where not mine and not opted_in)::int as others_not_opted_in
  from s;
create temp table sched as
select public.schedule_catch_ups(p_now => '2026-03-05T12:00:00.080080Z') as log_id;

select is((select others_started from expected), 0,
  'no agency of another test is due a catch-up now (checked in this snapshot), so started counts this file''s only');
select results_eq(
  $$ select job_name, status, started_at, completed_at, error_message from public.cron_job_logs
      where id = (select log_id from sched) $$,
  $$ values ('catch-up-historical-sync', 'completed', '2026-03-05T12:00:00.080080Z'::timestamptz,
             '2026-03-05T12:00:00.080080Z'::timestamptz, null::text) $$,
  'schedule_catch_ups writes a completed cron_job_logs row named catch-up-historical-sync, at p_now');
select is(
  (select count(*)::int from public.cron_job_logs
    where job_name = 'catch-up-historical-sync' and started_at = '2026-03-05T12:00:00.080080Z'),
  1, 'exactly one log row for the run');
select is(
  (select count(*)::int from public.historical_sync_jobs where created_at = '2026-03-05T12:00:00.080080Z'),
  1, 'exactly one job was started');
select results_eq(
  $$ select j.agency_id, j.status::text, j.date_from, j.date_to, j.max_calls, l.trigger, l.catch_up, l.phase
       from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
      where j.created_at = '2026-03-05T12:00:00.080080Z' $$,
  $$ values (pg_temp.ag(20), 'pending', '2026-02-28T00:00:00.000001Z'::timestamptz,
             '2026-03-05T12:00:00.080080Z'::timestamptz, null::int, 'schedule', true, 'calls') $$,
  'it is agency (a)''s: pending, trigger schedule, catch_up, date_from = catch_up_from (2026-03-01T00:00:00.000001Z - 24 h), date_to = p_now, no cap');
-- This file's agencies: (a) started; no_key: (b); active_job: (c); not_opted_in: the other 37
-- of its 40 agencies, (d) and (e) among them.
select is(
  (select result from public.cron_job_logs where id = (select log_id from sched)),
  jsonb_build_object(
    'started', 1,
    'job_ids', (select jsonb_agg(j.id) from public.historical_sync_jobs j
                 where j.created_at = '2026-03-05T12:00:00.080080Z'),
    'skipped', jsonb_build_object('no_key', 1 + (select others_no_key from expected),
                                  'active_job', 1 + (select others_active_job from expected),
                                  'not_opted_in', 37 + (select others_not_opted_in from expected))),
  'the result: {started: 1, job_ids: [the job], skipped: {no_key: 1, active_job: 1, not_opted_in: 37}} (plus other tests'' agencies)');
select is(
  (select count(*)::int from public.historical_sync_jobs j
    where j.agency_id in (pg_temp.ag(21), pg_temp.ag(23), pg_temp.ag(24))),
  0, 'agencies (b), (d) and (e) got no job');
select is(
  (select count(*)::int from public.historical_sync_jobs j where j.agency_id = pg_temp.ag(22)),
  1, 'agency (c) still has only its pending job');

-- A second run: agency (a) now has an active job, so nothing starts.
create temp table sched2 as
select public.schedule_catch_ups(p_now => '2026-03-05T13:00:00.080080Z') as log_id;
select results_eq(
  $$ select status, (result ->> 'started')::int, result -> 'job_ids',
            (result -> 'skipped' ->> 'active_job')::int - (select others_active_job from expected),
            (result -> 'skipped' ->> 'no_key')::int - (select others_no_key from expected)
       from public.cron_job_logs where id = (select log_id from sched2) $$,
  $$ values ('completed', 0, '[]'::jsonb, 2, 1) $$,
  'a second run starts nothing: agency (a)''s catch-up is active now, active_job 2');
select is(
  (select count(*)::int from public.historical_sync_jobs j where j.agency_id = pg_temp.ag(20)),
  2, 'agency (a) has its completed job and the one catch-up');

-- ══ the cron job ════════════════════════════════════════════════════════════════════
select results_eq(
  $$ select schedule, command, active from cron.job where jobname = 'catch-up-historical-sync' $$,
  $$ values ('7 * * * *'::text, 'select public.schedule_catch_ups()'::text, true) $$,
  'the cron job catch-up-historical-sync runs select public.schedule_catch_ups() at minute 7 of every hour');


-- A completed job that stopped at its max_calls did not cover its range: catch_up_from
-- ignores it (agency 40: one capped job, newer than one that covered its range).
insert into public.historical_sync_jobs
  (id, agency_id, date_to, status, completed_at, created_at, max_calls,
   processed_calls, imported_calls)
values
  (pg_temp.job(401), pg_temp.ag(40), '2026-04-01Z', 'completed', '2026-04-01T01:00Z', '2026-04-01Z', null, 0, 0),
  (pg_temp.job(402), pg_temp.ag(40), '2026-05-01Z', 'completed', '2026-05-01T01:00Z', '2026-05-01Z', 100, 100, 100);
select is(public.catch_up_from(pg_temp.ag(40), 24), '2026-03-31T00:00:00Z'::timestamptz,
  'catch_up_from skips a job completed at its max_calls and starts from the one that covered its range');
update public.historical_sync_jobs set imported_calls = 99, skipped_calls = 1 where id = pg_temp.job(402);
select is(public.catch_up_from(pg_temp.ag(40), 24), '2026-04-30T00:00:00Z'::timestamptz,
  'a capped job that ended its range below the cap counts');

select * from finish();
rollback;
