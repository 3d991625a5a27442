-- Fan-out (docs/ARCHITECTURE.md §7): when more work is claimable than one invocation takes,
-- the dispatcher and a continuation post several requests, each claiming distinct work, and
-- the tick's log row completes once every invocation it started has reported. Replaces
-- dispatch_historical_sync and request_sync_continuation of 20261201000300 (released
-- migrations are never edited).

-- ── how far to fan out ──────────────────────────────────────────────────────────────
-- The database cannot read the functions' environment: these mirror SYNC_MAX_INVOCATIONS and
-- SYNC_MAX_JOBS_PER_RUN. `deno task serve` writes them at start-up; hosted, set them with an
-- update when you change the functions' secrets (docs/OPERATIONS.md).
create table public.sync_dispatch_settings (
  singleton boolean primary key default true,
  max_invocations integer not null default 4,
  jobs_per_invocation integer not null default 4,
  updated_at timestamptz not null default now(),
  constraint sync_dispatch_settings_one_row check (singleton),
  constraint sync_dispatch_settings_invocations_valid check (max_invocations between 1 and 64),
  constraint sync_dispatch_settings_jobs_valid check (jobs_per_invocation between 1 and 64)
);
comment on table public.sync_dispatch_settings is
  'One row: how many processor requests one dispatch may post (SYNC_MAX_INVOCATIONS) and how much work one invocation claims (SYNC_MAX_JOBS_PER_RUN). Backend only.';
insert into public.sync_dispatch_settings default values;
alter table public.sync_dispatch_settings enable row level security;
revoke all on public.sync_dispatch_settings from anon, authenticated;

