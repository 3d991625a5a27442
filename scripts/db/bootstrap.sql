-- Local stand-in for what the Supabase platform provides before any migration runs.
--
-- Applied by `deno task db:reset`, as the superuser supabase_admin, on a plain Postgres 15.
-- Every piece mirrors the real
-- definition (supabase/postgres roles and grants, GoTrue's auth schema, supabase/vault,
-- supabase/pg_net) closely enough for our migrations and tests, and is skipped where the
-- real one already exists (a `supabase start` database, a hosted project).
--
-- Schemas created here carry the comment marker 'virsyn:local-bootstrap' so that the
-- reset drops exactly what this file made and never a real platform schema.

\set ON_ERROR_STOP on
set client_min_messages = warning;

-- ── Roles, as hosted ───────────────────────────────────────────────────────────────
-- This file runs as supabase_admin, the platform's superuser (docs/ARCHITECTURE.md §8).
-- `postgres` is demoted exactly as supabase/postgres does it
-- (migrations/db/migrations/10000000000000_demote-postgres.sql, 20230201083204,
-- 20230306081037, 20240606060239): not a superuser, with CREATEDB CREATEROLE REPLICATION
-- BYPASSRLS, and member of pg_monitor, pg_read_all_data, pg_signal_backend and the three
-- API roles. The API roles are NOLOGIN and INHERIT (20230529180330), service_role bypasses
-- RLS, authenticator logs in without inheriting.
do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin bypassrls;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
end
$$;
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit;
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
grant anon, authenticated, service_role to authenticator;

alter role postgres nosuperuser createdb createrole login replication bypassrls;
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
do $$
begin
  execute format('alter database %I owner to postgres', current_database());
  execute format('grant all on database %I to postgres', current_database());
end
$$;

-- The public schema belongs to the database's owner, as on a new PG15 database.
alter schema public owner to pg_database_owner;

-- Supabase's default grants on public (00000000000000-initial-schema.sql): what postgres
-- (the migrations) and supabase_admin create there is reachable by the API roles, so RLS
-- and explicit revokes, not missing grants, are what refuse access.
grant usage on schema public to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public
  grant all on sequences to postgres, anon, authenticated, service_role;

-- ── extensions schema on the search path ───────────────────────────────────────────
-- Created by postgres on the platform (the init scripts ran as postgres), so postgres owns
-- it; the extensions in it belong to supabase_admin, and postgres may use everything in it
-- (20230224042246). pgtap is installed here for the tests: on the platform supautils lets
-- postgres create extensions, here only the superuser can.
do $$
begin
  if not exists (select from pg_namespace where nspname = 'extensions') then
    create schema extensions authorization postgres;
    comment on schema extensions is 'virsyn:local-bootstrap';
  end if;
end
$$;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists pgtap with schema extensions;
grant all privileges on all tables in schema extensions to postgres with grant option;
grant all privileges on all routines in schema extensions to postgres with grant option;
grant all privileges on all sequences in schema extensions to postgres with grant option;
alter default privileges in schema extensions
  grant all on tables to postgres with grant option;
alter default privileges in schema extensions
  grant all on routines to postgres with grant option;
alter default privileges in schema extensions
  grant all on sequences to postgres with grant option;
do $$
begin
  execute format('alter database %I set search_path = "$user", public, extensions', current_database());
end
$$;
set search_path = "$user", public, extensions;

-- ── auth: GoTrue's users table and the claim helpers ───────────────────────────────
do $bootstrap$
begin
  if exists (select from pg_namespace where nspname = 'auth') then
    return;
  end if;

  create schema auth;
  comment on schema auth is 'virsyn:local-bootstrap';
  grant usage on schema auth to anon, authenticated, service_role;

  create table auth.users (
    instance_id uuid,
    id uuid not null primary key,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    email_change_token_new varchar(255),
    email_change varchar(255),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text unique default null,
    phone_confirmed_at timestamptz,
    phone_change text default '',
    phone_change_token varchar(255) default '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current varchar(255) default '',
    email_change_confirm_status smallint default 0
      check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
    banned_until timestamptz,
    reauthentication_token varchar(255) default '',
    reauthentication_sent_at timestamptz,
    is_sso_user boolean not null default false,
    deleted_at timestamptz,
    is_anonymous boolean not null default false
  );
  create index users_instance_id_idx on auth.users (instance_id);
  comment on table auth.users is 'Auth: Stores user login data within a secure schema.';

  create function auth.uid() returns uuid language sql stable as $f$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $f$;
  create function auth.role() returns text language sql stable as $f$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $f$;
  create function auth.jwt() returns jsonb language sql stable as $f$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $f$;
  grant execute on function auth.uid(), auth.role(), auth.jwt() to anon, authenticated, service_role;
