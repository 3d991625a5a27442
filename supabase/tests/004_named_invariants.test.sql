-- The contract's invariants are named checks: each is proven here by an insert or update that
-- breaks it and fails under its name (docs/ARCHITECTURE.md §4, §5).
begin;
create extension if not exists pgtap with schema extensions;
select plan(12);

insert into public.agencies (id, name) values ('00400000-0000-4000-8000-000000000001', 'pgtap 004');

-- ── sync_jobs_processed_is_sum ──────────────────────────────────────────────────────
select lives_ok(
  $$ insert into public.historical_sync_jobs
       (id, agency_id, date_to, status, processed_calls, imported_calls, skipped_calls, failed_calls,
        started_at)
     values ('00400000-0000-4000-8000-0000000000a1', '00400000-0000-4000-8000-000000000001',
             '2026-01-01', 'in_progress', 6, 3, 2, 1, now()) $$,
  'a job whose processed_calls is imported + skipped + failed is stored');
select throws_ok(
  $$ insert into public.historical_sync_jobs
       (agency_id, date_to, processed_calls, imported_calls, skipped_calls, failed_calls)
     values ('00400000-0000-4000-8000-000000000001', '2026-01-01', 5, 3, 1, 0) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_processed_is_sum"',
  'processed_calls 5 with 3 + 1 + 0 violates sync_jobs_processed_is_sum');
select throws_ok(
  $$ update public.historical_sync_jobs set imported_calls = imported_calls + 1
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_processed_is_sum"',
  'moving one counter alone violates sync_jobs_processed_is_sum');

-- ── sync_jobs_completed_at_iff_finished ─────────────────────────────────────────────
select throws_ok(
  $$ update public.historical_sync_jobs set status = 'completed'
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_completed_at_iff_finished"',
  'a completed job without completed_at violates sync_jobs_completed_at_iff_finished');
select throws_ok(
  $$ update public.historical_sync_jobs set status = 'failed'
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_completed_at_iff_finished"',
  'a failed job without completed_at violates sync_jobs_completed_at_iff_finished');
select throws_ok(
  $$ update public.historical_sync_jobs set status = 'cancelled'
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_completed_at_iff_finished"',
  'a cancelled job without completed_at violates sync_jobs_completed_at_iff_finished');
select throws_ok(
  $$ update public.historical_sync_jobs set completed_at = now()
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_completed_at_iff_finished"',
  'an in_progress job with completed_at violates sync_jobs_completed_at_iff_finished');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, completed_at)
     values ('00400000-0000-4000-8000-000000000001', '2026-01-01', now()) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_completed_at_iff_finished"',
  'a pending job with completed_at violates sync_jobs_completed_at_iff_finished');
select lives_ok(
  $$ update public.historical_sync_jobs set status = 'completed', completed_at = now()
      where id = '00400000-0000-4000-8000-0000000000a1' $$,
  'a completed job with completed_at is stored');

-- ── cron_job_logs_status_valid ──────────────────────────────────────────────────────
select throws_ok(
  $$ insert into public.cron_job_logs (job_name, status) values ('pgtap-004', 'done') $$,
  '23514', 'new row for relation "cron_job_logs" violates check constraint "cron_job_logs_status_valid"',
  'a cron_job_logs status outside running/completed/failed violates cron_job_logs_status_valid');
select lives_ok(
  $$ insert into public.cron_job_logs (job_name, status)
     values ('pgtap-004', 'running'), ('pgtap-004', 'completed'), ('pgtap-004', 'failed') $$,
  'running, completed and failed are valid cron_job_logs statuses');
select lives_ok(
  $$ insert into public.cron_job_logs (job_name, status) values ('pgtap-004', null) $$,
  'a null status stays allowed, as the seed column is nullable');

select * from finish();
rollback;
