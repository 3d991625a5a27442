-- The contract's invariants as named checks (River names its invariants as constraints), so
-- no code path, present or future, can store a job or a log row that breaks them. Extra
-- constraints on the seed tables are allowed; extra columns are not (docs/ARCHITECTURE.md §4).

alter table public.historical_sync_jobs
  add constraint sync_jobs_processed_is_sum
    check (processed_calls = imported_calls + skipped_calls + failed_calls),
  add constraint sync_jobs_completed_at_iff_finished
    check ((completed_at is not null) = (status in ('completed', 'failed', 'cancelled')));

comment on constraint sync_jobs_processed_is_sum on public.historical_sync_jobs is
  'processed = imported + skipped + failed, always.';
comment on constraint sync_jobs_completed_at_iff_finished on public.historical_sync_jobs is
  'completed_at is set exactly when the job is completed, failed or cancelled.';

-- The seed's status column is nullable text with a default of 'running'; these are the values
-- the backend writes.
alter table public.cron_job_logs
  add constraint cron_job_logs_status_valid
    check (status in ('running', 'completed', 'failed'));

comment on constraint cron_job_logs_status_valid on public.cron_job_logs is
  'A cron execution is running, completed or failed.';
