-- create_sync_job: inserts a pending job and its engine state (what started it); empty while the
-- agency has an active one.
begin;
create extension if not exists pgtap with schema extensions;
select plan(27);

insert into public.agencies (id, name) values
  ('020a0000-0000-4000-8000-000000000001', 'Create agency one'),
  ('020a0000-0000-4000-8000-000000000002', 'Create agency two');

select results_eq(
  $$ select agency_id, date_from, date_to, status::text, max_calls, created_at, total_calls,
            processed_calls, imported_calls, skipped_calls, failed_calls, cursor, error_message,
            last_error_at, started_at, completed_at, last_activity_at
       from public.create_sync_job('020a0000-0000-4000-8000-000000000001',
              '2026-01-01T00:00:00Z', '2026-01-31T23:59:59.999999Z', 250, '2026-02-01T08:00:00.123456Z') $$,
  $$ values ('020a0000-0000-4000-8000-000000000001'::uuid, '2026-01-01T00:00:00Z'::timestamptz,
             '2026-01-31T23:59:59.999999Z'::timestamptz, 'pending', 250,
             '2026-02-01T08:00:00.123456Z'::timestamptz, null::int, 0, 0, 0, 0, null::text, null::text,
             null::timestamptz, null::timestamptz, null::timestamptz, null::timestamptz) $$,
  'create_sync_job returns the job as inserted: pending, created at p_now, counters 0, nothing started');
select is(
  (select count(*)::int from public.historical_sync_jobs where agency_id = '020a0000-0000-4000-8000-000000000001'),
  1, 'agency one has 1 job');
select is(
  (select to_char(date_to at time zone 'UTC', 'HH24:MI:SS.US') from public.historical_sync_jobs
    where agency_id = '020a0000-0000-4000-8000-000000000001'),
  '23:59:59.999999', 'date_to is stored to the microsecond');
select results_eq(
  $$ select l.holder, l.expires_at, l.failed_attempts, l.not_before, l.trigger
       from public.historical_sync_job_leases l
       join public.historical_sync_jobs j on j.id = l.job_id
      where j.agency_id = '020a0000-0000-4000-8000-000000000001' $$,
  $$ values (null::uuid, null::timestamptz, 0, null::timestamptz, 'user') $$,
  'creating a job inserts exactly 1 engine-state row, with no lease, 0 attempts, no not_before, trigger user (the default)');

select is_empty(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-000000000001', null, '2026-03-31Z', 100,
                                          '2026-02-01T08:00:01Z') $$,
  'a second create while the agency has a pending job returns no row');
select is(
  (select count(*)::int from public.historical_sync_jobs where agency_id = '020a0000-0000-4000-8000-000000000001'),
  1, 'and agency one still has exactly 1 job');
select is(
  (select count(*)::int from public.historical_sync_job_leases l
     join public.historical_sync_jobs j on j.id = l.job_id
    where j.agency_id = '020a0000-0000-4000-8000-000000000001'),
  1, 'and exactly 1 engine-state row: the refused create inserted none');

update public.historical_sync_jobs set status = 'in_progress', started_at = '2026-02-01T08:01:00Z'
 where agency_id = '020a0000-0000-4000-8000-000000000001';
select is_empty(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-000000000001', null, '2026-03-31Z', 100,
                                          '2026-02-01T08:02:00Z') $$,
  'a create while the agency has an in_progress job returns no row');

select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000002', null,
     '2026-03-31Z', null, '2026-02-01T08:02:00Z')),
  1, 'another agency may create its own job meanwhile');
select results_eq(
  $$ select date_from, max_calls from public.historical_sync_jobs
      where agency_id = '020a0000-0000-4000-8000-000000000002' $$,
  $$ values (null::timestamptz, null::int) $$,
  'a job created with date_from null and max_calls null keeps both null (all time, no cap)');

update public.historical_sync_jobs set status = 'completed', completed_at = '2026-02-01T09:00:00Z'
 where agency_id = '020a0000-0000-4000-8000-000000000001';
select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000001', null,
     '2026-03-31Z', 100, '2026-02-01T09:00:01Z')),
  1, 'once the job completes, the agency may create a new one');
update public.historical_sync_jobs set status = 'failed', completed_at = '2026-02-01T09:30:00Z'
 where agency_id = '020a0000-0000-4000-8000-000000000001' and status = 'pending';
select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000001', null,
     '2026-03-31Z', 100, '2026-02-01T09:30:01Z')),
  1, 'once the job fails, the agency may create a new one');
