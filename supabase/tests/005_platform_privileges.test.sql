-- The database is set up as hosted Supabase sets it up (docs/ARCHITECTURE.md §8), and every
-- test in this folder runs with those privileges: `postgres` is not a superuser. A test that
-- passed only as a superuser would hide a defect a real project meets.
begin;
create extension if not exists pgtap with schema extensions;
select plan(16);

select is(current_user::text, 'postgres', 'the tests run as postgres');
select is((select rolsuper from pg_roles where rolname = 'postgres'), false,
  'postgres is not a superuser');
select is(
  (select array[rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolinherit]
     from pg_roles where rolname = 'postgres'),
  array[true, true, true, true, true, true],
  'postgres has CREATEDB CREATEROLE REPLICATION BYPASSRLS LOGIN INHERIT, as after the platform''s demotion');
select is((select rolsuper from pg_roles where rolname = 'supabase_admin'), true,
  'supabase_admin is the superuser');
select is(
  (select array_agg(r.rolname::text order by r.rolname)
     from pg_auth_members m join pg_roles r on r.oid = m.roleid
    where m.member = 'postgres'::regrole),
  array['anon', 'authenticated', 'pg_monitor', 'pg_read_all_data', 'pg_signal_backend', 'service_role'],
  'postgres is a member of the three API roles, pg_monitor, pg_read_all_data and pg_signal_backend');
select is(
  (select array_agg(rolname::text || ':' || rolcanlogin || ':' || rolinherit || ':' || rolbypassrls
                    order by rolname)
     from pg_roles where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')),
  array['anon:false:true:false', 'authenticated:false:true:false',
        'authenticator:true:false:false', 'service_role:false:true:true'],
  'the API roles are NOLOGIN INHERIT (service_role BYPASSRLS); authenticator logs in, NOINHERIT');

-- pg_net: open to PUBLIC, as the platform leaves it.
select is((select prosecdef from pg_proc where oid = 'net.http_post(text, jsonb, jsonb, jsonb, integer)'::regprocedure),
  false, 'net.http_post is SECURITY INVOKER');
select ok(has_function_privilege('public', 'net.http_post(text, jsonb, jsonb, jsonb, integer)', 'execute'),
  'PUBLIC may execute net.http_post');
select ok(has_table_privilege('public', 'net.http_request_queue', 'insert, select, delete')
      and has_table_privilege('public', 'net._http_response', 'insert, select, delete'),
  'PUBLIC may use net''s tables');
select is((select attnotnull from pg_attribute
            where attrelid = 'net.http_request_queue'::regclass and attname = 'headers'),
  false, 'net.http_request_queue.headers is nullable');

-- Vault: postgres reads and deletes secrets and writes them only through its functions.
select ok(has_table_privilege('postgres', 'vault.decrypted_secrets', 'select')
      and has_table_privilege('postgres', 'vault.secrets', 'select, delete'),
  'postgres may read vault.decrypted_secrets and read and delete vault.secrets');
select ok(not has_table_privilege('postgres', 'vault.secrets', 'insert')
      and not has_table_privilege('postgres', 'vault.secrets', 'update'),
  'postgres may not insert or update vault.secrets directly');
select ok(has_function_privilege('postgres', 'vault.create_secret(text, text, text, uuid)', 'execute')
      and has_function_privilege('postgres', 'vault.update_secret(uuid, text, text, text, uuid)', 'execute'),
  'postgres may call vault.create_secret and vault.update_secret');

-- pg_cron: postgres reads cron.job and changes jobs only through pg_cron's functions.
select ok(has_table_privilege('postgres', 'cron.job', 'select')
      and not has_table_privilege('postgres', 'cron.job', 'update'),
  'postgres may read cron.job but not update it');
select ok(has_table_privilege('postgres', 'cron.job_run_details', 'select, delete'),
  'postgres may read and delete cron.job_run_details (the daily cleanup)');
select is((select username::text from cron.job where jobname = 'process-historical-sync'), 'postgres',
  'the dispatch job runs as postgres');

select * from finish();
rollback;
