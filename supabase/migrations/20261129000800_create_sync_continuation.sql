-- An invocation that spent its page or time budget with work left asks for the next one
-- at once, through pg_net, instead of leaving the job idle until the next cron tick.
-- pg_net sends the request from the database, so no invocation waits on another.

create or replace function public.request_sync_continuation()
returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_url text;
  v_key text;
begin
  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'functions_secret_key';
  if coalesce(v_url, '') = '' or coalesce(v_key, '') = '' then
    return null;  -- not set up for dispatch: the next cron tick continues instead
  end if;
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/process-historical-sync',
    body := '{}'::jsonb,
    headers := jsonb_build_object('Content-Type', 'application/json', 'apikey', v_key),
    timeout_milliseconds := 150000
  );
end;
$$;
comment on function public.request_sync_continuation is
  'Queues one call of process-historical-sync through pg_net (Vault secrets project_url and functions_secret_key), so a long import continues without waiting for the next minute; null when the secrets are not set.';

revoke execute on function public.request_sync_continuation() from public, anon, authenticated;
grant execute on function public.request_sync_continuation() to service_role;
