-- pg_cron drives processing: every minute a SQL dispatcher decides whether any job needs
-- work and only then calls process-historical-sync through pg_net. Every execution leaves
-- exactly one row in cron_job_logs. (docs/ARCHITECTURE.md §7)

create extension if not exists pg_cron;

-- pg_net where the platform has it; on plain Postgres the local bootstrap's net schema
-- stands in and `deno task serve` executes its queue.
do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_net with schema extensions;
  end if;
end
$$;

-- ── closing a log row ──────────────────────────────────────────────────────────────
create or replace function public.complete_cron_log(
  p_id uuid,
  p_status text,
  p_result jsonb default null,
  p_error text default null,
  p_now timestamptz default now()
) returns setof public.cron_job_logs
language sql security definer set search_path = '' as $$
  update public.cron_job_logs c
     set status = p_status,
         completed_at = p_now,
         result = coalesce(p_result, c.result),
         error_message = p_error
   where c.id = p_id and c.status = 'running'
  returning c.*;
$$;
comment on function public.complete_cron_log is
  'Completes a running cron_job_logs row (completed or failed); empty when it is unknown or already closed, which callers treat as "leave it alone".';

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
    raise exception 'Vault secret project_url is missing: select vault.create_secret(''https://<ref>.supabase.co'', ''project_url'');';
  end if;
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'functions_secret_key';
  if coalesce(v_key, '') = '' then
    raise exception 'Vault secret functions_secret_key is missing: select vault.create_secret(''<secret API key>'', ''functions_secret_key'');';
  end if;
  -- pg_net's default time-out is 5 s; an invocation may take up to SYNC_TIME_BUDGET_MS + a grace.
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/process-historical-sync',
    body := p_body,
    headers := jsonb_build_object('Content-Type', 'application/json', 'apikey', v_key),
    timeout_milliseconds := 150000
  );
end;
$$;
comment on function public.post_process_historical_sync is
  'Queues a POST of p_body to <project_url>/functions/v1/process-historical-sync with the secret key in apikey (Vault secrets project_url and functions_secret_key); raises, naming the secret, when one is missing.';

-- ── the dispatcher ─────────────────────────────────────────────────────────────────
create or replace function public.dispatch_historical_sync(p_now timestamptz default now())
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_log_id uuid;
  v_request_id bigint;
begin
  -- A row left running this long belongs to an invocation that died or was never answered;
  -- pg_net's response row, when there is one, says why.
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
             where r.id = (c.result ->> 'request_id')::bigint),
           '')
   where c.status = 'running' and c.started_at < p_now - interval '10 minutes';

  insert into public.cron_job_logs (job_name, started_at, status)
  values ('process-historical-sync', p_now, 'running')
  returning id into v_log_id;

  begin
    if not exists (
      select 1
        from public.historical_sync_jobs j
        left join public.historical_sync_job_leases l on l.job_id = j.id
       where j.status in ('pending', 'in_progress')
         and (l.holder is null or l.expires_at < p_now)
    ) then
      -- Idle minutes cost one insert and no HTTP call.
      update public.cron_job_logs
         set status = 'completed', completed_at = p_now,
             result = '{"dispatched": false, "reason": "no_work"}'
       where id = v_log_id;
      return v_log_id;
    end if;

    v_request_id := public.post_process_historical_sync(jsonb_build_object('cron_log_id', v_log_id));
    update public.cron_job_logs
       set result = jsonb_build_object('dispatched', true, 'request_id', v_request_id)
     where id = v_log_id;
  exception when others then
    -- Never raise past the log: the failure is recorded where users look for it.
    update public.cron_job_logs
       set status = 'failed', completed_at = p_now, error_message = sqlerrm
     where id = v_log_id;
  end;
  return v_log_id;
end;
$$;
comment on function public.dispatch_historical_sync is
  'The every-minute cron command. Writes one cron_job_logs row; when an active job has no live lease, posts {cron_log_id} to process-historical-sync (Vault secrets project_url and functions_secret_key) and leaves the row running for the function to complete.';

-- ── housekeeping ───────────────────────────────────────────────────────────────────
create or replace function public.cleanup_cron_job_logs(p_now timestamptz default now())
returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  v_log_id uuid;
  v_logs bigint;
  v_details bigint;
begin
  insert into public.cron_job_logs (job_name, started_at, status)
  values ('cleanup-cron-job-logs', p_now, 'running')
  returning id into v_log_id;
  begin
    delete from public.cron_job_logs where started_at < p_now - interval '30 days';
    get diagnostics v_logs = row_count;
    -- pg_cron leaves end_time null on runs it failed itself (server restarted, …).
    delete from cron.job_run_details
     where coalesce(end_time, start_time) < p_now - interval '7 days';
    get diagnostics v_details = row_count;
    update public.cron_job_logs
       set status = 'completed', completed_at = p_now,
           result = jsonb_build_object('deleted_cron_job_logs', v_logs,
                                       'deleted_job_run_details', v_details)
     where id = v_log_id;
  exception when others then
    update public.cron_job_logs
       set status = 'failed', completed_at = p_now, error_message = sqlerrm
     where id = v_log_id;
  end;
  return v_log_id;
end;
$$;
comment on function public.cleanup_cron_job_logs is
  'Daily: deletes cron_job_logs older than 30 days and cron.job_run_details older than 7 days (both grow without bound otherwise), logging itself.';

revoke execute on function
  public.post_process_historical_sync(jsonb),
  public.complete_cron_log(uuid, text, jsonb, text, timestamptz),
  public.dispatch_historical_sync(timestamptz),
  public.cleanup_cron_job_logs(timestamptz)
from public, anon, authenticated;
grant execute on function
  public.post_process_historical_sync(jsonb),
  public.complete_cron_log(uuid, text, jsonb, text, timestamptz),
  public.dispatch_historical_sync(timestamptz),
  public.cleanup_cron_job_logs(timestamptz)
to service_role;

-- ── the view of active schedules ───────────────────────────────────────────────────
create or replace view public.virsyn_cron_jobs as
  select jobid, jobname, schedule, command, active
    from cron.job
   where active;
comment on view public.virsyn_cron_jobs is
  'The currently active cron job definitions (a paused job drops out). Backend only.';
revoke all on public.virsyn_cron_jobs from public, anon, authenticated;
grant select on public.virsyn_cron_jobs to service_role;

-- ── the schedules (cron.schedule upserts by name: re-applying never duplicates) ────
select cron.schedule('process-historical-sync', '* * * * *',
                     'select public.dispatch_historical_sync()');
select cron.schedule('cleanup-cron-job-logs', '17 3 * * *',
                     'select public.cleanup_cron_job_logs()');