-- Pieces of work claimable now (a job's own walk, or a slice), of one job when given, and
-- the requests that takes: one per jobs_per_invocation pieces, at most max_invocations.
create function public.sync_invocations_wanted(
  p_job_id uuid default null,
  p_now timestamptz default now(),
  p_progressing_only boolean default false   -- leave out work whose last attempt failed
)
returns integer
language sql stable security definer set search_path = '' as $$
  with work as (
    select count(*) as n
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.status in ('pending', 'in_progress')   -- the active-jobs index
       and public.sync_job_is_claimable(j, l, p_now)
       and (p_job_id is null or j.id = p_job_id)
       and not (p_progressing_only and coalesce(l.failed_attempts, 0) > 0)
    union all
    select count(*)
      from public.historical_sync_jobs j
      join public.historical_sync_job_slices s on s.job_id = j.id
     where j.status in ('pending', 'in_progress')
       and public.sync_slice_is_claimable(j, s, p_now)
       and (p_job_id is null or j.id = p_job_id)
       and not (p_progressing_only and s.failed_attempts > 0)
  )
  -- The settings row, or its defaults should it have been deleted.
  , settings as (
    select coalesce(max(d.jobs_per_invocation), 4) as per_run, coalesce(max(d.max_invocations), 4) as cap
      from public.sync_dispatch_settings d
  )
  select least(ceil((select sum(n) from work)::numeric / greatest(per_run, 1)), cap)::integer
    from settings;
$$;
comment on function public.sync_invocations_wanted is
  'How many processor requests the claimable work needs now (0 when none): one per jobs_per_invocation pieces of work, at most max_invocations (sync_dispatch_settings). With p_progressing_only, work whose last attempt failed is left out: it is retried on a later tick, not at once.';

-- ── continuations and kicks ────────────────────────────────────────────────────────
-- Now a list of request ids (callers that `perform` it, as schedule_catch_ups, are unaffected).
drop function public.request_sync_continuation(uuid);
create function public.request_sync_continuation(
  p_job_id uuid default null,
  p_only_if_work boolean default false
)
returns bigint[]
language plpgsql security definer set search_path = '' as $$
declare
  v_ids bigint[] := '{}';
  v_body jsonb := case when p_job_id is null then '{}'::jsonb
                       else jsonb_build_object('job_id', p_job_id) end;
  -- "Only if work": work that is progressing, not a job whose last attempt just failed
  -- (retried on a later tick, so a transient outage does not burn its attempts in seconds).
  v_wanted integer := coalesce(public.sync_invocations_wanted(p_job_id, now(), p_only_if_work), 0);
begin
  if p_only_if_work and v_wanted = 0 then
    return v_ids;  -- nothing claimable: nothing to ask for
  end if;
  -- Otherwise at least one: a kick's job may be claimable only once its creating
  -- transaction is seen, and work left by a run's budget is its own lease until released.
  for i in 1 .. greatest(v_wanted, 1) loop
    v_ids := v_ids || public.post_process_historical_sync(v_body);
  end loop;
  return v_ids;
exception when object_not_in_prerequisite_state then
  return null;  -- not set up for dispatch (a Vault secret is missing): the next tick continues
end;
$$;
comment on function public.request_sync_continuation is
  'Queues short calls of process-historical-sync through pg_net (for p_job_id only, when given: a start''s kick), as many as the claimable work needs (sync_invocations_wanted; at least one, or with p_only_if_work none when nothing is claimable), so work begins or continues without waiting for the next minute; null when a Vault secret is missing.';

-- ── the dispatcher ─────────────────────────────────────────────────────────────────
create or replace function public.dispatch_historical_sync(p_now timestamptz default now())
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_log_id uuid;
  v_wanted integer;
  v_ids jsonb := '[]';
  v_sweep_error text;
begin
  insert into public.cron_job_logs (job_name, started_at, status)
  values ('process-historical-sync', p_now, 'running')
  returning id into v_log_id;

  -- Two blocks: a dispatch that fails (a missing secret) does not take back the sweep, and
  -- a sweep that fails does not stop the dispatch; either failure marks this call's row.
  begin
    -- A row left running this long belongs to an invocation that died or was never
    -- answered; pg_net's response row, when there is one, says why.
    update public.cron_job_logs c
       set status = 'failed', completed_at = p_now,
           error_message = 'timed out: no completion reported within 10 minutes' || coalesce(
             (select case
                       when r.status_code is not null
                         then format(' (the function answered HTTP %s: %s)', r.status_code, left(r.content, 200))
                       when r.error_msg is not null
                         then format(' (the request failed: %s)', left(r.error_msg, 200))
                     end
                from net._http_response r
               where r.id = any (array(select jsonb_array_elements_text(
                                         coalesce(c.result -> 'request_ids',
                                                  jsonb_build_array(c.result -> 'request_id'))))::bigint[])
               -- of several requests, the one that went wrong says why
               order by (r.error_msg is null and r.status_code between 200 and 299), r.created desc
               limit 1),   -- pg_net's response table has no key: never assume one row
             '')
     where c.status = 'running' and c.started_at < p_now - interval '10 minutes'
       and c.id <> v_log_id;
  exception when others then
    v_sweep_error := 'closing stale log rows failed: ' || sqlerrm;
  end;

  begin
    v_wanted := coalesce(public.sync_invocations_wanted(null, p_now), 0);
    if v_wanted = 0 then
      -- Idle minutes cost one insert and no HTTP call.
      update public.cron_job_logs
         set status = case when v_sweep_error is null then 'completed' else 'failed' end,
             completed_at = p_now, error_message = v_sweep_error,
             result = '{"dispatched": false, "reason": "no_work"}'
       where id = v_log_id;
      return v_log_id;
    end if;

    for i in 1 .. v_wanted loop
      v_ids := v_ids || to_jsonb(public.post_process_historical_sync(
                                   jsonb_build_object('cron_log_id', v_log_id)));
    end loop;
    -- A sweep failure is named on the row; the runs it dispatched still complete it.
    update public.cron_job_logs
       set result = jsonb_build_object('dispatched', true, 'request_ids', v_ids),
           error_message = v_sweep_error
     where id = v_log_id;
  exception when others then
    -- Any failure at all (a missing secret, pg_net refusing the request, a sweep that
    -- breaks) is recorded where users look for it: the dispatcher never raises past its log.
    update public.cron_job_logs
       set status = 'failed', completed_at = p_now, error_message = concat_ws('; ', v_sweep_error, sqlerrm)
     where id = v_log_id;
  end;
  return v_log_id;
end;
$$;
comment on function public.dispatch_historical_sync is
  'The every-minute cron command. Writes exactly one cron_job_logs row; when work is claimable, posts {cron_log_id, wait: false} to process-historical-sync once per jobs_per_invocation pieces of work (at most max_invocations) and leaves the row running until every run has reported (report_sync_run).';

-- ── a run reports to the tick that started it ──────────────────────────────────────
create function public.report_sync_run(
  p_id uuid,
  p_run jsonb,              -- the run's summary {jobs, duration_ms}, or null when it failed
  p_error text default null,
  p_now timestamptz default now()
) returns setof public.cron_job_logs
language plpgsql security definer set search_path = '' as $$
declare
  c public.cron_job_logs;
  v_runs jsonb;
  v_errors jsonb;
  v_done boolean;
begin
  -- Locked: runs of one tick report one after another, and only the last closes the row.
  select * into c from public.cron_job_logs where id = p_id and status = 'running' for update;
  if not found then
    return;  -- unknown or already closed: leave it alone
  end if;
  v_runs := coalesce(c.result -> 'runs', '[]') ||
            jsonb_build_array(coalesce(p_run, jsonb_build_object('error', p_error)));
  v_errors := coalesce(c.result -> 'errors', '[]') ||
              case when p_error is null then '[]'::jsonb else jsonb_build_array(p_error) end;
  -- request_ids as the dispatcher writes them; a row without (or of an older shape) closes at once
  v_done := jsonb_array_length(v_runs) >= case when jsonb_typeof(c.result -> 'request_ids') = 'array'
                                               then jsonb_array_length(c.result -> 'request_ids')
                                               else 1 end;
  return query
  update public.cron_job_logs l
     set result = coalesce(c.result, '{}')
                  || jsonb_build_object('runs', v_runs)
                  || case when jsonb_array_length(v_errors) > 0
                          then jsonb_build_object('errors', v_errors) else '{}' end
                  -- once all are in: every job of every run, and the longest run
                  || case when v_done then jsonb_build_object(
                       'jobs', (select coalesce(jsonb_agg(j.job order by r.i, j.k), '[]')
                                  from jsonb_array_elements(v_runs) with ordinality r(run, i),
                                       jsonb_array_elements(coalesce(r.run -> 'jobs', '[]'))
                                         with ordinality j(job, k)),
                       'duration_ms', (select max((r ->> 'duration_ms')::numeric)
                                         from jsonb_array_elements(v_runs) r))
                     else '{}' end,
         status = case when not v_done then 'running'
                       when jsonb_array_length(v_errors) > 0 then 'failed'
                       else 'completed' end,
         completed_at = case when v_done then p_now end,
         -- what the dispatcher noted (a failed sweep) is kept, and every run's error added
         error_message = case when v_done and jsonb_array_length(v_errors) > 0
                              then concat_ws('; ', c.error_message,
                                             (select string_agg(e, '; ') from jsonb_array_elements_text(v_errors) e))
                              else c.error_message end
   where l.id = p_id
  returning l.*;
end;
$$;
comment on function public.report_sync_run is
  'A processor run started by a dispatch reports its summary (or its error) on the tick''s log row; the row completes (or fails, naming each error) when every request the dispatch posted has reported, with runs, every job and the longest duration in result. Empty when the row is unknown or already closed.';

revoke execute on function
  public.sync_invocations_wanted(uuid, timestamptz, boolean),
  public.request_sync_continuation(uuid, boolean),
  public.report_sync_run(uuid, jsonb, text, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.sync_invocations_wanted(uuid, timestamptz, boolean),
  public.request_sync_continuation(uuid, boolean),
  public.report_sync_run(uuid, jsonb, text, timestamptz)
to service_role;
