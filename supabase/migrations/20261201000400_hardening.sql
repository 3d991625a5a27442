-- Hardening after a security review (docs/ARCHITECTURE.md §4, §6; docs/RELIABILITY.md
-- "Findings"). Released migrations are never edited (docs/DECISIONS.md "Migrations").
--
--   * RLS evaluates membership once per query: `agency_id = any (array(select
--     my_agency_ids()))` over a set-returning helper (Supabase's RLS performance advice), an
--     InitPlan computed once, which the planner can match against the agency_id indexes
--     instead of calling a function for every row. (`in (select …)` is evaluated once too,
--     but as a hashed filter that no index serves: RLS quals are never turned into joins.);
--   * starts and cancels are rate limited per agency, counted in the database so every
--     isolate shares the count.

-- ── membership, once per query ─────────────────────────────────────────────────────
-- security definer so the policy on agency_members does not recurse into itself.
create or replace function public.my_agency_ids()
returns setof uuid
language sql stable security definer set search_path = '' as $$
  select m.agency_id from public.agency_members m where m.user_id = (select auth.uid());
$$;
comment on function public.my_agency_ids is
  'The agencies the calling user (auth.uid()) is a member of; what every member policy asks, once per query.';
revoke execute on function public.my_agency_ids() from public, anon;
grant execute on function public.my_agency_ids() to authenticated, service_role;

drop policy "Members can see their agencies" on public.agencies;
create policy "Members can see their agencies" on public.agencies
  for select to authenticated using (id = any (array(select public.my_agency_ids())));

drop policy "Members can see the members of their agencies" on public.agency_members;
create policy "Members can see the members of their agencies" on public.agency_members
  for select to authenticated using (agency_id = any (array(select public.my_agency_ids())));

drop policy "Members can see their agency's sync jobs" on public.historical_sync_jobs;
create policy "Members can see their agency's sync jobs" on public.historical_sync_jobs
  for select to authenticated using (agency_id = any (array(select public.my_agency_ids())));

drop policy "Members can see their agency's calls" on public.calls;
create policy "Members can see their agency's calls" on public.calls
  for select to authenticated using (agency_id = any (array(select public.my_agency_ids())));

-- ── starts and cancels, per agency per minute ──────────────────────────────────────
create table public.sync_user_actions (
  agency_id uuid not null references public.agencies (id) on delete cascade,
  at timestamptz not null default now()
);
create index idx_sync_user_actions_agency_at on public.sync_user_actions (agency_id, at);
comment on table public.sync_user_actions is
  'Starts and cancels of the last minute, per agency, for SYNC_USER_ACTIONS_PER_MINUTE. Backend only.';
alter table public.sync_user_actions enable row level security;
revoke all on public.sync_user_actions from anon, authenticated;

create or replace function public.note_sync_user_action(
  p_agency_id uuid,
  p_limit integer,
  p_now timestamptz default now()
) returns integer
language plpgsql security definer set search_path = '' as $$
declare
  v_count integer;
  v_oldest timestamptz;
begin
  -- One agency's actions are counted one at a time, so racing isolates never both pass.
  perform pg_advisory_xact_lock(hashtextextended('sync_user_actions:' || p_agency_id::text, 0));
  delete from public.sync_user_actions a
   where a.agency_id = p_agency_id and a.at <= p_now - interval '1 minute';
  select count(*), min(a.at) into v_count, v_oldest
    from public.sync_user_actions a where a.agency_id = p_agency_id;
  if v_count >= p_limit then
    -- Seconds until the oldest action of the window leaves it (at least 1).
    return greatest(1, ceil(extract(epoch from v_oldest + interval '1 minute' - p_now))::integer);
  end if;
  insert into public.sync_user_actions (agency_id, at) values (p_agency_id, p_now);
  return 0;
end;
$$;
comment on function public.note_sync_user_action is
  'Counts a start or cancel of the agency and returns 0, or, when p_limit actions already fell in the last minute, counts nothing and returns the seconds to wait (Retry-After).';
revoke execute on function public.note_sync_user_action(uuid, integer, timestamptz)
  from public, anon, authenticated;
grant execute on function public.note_sync_user_action(uuid, integer, timestamptz) to service_role;
