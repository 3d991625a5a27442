-- Historical sync jobs, exactly as specified in docs/ARCHITECTURE.md §4, plus the
-- companion lease table the engine needs (the seed table gets no extra columns).

create type public.sync_job_status as enum ('pending', 'in_progress', 'completed', 'failed', 'cancelled');

-- ── historical_sync_jobs (seed specification) ─────────────────────────────────────
create table public.historical_sync_jobs (
  id uuid not null default extensions.uuid_generate_v4(),
  agency_id uuid not null,
  date_from timestamptz,
  date_to timestamptz not null,
  status public.sync_job_status not null default 'pending',
  total_calls integer,
  processed_calls integer not null default 0,
  imported_calls integer not null default 0,
  skipped_calls integer not null default 0,
  failed_calls integer not null default 0,
  cursor text,
  error_message text,
  last_error_at timestamptz,
  max_calls integer default 100,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  completed_at timestamptz,
  last_activity_at timestamptz,
  constraint historical_sync_jobs_pkey primary key (id),
  constraint historical_sync_jobs_agency_id_fkey foreign key (agency_id)
    references public.agencies (id) on delete cascade,
  constraint sync_jobs_counts_positive check (
    processed_calls >= 0 and imported_calls >= 0 and skipped_calls >= 0 and failed_calls >= 0
  ),
  constraint sync_jobs_date_range check (date_from is null or date_from < date_to)
);

create index idx_sync_jobs_agency on public.historical_sync_jobs (agency_id);
create index idx_sync_jobs_status on public.historical_sync_jobs (status);
create index idx_sync_jobs_active on public.historical_sync_jobs (agency_id, status)
  where status in ('pending', 'in_progress');
create index idx_sync_jobs_created on public.historical_sync_jobs (created_at desc);

-- Beyond the seed: the API accepts 1…1,000,000 or null; the database agrees.
alter table public.historical_sync_jobs add constraint sync_jobs_max_calls_positive
  check (max_calls is null or max_calls > 0);

-- Beyond the seed: makes "one active job per agency" a database guarantee, race-free.
create unique index uq_sync_jobs_one_active_per_agency on public.historical_sync_jobs (agency_id)
  where status in ('pending', 'in_progress');

comment on table public.historical_sync_jobs is
  'Tracks historical call data import jobs. Each job fetches past calls from Ultravox for a specified date range and imports them into the calls table.';
comment on column public.historical_sync_jobs.id is 'Primary key';
comment on column public.historical_sync_jobs.agency_id is 'FK → agencies.id';
comment on column public.historical_sync_jobs.date_from is 'Start of date range (null = beginning of time)';
comment on column public.historical_sync_jobs.date_to is 'End of date range';
comment on column public.historical_sync_jobs.status is 'Job status';
comment on column public.historical_sync_jobs.total_calls is 'Total calls found in Ultravox';
comment on column public.historical_sync_jobs.processed_calls is 'Calls processed so far';
comment on column public.historical_sync_jobs.imported_calls is 'Calls successfully imported';
comment on column public.historical_sync_jobs.skipped_calls is 'Calls skipped (already exist)';
comment on column public.historical_sync_jobs.failed_calls is 'Calls that failed to import';
comment on column public.historical_sync_jobs.cursor is 'Pagination cursor for resuming';
comment on column public.historical_sync_jobs.error_message is 'Last error message';
comment on column public.historical_sync_jobs.last_error_at is 'When the last error occurred';
comment on column public.historical_sync_jobs.max_calls is 'Maximum calls to import per job';
comment on column public.historical_sync_jobs.created_at is 'Record creation timestamp';
comment on column public.historical_sync_jobs.started_at is 'When processing began';
comment on column public.historical_sync_jobs.completed_at is 'When processing finished';
comment on column public.historical_sync_jobs.last_activity_at is 'Last processing activity timestamp';

alter table public.historical_sync_jobs enable row level security;
create policy "Members can see their agency's sync jobs" on public.historical_sync_jobs
  for select to authenticated using (public.has_agency_role(agency_id));

-- Dashboards subscribe to progress through Realtime; RLS above decides who sees what.
alter publication supabase_realtime add table public.historical_sync_jobs;

-- ── historical_sync_job_leases (engine state beside the seed table) ─────────────────
create table public.historical_sync_job_leases (
  job_id uuid primary key references public.historical_sync_jobs (id) on delete cascade,
  holder uuid,
  expires_at timestamptz,
  failed_attempts integer not null default 0,
  constraint sync_job_leases_holder_has_expiry check ((holder is null) = (expires_at is null)),
  constraint sync_job_leases_attempts_positive check (failed_attempts >= 0)
);
comment on table public.historical_sync_job_leases is
  'Which worker holds a job and until when, and how many invocations in a row failed transiently. Backend only.';
comment on column public.historical_sync_job_leases.holder is
  'Worker id of the invocation holding the job; null when released.';
comment on column public.historical_sync_job_leases.expires_at is
  'The lease is live until then; every page step renews it. A crashed worker''s lease simply runs out.';
comment on column public.historical_sync_job_leases.failed_attempts is
  'Consecutive invocations that ended in a transient error; reset by a successful page.';

alter table public.historical_sync_job_leases enable row level security;
revoke all on public.historical_sync_job_leases from anon, authenticated;
