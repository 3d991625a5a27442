-- Dispatch revised (docs/ARCHITECTURE.md §7). Replaces the functions of 20261129000700 and
-- 20261129000800 (released migrations are never edited: docs/DECISIONS.md "Migrations").
--
--   * pg_net requests are short: the processor is asked with `wait: false`, answers 202 at
--     once and runs on in the background, so the request is open for well under a second
--     (time-out 10 s). The real pg_net worker sends a batch and waits for every request in it
--     before it reads the queue again: a request held open for a whole run would hold back
--     every pg_net request of the project, its Database Webhooks included;
--   * the dispatcher asks sync_job_is_claimable, so a job waiting out a Retry-After is no
--     work, and it writes its log row first and never raises past it, whatever fails;
--   * a missing Vault secret is its own error (SQLSTATE 55000), the only one a continuation
--     treats as "dispatch is not set up here";
--   * the cron view is read-only for every role.

-- ── the call of process-historical-sync through pg_net ─────────────────────────────
create or replace function public.post_process_historical_sync(p_body jsonb)
returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_url text;
  v_key text;
begin
  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  if coalesce(v_url, '') = '' then
    raise exception 'Vault secret project_url is missing: select vault.create_secret(''https://<ref>.supabase.co'', ''project_url'');'
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'functions_secret_key';
  if coalesce(v_key, '') = '' then
    raise exception 'Vault secret functions_secret_key is missing: select vault.create_secret(''<secret API key>'', ''functions_secret_key'');'
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  -- wait: false makes the function answer 202 at once; 10 s covers a cold start.
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/process-historical-sync',
    body := p_body || '{"wait": false}'::jsonb,
    headers := jsonb_build_object('Content-Type', 'application/json', 'apikey', v_key),
    timeout_milliseconds := 10000
  );
end;
$$;
comment on function public.post_process_historical_sync is
  'Queues a short POST of p_body plus {"wait": false} to <project_url>/functions/v1/process-historical-sync with the secret key in apikey (Vault secrets project_url and functions_secret_key); raises SQLSTATE 55000, naming the secret, when one is missing.';

-- ── the dispatcher ─────────────────────────────────────────────────────────────────
create or replace function public.dispatch_historical_sync(p_now timestamptz default now())
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_log_id uuid;
  v_request_id bigint;
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
               order by r.created desc
               limit 1),   -- pg_net's response table has no key: never assume one row
             '')
     where c.status = 'running' and c.started_at < p_now - interval '10 minutes'
       and c.id <> v_log_id;
  exception when others then
    v_sweep_error := 'closing stale log rows failed: ' || sqlerrm;
  end;

  begin
    if not exists (
      select 1
        from public.historical_sync_jobs j
        left join public.historical_sync_job_leases l on l.job_id = j.id
       where j.status in ('pending', 'in_progress')   -- the active-jobs index
         and public.sync_job_is_claimable(j, l, p_now)
    ) then
      -- Idle minutes cost one insert and no HTTP call.
      update public.cron_job_logs
         set status = case when v_sweep_error is null then 'completed' else 'failed' end,
             completed_at = p_now, error_message = v_sweep_error,
             result = '{"dispatched": false, "reason": "no_work"}'
       where id = v_log_id;
      return v_log_id;
    end if;

    v_request_id := public.post_process_historical_sync(jsonb_build_object('cron_log_id', v_log_id));
    -- A sweep failure is named on the row; the run it dispatched still completes it.
    update public.cron_job_logs
       set result = jsonb_build_object('dispatched', true, 'request_ids', jsonb_build_array(v_request_id)),
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
  'The every-minute cron command. Writes exactly one cron_job_logs row; when a job is claimable, posts {cron_log_id, wait: false} to process-historical-sync and leaves the row running until the run completes it with its summary.';

-- ── continuations and kicks ────────────────────────────────────────────────────────
drop function public.request_sync_continuation();
create function public.request_sync_continuation(p_job_id uuid default null)
returns bigint
language plpgsql security definer set search_path = '' as $$
begin
  return public.post_process_historical_sync(
    case when p_job_id is null then '{}'::jsonb else jsonb_build_object('job_id', p_job_id) end);
exception when object_not_in_prerequisite_state then
  return null;  -- not set up for dispatch (a Vault secret is missing): the next tick continues
end;
$$;
comment on function public.request_sync_continuation is
  'Queues one short call of process-historical-sync through pg_net (for p_job_id only, when given: a start''s kick), so work begins or continues without waiting for the next minute; null when a Vault secret is missing.';
revoke execute on function public.request_sync_continuation(uuid) from public, anon, authenticated;
grant execute on function public.request_sync_continuation(uuid) to service_role;

-- ── the view of active schedules, read-only for every role ─────────────────────────
-- A simple view over cron.job is auto-updatable, and Supabase's default privileges grant
-- service_role everything on new relations in public: without this the secret key could
-- rewrite the command pg_cron runs as postgres. LIMIT ALL makes the view not updatable
-- (PostgreSQL docs, "Updatable Views": no LIMIT at the top level), and no API role keeps a
-- write privilege.
create or replace view public.virsyn_cron_jobs as
  select jobid, jobname, schedule, command, active
    from cron.job
   where active
   limit all;
comment on view public.virsyn_cron_jobs is
  'The currently active cron job definitions (a paused job drops out). Backend only, read-only.';
revoke all on public.virsyn_cron_jobs from public, anon, authenticated, service_role;
grant select on public.virsyn_cron_jobs to service_role;
