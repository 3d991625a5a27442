-- The import target: one row per Ultravox call, unique across agencies.

create table public.calls (
  id uuid primary key default gen_random_uuid(),
  agency_id uuid not null references public.agencies (id) on delete cascade,
  ultravox_call_id uuid not null unique,
  ultravox_agent_id uuid,
  created_at timestamptz not null,
  joined_at timestamptz,
  ended_at timestamptz,
  end_reason text,
  duration_seconds numeric,
  billed_duration_seconds numeric,
  short_summary text,
  summary text,
  recording_enabled boolean not null default false,
  metadata jsonb not null default '{}',
  raw jsonb not null,
  source text not null,
  historical_sync_job_id uuid references public.historical_sync_jobs (id) on delete set null,
  imported_at timestamptz not null default now()
);
create index idx_calls_agency_created on public.calls (agency_id, created_at desc);
create index idx_calls_historical_sync_job on public.calls (historical_sync_job_id)
  where historical_sync_job_id is not null;

comment on table public.calls is 'Voice-AI calls of an agency; historical ones are imported from Ultravox.';
comment on column public.calls.ultravox_call_id is
  'Ultravox callId; unique across agencies, so a call another agency holds is skipped, never duplicated.';
comment on column public.calls.created_at is 'Ultravox created (microsecond precision).';
comment on column public.calls.duration_seconds is 'ended - joined, in seconds; null when either is null.';
comment on column public.calls.raw is 'The call object exactly as Ultravox returned it.';
comment on column public.calls.source is '''historical_sync'' for calls imported by a sync job.';

alter table public.calls enable row level security;
create policy "Members can see their agency's calls" on public.calls
  for select to authenticated using (public.has_agency_role(agency_id));
