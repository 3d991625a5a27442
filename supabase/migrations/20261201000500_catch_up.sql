-- Keeping calls current after the backfill (docs/ARCHITECTURE.md §5 "Catch-up", "Deleted
-- calls"; §7): catch-up jobs, the walk of GET /api/deleted_calls that marks calls Ultravox
-- deleted, per-agency automatic catch-up and its hourly cron job.

-- ── calls Ultravox reports deleted ─────────────────────────────────────────────────
alter table public.calls add column ultravox_deleted_at timestamptz;
comment on column public.calls.ultravox_deleted_at is
  'When Ultravox deleted the call (its tombstone''s deletionTime); null while Ultravox lists it. Rows are never deleted for it.';

-- ── where a catch-up starts ────────────────────────────────────────────────────────
create or replace function public.catch_up_from(p_agency_id uuid, p_overlap_hours integer)
returns timestamptz
language sql stable security definer set search_path = '' as $$
  -- A job that stopped at its max_calls did not cover its range: it does not count.
  select max(j.date_to) - make_interval(hours => p_overlap_hours)
    from public.historical_sync_jobs j
   where j.agency_id = p_agency_id and j.status = 'completed'
     and (j.max_calls is null or j.imported_calls < j.max_calls);
$$;
comment on function public.catch_up_from is
  'The date_from of a catch-up: the newest date_to of the agency''s completed jobs that covered their range (not stopped at max_calls) minus the overlap; null (a full sync) when there is none.';

-- ── the page step of the deleted-calls walk ────────────────────────────────────────
create or replace function public.record_deleted_page(
  p_job_id uuid,
  p_holder uuid,
  p_from_cursor text,
  p_next_cursor text,
  p_tombstones jsonb,
  p_lease_seconds integer,
  p_now timestamptz default now()
) returns table (status public.sync_job_status, deleted_marked integer, page_marked integer)
language plpgsql security definer set search_path = '' as $$
declare
  v_job public.historical_sync_jobs;
  v_marked integer;
  v_done boolean := p_next_cursor is null;
begin
  -- Fenced like a calls page: in progress, ours, in this phase, from the cursor we read.
  select j.* into v_job
    from public.historical_sync_jobs j
    join public.historical_sync_job_leases l on l.job_id = j.id
   where j.id = p_job_id and j.status = 'in_progress'
     and l.holder = p_holder and l.phase = 'deleted_calls'
     and l.deleted_cursor is not distinct from p_from_cursor
     for update of j, l;
  if not found then
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
     where l.job_id = p_job_id and l.holder = p_holder;
    return;
  end if;

  -- Only this agency's rows, only calls inside the job's range, each marked once.
  update public.calls c
     set ultravox_deleted_at = t.deletion_time
    from jsonb_to_recordset(coalesce(p_tombstones, '[]')) as t(
           call_id uuid, created timestamptz, deletion_time timestamptz)
   where c.ultravox_call_id = t.call_id
     and c.agency_id = v_job.agency_id
     and c.ultravox_deleted_at is null
     and t.created <= v_job.date_to
     and (v_job.date_from is null or t.created >= v_job.date_from);
  get diagnostics v_marked = row_count;

  return query
  with job as (
    update public.historical_sync_jobs j
       set last_activity_at = p_now,
           status = case when v_done then 'completed'::public.sync_job_status else j.status end,
           completed_at = case when v_done then p_now else j.completed_at end
     where j.id = p_job_id
    returning j.status
  ), state as (
    update public.historical_sync_job_leases l
       set deleted_cursor = p_next_cursor,
           deleted_marked = l.deleted_marked + v_marked,
           holder = case when v_done then null else l.holder end,
           expires_at = case when v_done then null
                             else p_now + make_interval(secs => p_lease_seconds) end,
           failed_attempts = 0,
           last_problem = null
     where l.job_id = p_job_id
    returning l.deleted_marked
  )
  select job.status, state.deleted_marked, v_marked from job, state;
end;
$$;
comment on function public.record_deleted_page is
  'One page of GET /api/deleted_calls in one transaction: marks the agency''s matching calls ultravox_deleted_at (never another agency''s, never deleting a row), moves the deleted-calls cursor, renews the lease, and completes the job after the last page. Fenced like record_sync_page.';

-- ── automatic catch-up, per agency ─────────────────────────────────────────────────
create table public.agency_sync_settings (
  agency_id uuid primary key references public.agencies (id) on delete cascade,
  auto_catch_up boolean not null default false,
  updated_at timestamptz not null default now()
);
comment on table public.agency_sync_settings is
  'Per agency: whether the hourly catch-up-historical-sync job keeps its calls current. Members read it; owners and admins change it.';

create or replace function public.my_agency_ids_as(p_roles text[])
returns setof uuid
language sql stable security definer set search_path = '' as $$
  select m.agency_id from public.agency_members m
   where m.user_id = (select auth.uid()) and m.role = any (p_roles);
$$;
comment on function public.my_agency_ids_as is
  'The agencies where the calling user has one of p_roles; for policies, once per query.';
revoke execute on function public.my_agency_ids_as(text[]) from public, anon;
grant execute on function public.my_agency_ids_as(text[]) to authenticated, service_role;

alter table public.agency_sync_settings enable row level security;
create policy "Members can read their agency's sync settings" on public.agency_sync_settings
  for select to authenticated using (agency_id = any (array(select public.my_agency_ids())));
create policy "Owners and admins can add their agency's sync settings" on public.agency_sync_settings
  for insert to authenticated
  with check (agency_id = any (array(select public.my_agency_ids_as(array['owner', 'admin']))));
create policy "Owners and admins can change their agency's sync settings" on public.agency_sync_settings
  for update to authenticated
  using (agency_id = any (array(select public.my_agency_ids_as(array['owner', 'admin']))))
  with check (agency_id = any (array(select public.my_agency_ids_as(array['owner', 'admin']))));
revoke all on public.agency_sync_settings from anon;
revoke delete, truncate, references, trigger on public.agency_sync_settings from authenticated;

create or replace function public.touch_agency_sync_settings()
returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
create trigger agency_sync_settings_touch
  before update on public.agency_sync_settings
  for each row execute function public.touch_agency_sync_settings();
revoke execute on function public.touch_agency_sync_settings() from public, anon, authenticated;

-- ── the hourly catch-up ────────────────────────────────────────────────────────────
create or replace function public.schedule_catch_ups(
  p_overlap_hours integer default 24,   -- SYNC_CATCH_UP_OVERLAP_HOURS
  p_now timestamptz default now()
) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_log_id uuid;
  v_started uuid[] := '{}';
  v_no_key integer := 0;
  v_active integer := 0;
  v_not_opted_in integer;
  v_agency record;
  v_job_id uuid;
begin
  insert into public.cron_job_logs (job_name, started_at, status)
  values ('catch-up-historical-sync', p_now, 'running')
  returning id into v_log_id;
  begin
    select count(*) into v_not_opted_in
      from public.agencies a
      left join public.agency_sync_settings s on s.agency_id = a.id
     where not coalesce(s.auto_catch_up, false);

    for v_agency in
      select s.agency_id from public.agency_sync_settings s
       where s.auto_catch_up order by s.agency_id
    loop
      if not public.agency_has_ultravox_api_key(v_agency.agency_id) then
        v_no_key := v_no_key + 1;
        continue;
      end if;
      select j.id into v_job_id
        from public.create_sync_job(
          v_agency.agency_id,
          public.catch_up_from(v_agency.agency_id, p_overlap_hours),
          p_now, null, p_now, 'schedule', true) j;
      if v_job_id is null then
        v_active := v_active + 1;   -- the unique index on active jobs said no
      else
        v_started := v_started || v_job_id;
      end if;
    end loop;

    if cardinality(v_started) > 0 then
      perform public.request_sync_continuation();  -- processing starts now, not next minute
    end if;
    update public.cron_job_logs
       set status = 'completed', completed_at = p_now,
           result = jsonb_build_object(
             'started', cardinality(v_started), 'job_ids', to_jsonb(v_started),
             'skipped', jsonb_build_object('no_key', v_no_key, 'active_job', v_active,
                                           'not_opted_in', v_not_opted_in))
     where id = v_log_id;
  exception when others then
    -- As the dispatcher: never raise past the log row.
    update public.cron_job_logs
       set status = 'failed', completed_at = p_now, error_message = sqlerrm
     where id = v_log_id;
  end;
  return v_log_id;
end;
$$;
comment on function public.schedule_catch_ups is
  'The hourly cron command: starts a catch-up job (trigger schedule) for every agency opted in to auto_catch_up that has a key and no active job, and logs how many it started and why it skipped the others.';

revoke execute on function
  public.catch_up_from(uuid, integer),
  public.record_deleted_page(uuid, uuid, text, text, jsonb, integer, timestamptz),
  public.schedule_catch_ups(integer, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.catch_up_from(uuid, integer),
  public.record_deleted_page(uuid, uuid, text, text, jsonb, integer, timestamptz),
  public.schedule_catch_ups(integer, timestamptz)
to service_role;

select cron.schedule('catch-up-historical-sync', '7 * * * *',
                     'select public.schedule_catch_ups()');
