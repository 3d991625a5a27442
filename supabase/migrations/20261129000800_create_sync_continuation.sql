-- An invocation that spent its page or time budget with work left asks for the next one
-- at once, through pg_net, instead of leaving the job idle until the next cron tick.
-- pg_net sends the request from the database, so no invocation waits on another.

create or replace function public.request_sync_continuation()
returns bigint
language plpgsql security definer set search_path = '' as $$
begin
  return public.post_process_historical_sync('{}'::jsonb);
exception when others then
  return null;  -- not set up for dispatch (a Vault secret is missing): the next tick continues
end;
$$;
comment on function public.request_sync_continuation is
  'Queues one call of process-historical-sync through pg_net (Vault secrets project_url and functions_secret_key), so a long import continues without waiting for the next minute; null when the secrets are not set.';

revoke execute on function public.request_sync_continuation() from public, anon, authenticated;
grant execute on function public.request_sync_continuation() to service_role;
