-- Per-agency Ultravox API keys, kept in Supabase Vault under 'ultravox_api_key:<agency_id>'.

create or replace function public.set_agency_ultravox_api_key(p_agency_id uuid, p_api_key text)
returns void
language plpgsql security definer set search_path = '' as $$
declare
  v_name text := 'ultravox_api_key:' || p_agency_id::text;
  v_secret_id uuid;
begin
  if p_api_key is null or p_api_key = '' then
    raise exception 'The Ultravox API key must not be empty.' using errcode = '22023';
  end if;
  if not exists (select 1 from public.agencies where id = p_agency_id) then
    raise exception 'No agency %.', p_agency_id using errcode = '23503';
  end if;

  select id into v_secret_id from vault.secrets where name = v_name;
  if v_secret_id is null then
    perform vault.create_secret(p_api_key, v_name, 'Ultravox API key of agency ' || p_agency_id::text);
  else
    perform vault.update_secret(v_secret_id, p_api_key);  -- key rotation
  end if;
end;
$$;
comment on function public.set_agency_ultravox_api_key is
  'Creates or replaces (rotates) the agency''s Ultravox API key in Vault. Backend only.';
revoke execute on function public.set_agency_ultravox_api_key(uuid, text) from public, anon, authenticated;
grant execute on function public.set_agency_ultravox_api_key(uuid, text) to service_role;

create or replace function public.get_agency_ultravox_api_key(p_agency_id uuid)
returns text
language sql stable security definer set search_path = '' as $$
  select decrypted_secret
    from vault.decrypted_secrets
   where name = 'ultravox_api_key:' || p_agency_id::text;
$$;
comment on function public.get_agency_ultravox_api_key is
  'The agency''s Ultravox API key, or null. Read server-side by the processor only.';
revoke execute on function public.get_agency_ultravox_api_key(uuid) from public, anon, authenticated;
grant execute on function public.get_agency_ultravox_api_key(uuid) to service_role;

create or replace function public.agency_has_ultravox_api_key(p_agency_id uuid)
returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from vault.secrets where name = 'ultravox_api_key:' || p_agency_id::text);
$$;
comment on function public.agency_has_ultravox_api_key is
  'Whether a key is set, without reading it (start-historical-sync answers 422 otherwise).';
revoke execute on function public.agency_has_ultravox_api_key(uuid) from public, anon, authenticated;
grant execute on function public.agency_has_ultravox_api_key(uuid) to service_role;

-- An agency's key leaves Vault with the agency.
create or replace function public.delete_agency_ultravox_api_key()
returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from vault.secrets where name = 'ultravox_api_key:' || old.id::text;
  return old;
end;
$$;
comment on function public.delete_agency_ultravox_api_key is
  'Trigger: removes a deleted agency''s Ultravox key from Vault.';
revoke execute on function public.delete_agency_ultravox_api_key() from public, anon, authenticated;

create trigger agencies_delete_ultravox_api_key
  after delete on public.agencies
  for each row execute function public.delete_agency_ultravox_api_key();
