-- Audit log of cron executions, exactly as specified in docs/ARCHITECTURE.md §4.

create table public.cron_job_logs (
  id uuid not null default gen_random_uuid(),
  job_name text not null,
  started_at timestamptz default now(),
  completed_at timestamptz,
  status text default 'running',
  result jsonb,
  error_message text,
  created_at timestamptz default now(),
  constraint cron_job_logs_pkey primary key (id)
);
create index idx_cron_job_logs_job_name on public.cron_job_logs (job_name);
create index idx_cron_job_logs_started_at on public.cron_job_logs (started_at desc);

comment on table public.cron_job_logs is
  'Audit log for cron job executions. Each row represents one execution of a scheduled job.';
comment on column public.cron_job_logs.id is 'Primary key';
comment on column public.cron_job_logs.job_name is 'Name of the cron job';
comment on column public.cron_job_logs.started_at is 'When execution started';
comment on column public.cron_job_logs.completed_at is 'When execution finished';
comment on column public.cron_job_logs.status is 'Execution status (e.g., running, completed, failed)';
comment on column public.cron_job_logs.result is 'Execution result data';
comment on column public.cron_job_logs.error_message is 'Error message if failed';
comment on column public.cron_job_logs.created_at is 'Record creation timestamp';

-- Backend only: RLS with no policy, and no grants to the API roles.
alter table public.cron_job_logs enable row level security;
revoke all on public.cron_job_logs from anon, authenticated;