end
$bootstrap$;
-- The demotion gives postgres everything in auth (a foreign key to auth.users needs it).
grant all on schema auth to postgres;
grant all on all tables in schema auth to postgres;
grant all on all sequences in schema auth to postgres;
grant all on all routines in schema auth to postgres;

-- ── Vault: encrypted secrets readable through decrypted_secrets ────────────────────
-- The real Vault encrypts with a key held outside the database (pgsodium / the
-- platform); locally a root key in a table only the owner can read plays that part.
do $bootstrap$
begin
  if exists (select from pg_namespace where nspname = 'vault') then
    return;
  end if;

  create schema vault;
  comment on schema vault is 'virsyn:local-bootstrap';
  revoke all on schema vault from public;
  grant usage on schema vault to service_role;

  create table vault._root_key (id int primary key default 1 check (id = 1), key text not null);
  insert into vault._root_key (key) values (encode(extensions.gen_random_bytes(32), 'hex'));
  revoke all on vault._root_key from public;

  create table vault.secrets (
    id uuid not null primary key default gen_random_uuid(),
    name text,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea default extensions.gen_random_bytes(16),
    created_at timestamptz not null default current_timestamp,
    updated_at timestamptz not null default current_timestamp
  );
  create unique index secrets_name_idx on vault.secrets (name) where name is not null;
  comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';

  create function vault._encrypt(p_secret text) returns text
  language sql security definer set search_path = '' as $f$
    select encode(extensions.pgp_sym_encrypt(p_secret, (select key from vault._root_key)), 'base64')
  $f$;
  create function vault._decrypt(p_secret text) returns text
  language sql security definer set search_path = '' as $f$
    select extensions.pgp_sym_decrypt(decode(p_secret, 'base64'), (select key from vault._root_key))
  $f$;
  revoke all on function vault._encrypt(text), vault._decrypt(text) from public;

  create view vault.decrypted_secrets as
    select s.id, s.name, s.description, s.secret,
           vault._decrypt(s.secret) as decrypted_secret,
           s.key_id, s.nonce, s.created_at, s.updated_at
      from vault.secrets s;

  create function vault.create_secret(
    new_secret text, new_name text default null, new_description text default '',
    new_key_id uuid default null
  ) returns uuid
  language plpgsql security definer set search_path = '' as $f$
  declare
    rec record;
  begin
    insert into vault.secrets (secret, name, description, key_id)
    values (vault._encrypt(new_secret), new_name, new_description, new_key_id)
    returning * into rec;
    return rec.id;
  end
  $f$;

  create function vault.update_secret(
    secret_id uuid, new_secret text default null, new_name text default null,
    new_description text default null, new_key_id uuid default null
  ) returns void
  language plpgsql security definer set search_path = '' as $f$
  begin
    update vault.secrets s
       set secret = coalesce(vault._encrypt(new_secret), s.secret),
           name = coalesce(new_name, s.name),
           description = coalesce(new_description, s.description),
           key_id = coalesce(new_key_id, s.key_id),
           updated_at = now()
     where s.id = secret_id;
  end
  $f$;

  revoke all on all tables in schema vault from public, anon, authenticated;
  revoke all on all functions in schema vault from public, anon, authenticated;
end
$bootstrap$;
-- Who may use Vault, as supabase/postgres grants it
-- (ansible/files/postgresql_extension_custom_scripts/supabase_vault/after-create.sql):
-- postgres and service_role read and delete secrets and call create_secret, update_secret
-- and the decrypt function; nobody may insert or update vault.secrets directly.
-- decrypted_secrets is a plain view, and a function called in a view is checked against
-- the caller: reading it needs EXECUTE on the decrypt function, as with the real one.
-- (Here the decrypt function is security definer only because the key it reads lives in
-- a table; the real one reads it from outside the database.)
do $$
begin
  if exists (select from pg_proc where proname = '_decrypt'
              and pronamespace = 'vault'::regnamespace) then
    grant usage on schema vault to postgres with grant option;
    grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
    grant execute on function vault.create_secret(text, text, text, uuid),
      vault.update_secret(uuid, text, text, text, uuid), vault._decrypt(text)
      to postgres with grant option;
    grant usage on schema vault to service_role;
    grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
    grant execute on function vault.create_secret(text, text, text, uuid),
      vault.update_secret(uuid, text, text, text, uuid), vault._decrypt(text) to service_role;
  end if;