update public.historical_sync_jobs set status = 'cancelled', completed_at = '2026-02-01T10:00:00Z'
 where agency_id = '020a0000-0000-4000-8000-000000000001' and status = 'pending';
select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000001', null,
     '2026-03-31Z', 100, '2026-02-01T10:00:01Z')),
  1, 'once the job is cancelled, the agency may create a new one');
select results_eq(
  $$ select status::text, count(*)::int from public.historical_sync_jobs
      where agency_id = '020a0000-0000-4000-8000-000000000001' group by status order by status $$,
  $$ values ('cancelled', 1), ('completed', 1), ('failed', 1), ('pending', 1) $$,
  'agency one now has exactly one job of each of pending, completed, failed, cancelled');

select throws_ok(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-0000000000ff', null, '2026-03-31Z', 100) $$,
  '23503', 'insert or update on table "historical_sync_jobs" violates foreign key constraint "historical_sync_jobs_agency_id_fkey"',
  'create_sync_job for a missing agency raises the foreign key violation');
insert into public.agencies (id, name) values ('020a0000-0000-4000-8000-000000000003', 'Create agency three');
select throws_ok(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-000000000003',
       '2026-01-31T00:00:00Z', '2026-01-31T00:00:00Z', 100) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_date_range"',
  'create_sync_job with date_from = date_to raises sync_jobs_date_range');
select throws_ok(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-000000000003',
       '2026-01-31T00:00:00.000001Z', '2026-01-31T00:00:00Z', 100) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_date_range"',
  'create_sync_job with date_from a microsecond after date_to raises sync_jobs_date_range');
select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000003',
     '2026-01-30T23:59:59.999999Z', '2026-01-31T00:00:00Z', 1, '2026-02-01T00:00:00Z')),
  1, 'create_sync_job with date_from a microsecond before date_to creates the job');
select is(
  (select created_at from public.historical_sync_jobs where agency_id = '020a0000-0000-4000-8000-000000000003'),
  '2026-02-01T00:00:00Z'::timestamptz, 'created_at is the pinned p_now');

-- p_now defaults to now().
insert into public.agencies (id, name) values ('020a0000-0000-4000-8000-000000000004', 'Create agency four');
select is(
  (select created_at from public.create_sync_job('020a0000-0000-4000-8000-000000000004', null, '2026-03-31Z', 100)),
  now(), 'without p_now, created_at is now()');

select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean, integer)'::regprocedure),
  'create_sync_job is security definer with an empty search_path');
select function_privs_are('public', 'create_sync_job',
  array['uuid', 'timestamp with time zone', 'timestamp with time zone', 'integer', 'timestamp with time zone', 'text', 'boolean', 'integer'],
  'service_role', array['EXECUTE'], 'service_role may execute create_sync_job');

-- p_trigger: what started the job, 'user' or 'schedule'; nothing else is stored.
insert into public.agencies (id, name) values
  ('020a0000-0000-4000-8000-000000000005', 'Create agency five'),
  ('020a0000-0000-4000-8000-000000000006', 'Create agency six');
select is(
  (select count(*)::int from public.create_sync_job('020a0000-0000-4000-8000-000000000005', null,
     '2026-03-31Z', 100, '2026-02-01T11:00:00Z', 'schedule')),
  1, 'create_sync_job with p_trigger schedule creates the job');
select results_eq(
  $$ select l.trigger, l.holder, l.failed_attempts from public.historical_sync_job_leases l
       join public.historical_sync_jobs j on j.id = l.job_id
      where j.agency_id = '020a0000-0000-4000-8000-000000000005' $$,
  $$ values ('schedule', null::uuid, 0) $$,
  'and stores trigger schedule beside it, with no lease and 0 attempts');
select is(
  (select l.trigger from public.historical_sync_job_leases l
     join public.historical_sync_jobs j on j.id = l.job_id
    where j.agency_id = '020a0000-0000-4000-8000-000000000004'),
  'user', 'a job created without p_trigger (agency four) has trigger user');
select throws_ok(
  $$ select * from public.create_sync_job('020a0000-0000-4000-8000-000000000006', null, '2026-03-31Z', 100,
                                          '2026-02-01T11:00:00Z', 'cron') $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_trigger_valid"',
  'create_sync_job with p_trigger cron raises sync_job_leases_trigger_valid');
select is(
  (select count(*)::int from public.historical_sync_jobs where agency_id = '020a0000-0000-4000-8000-000000000006'),
  0, 'and the refused create left agency six without a job (job and state are one statement)');

select * from finish();
rollback;