end
$$;

-- ── pg_net: the request queue and response table ──────────────────────────────────
-- Used only where the pg_net extension is not installable; the local worker started by
-- `deno task serve` executes the queue with pg_net's semantics. Definitions and privileges
-- follow supabase/pg_net sql/pg_net.sql (0.20) as the platform leaves them
-- (supabase/postgres 20250220051611_pg_net_perms_fix.sql): both tables unlogged and without
-- a key, the queue's headers nullable (0.19.3), http_post SECURITY INVOKER and executable
-- by PUBLIC, and the schema, its tables and sequences granted to PUBLIC. Nothing of ours
-- may rely on net being closed.
do $bootstrap$
begin
  if exists (select from pg_namespace where nspname = 'net')
     or exists (select from pg_available_extensions where name = 'pg_net') then
    return;
  end if;

  create schema net;
  comment on schema net is 'virsyn:local-bootstrap';

  create domain net.http_method as text
    check (value ilike 'get' or value ilike 'post' or value ilike 'delete');

  create unlogged table net.http_request_queue (
    id bigserial,
    method net.http_method not null,
    url text not null,
    headers jsonb,
    body bytea,
    timeout_milliseconds integer not null
  );

  create unlogged table net._http_response (
    id bigint,
    status_code integer,
    content_type text,
    headers jsonb,
    content text,
    timed_out boolean,
    error_msg text,
    created timestamptz not null default now()
  );
  create index on net._http_response (created);

  create function net.http_post(
    url text,
    body jsonb default '{}'::jsonb,
    params jsonb default '{}'::jsonb,
    headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
    timeout_milliseconds int default 5000
  ) returns bigint
  language plpgsql as $f$
  declare
    request_id bigint;
    query_string text;
    content_type text;
  begin
    -- pg_net's rule: a Content-Type header (any case) must be exactly application/json;
    -- without one, it is added (a null headers stays null, as `null || x` is null).
    select value into content_type
      from jsonb_each_text(coalesce(headers, '{}'::jsonb))
     where lower(key) = 'content-type'
     limit 1;
    if content_type is null then
      headers := headers || '{"Content-Type": "application/json"}'::jsonb;
    elsif content_type <> 'application/json' then
      raise exception 'Content-Type header must be "application/json"';
    end if;

    select string_agg(format('%s=%s', key, value), '&')
      into query_string
      from jsonb_each_text(params);

    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values (
      'POST',
      case when query_string is null then url
           else url || case when strpos(url, '?') > 0 then '&' else '?' end || query_string end,
      headers,
      convert_to(body::text, 'UTF8'),
      timeout_milliseconds
    )
    returning id into request_id;
    -- pg_net wakes its worker when the transaction commits (net.wake, src/worker.c
    -- wake_at_commit); a notification is delivered exactly then, to the local worker.
    perform pg_notify('virsyn_pg_net_wake', '');
    return request_id;
  end
  $f$;

  grant usage on schema net to public;
  grant all on all sequences in schema net to public;
  grant all on all tables in schema net to public;
end
$bootstrap$;

-- ── pg_cron, with the platform's grants ───────────────────────────────────────────
-- Created here by the superuser (the platform creates it for postgres through supautils),
-- then granted as supabase/postgres's grant_pg_cron_access() does (20260730000000):
-- postgres uses the schema and its functions and tables, but may only read cron.job and
-- change jobs through cron.schedule / cron.alter_job / cron.unschedule.
create extension if not exists pg_cron;
grant usage on schema cron to postgres with grant option;
grant all privileges on all tables in schema cron to postgres with grant option;
grant all privileges on all functions in schema cron to postgres with grant option;
grant all privileges on all sequences in schema cron to postgres with grant option;
revoke all on table cron.job from postgres;
grant select on table cron.job to postgres with grant option;
revoke trigger on cron.job_run_details from postgres;

-- ── Realtime publication ──────────────────────────────────────────────────────────
-- Created by postgres on the platform, so postgres (the migrations) may add tables to it.
do $$
begin
  if not exists (select from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
    alter publication supabase_realtime owner to postgres;
  end if;
end
$$;
