-- Row level security and privileges: members read their agency's rows, nobody but the
-- backend writes them, and backend-only tables, Vault and the SQL functions refuse
-- the API roles. Requests are simulated the way PostgREST makes them: the role, then the
-- JWT claims as request.jwt.claims.
begin;
create extension if not exists pgtap with schema extensions;
select plan(95);

-- ── fixtures (as postgres) ──────────────────────────────────────────────────────────
-- Agency 1: member U1 and admin U4, 2 jobs, 3 calls. Agency 2: owner U2, 1 job, 2 calls.
-- U3 belongs to no agency.
insert into public.agencies (id, name) values
  ('010a0000-0000-4000-8000-000000000001', 'RLS agency one'),
  ('010a0000-0000-4000-8000-000000000002', 'RLS agency two');
insert into auth.users (id, email) values
  ('010b0000-0000-4000-8000-000000000001', 'u1@pgtap.test'),
  ('010b0000-0000-4000-8000-000000000002', 'u2@pgtap.test'),
  ('010b0000-0000-4000-8000-000000000003', 'u3@pgtap.test'),
  ('010b0000-0000-4000-8000-000000000004', 'u4@pgtap.test');
insert into public.agency_members (agency_id, user_id, role) values
  ('010a0000-0000-4000-8000-000000000001', '010b0000-0000-4000-8000-000000000001', 'member'),
  ('010a0000-0000-4000-8000-000000000001', '010b0000-0000-4000-8000-000000000004', 'admin'),
  ('010a0000-0000-4000-8000-000000000002', '010b0000-0000-4000-8000-000000000002', 'owner');
insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at) values
  ('010c0000-0000-4000-8000-000000000011', '010a0000-0000-4000-8000-000000000001', '2026-01-31Z', 'completed', '2026-02-01Z'),
  ('010c0000-0000-4000-8000-000000000012', '010a0000-0000-4000-8000-000000000001', '2026-02-28Z', 'pending', null),
  ('010c0000-0000-4000-8000-000000000021', '010a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'in_progress', null);
insert into public.historical_sync_job_leases (job_id, holder, expires_at) values
  ('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001', '2026-01-01Z');
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source, historical_sync_job_id) values
  ('010a0000-0000-4000-8000-000000000001', '010e0000-0000-4000-8000-000000000011', '2026-01-01Z', '{}', 'historical_sync', '010c0000-0000-4000-8000-000000000011'),
  ('010a0000-0000-4000-8000-000000000001', '010e0000-0000-4000-8000-000000000012', '2026-01-02Z', '{}', 'historical_sync', '010c0000-0000-4000-8000-000000000011'),
  ('010a0000-0000-4000-8000-000000000001', '010e0000-0000-4000-8000-000000000013', '2026-01-03Z', '{}', 'historical_sync', '010c0000-0000-4000-8000-000000000011'),
  ('010a0000-0000-4000-8000-000000000002', '010e0000-0000-4000-8000-000000000021', '2026-01-01Z', '{}', 'historical_sync', '010c0000-0000-4000-8000-000000000021'),
  ('010a0000-0000-4000-8000-000000000002', '010e0000-0000-4000-8000-000000000022', '2026-01-02Z', '{}', 'historical_sync', '010c0000-0000-4000-8000-000000000021');
insert into public.cron_job_logs (id, job_name) values ('010f0000-0000-4000-8000-000000000001', 'pgtap-rls-test');

-- ── RLS is on everywhere, and the policies only read ────────────────────────────────
select is_empty(
  $$ select relname from pg_class
      where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') and not relrowsecurity $$,
  'every table in public has row level security enabled');
select ok(relrowsecurity, format('row level security is enabled on %s', relname))
  from pg_class
 where relnamespace = 'public'::regnamespace
   and relname in ('agencies', 'agency_members', 'historical_sync_jobs', 'historical_sync_job_leases',
                   'calls', 'cron_job_logs')
 order by relname;
select results_eq(
  $$ select tablename::text collate "default", cmd::text collate "default" from pg_policies
      where schemaname = 'public' and cmd <> 'SELECT'
      order by 1, 2 $$,
  $$ values ('agency_sync_settings', 'INSERT'), ('agency_sync_settings', 'UPDATE') $$,
  'the only policies that allow writes are the owners'' and admins'' on agency_sync_settings');
select is_empty(
  $$ select tablename, policyname from pg_policies
      where schemaname = 'public' and roles <> '{authenticated}'::name[] $$,
  'every policy in public applies to authenticated only');
select policies_are('public', 'historical_sync_jobs', array['Members can see their agency''s sync jobs'],
  'historical_sync_jobs has exactly its one read policy');
select policies_are('public', 'calls', array['Members can see their agency''s calls'],
  'calls has exactly its one read policy');
select policies_are('public', 'cron_job_logs', array[]::name[], 'cron_job_logs has no policy');
select policies_are('public', 'historical_sync_job_leases', array[]::name[], 'historical_sync_job_leases has no policy');
select policies_are('public', 'historical_sync_job_slices', array[]::name[], 'historical_sync_job_slices has no policy');
select policies_are('public', 'sync_dispatch_settings', array[]::name[], 'sync_dispatch_settings has no policy');

-- ── a member reads exactly their agency's rows ──────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000001","role":"authenticated"}';
select is((select count(*)::int from public.agencies), 1, 'member U1 sees 1 agency');
select is((select name from public.agencies), 'RLS agency one', 'the agency U1 sees is their own');
select is((select count(*)::int from public.agency_members), 2, 'member U1 sees the 2 memberships of their agency');
select results_eq(
  $$ select id from public.historical_sync_jobs order by id $$,
  $$ values ('010c0000-0000-4000-8000-000000000011'::uuid), ('010c0000-0000-4000-8000-000000000012'::uuid) $$,
  'member U1 sees exactly the 2 jobs of their agency');
select is((select count(*)::int from public.calls), 3, 'member U1 sees the 3 calls of their agency');
select is((select count(*)::int from public.calls where agency_id = '010a0000-0000-4000-8000-000000000002'), 0,
  'member U1 sees none of the 2 calls of agency two, even asking by agency_id');
select is(public.has_agency_role('010a0000-0000-4000-8000-000000000001'), true,
  'has_agency_role is true for U1 on agency one');
select is(public.has_agency_role('010a0000-0000-4000-8000-000000000001', array['owner', 'admin']), false,
  'has_agency_role with roles owner/admin is false for U1, a plain member');

set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000002","role":"authenticated"}';
select is((select count(*)::int from public.agencies), 1, 'owner U2 sees 1 agency');
select results_eq(
  $$ select id from public.historical_sync_jobs $$,
  $$ values ('010c0000-0000-4000-8000-000000000021'::uuid) $$,
  'owner U2 sees exactly the 1 job of agency two');
select is((select count(*)::int from public.calls), 2, 'owner U2 sees the 2 calls of agency two');

set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000003","role":"authenticated"}';
select is((select count(*)::int from public.agencies), 0, 'U3, member of no agency, sees 0 agencies');
select is((select count(*)::int from public.agency_members), 0, 'U3 sees 0 memberships');
select is((select count(*)::int from public.historical_sync_jobs), 0, 'U3 sees 0 jobs');
select is((select count(*)::int from public.calls), 0, 'U3 sees 0 calls');
reset role;

-- ── an authenticated user writes nothing ─────────────────────────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000004","role":"authenticated"}';
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to)
     values ('010a0000-0000-4000-8000-000000000001', '2026-03-31Z') $$,
  '42501', 'new row violates row-level security policy for table "historical_sync_jobs"',
  'an admin cannot insert a job of their own agency directly');
select results_eq(
  $$ with u as (update public.historical_sync_jobs set status = 'cancelled'
                 where id = '010c0000-0000-4000-8000-000000000012' returning 1)
     select count(*)::int from u $$,
  $$ values (0) $$,
  'an admin''s update of a job of their own agency affects 0 rows');
select results_eq(
  $$ with d as (delete from public.historical_sync_jobs
                 where id = '010c0000-0000-4000-8000-000000000011' returning 1)
     select count(*)::int from d $$,
  $$ values (0) $$,
  'an admin''s delete of a job of their own agency affects 0 rows');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
     values ('010a0000-0000-4000-8000-000000000001', '010e0000-0000-4000-8000-000000000099', '2026-01-01Z', '{}', 'manual') $$,
  '42501', 'new row violates row-level security policy for table "calls"',
  'an admin cannot insert a call of their own agency');
select results_eq(
  $$ with u as (update public.calls set summary = 'tampered'
                 where agency_id = '010a0000-0000-4000-8000-000000000001' returning 1)
     select count(*)::int from u $$,
  $$ values (0) $$,
  'an admin''s update of their agency''s calls affects 0 rows');
select results_eq(
  $$ with d as (delete from public.calls where agency_id = '010a0000-0000-4000-8000-000000000001' returning 1)
     select count(*)::int from d $$,
  $$ values (0) $$,
  'an admin''s delete of their agency''s calls affects 0 rows');
select throws_ok(
  $$ insert into public.agencies (name) values ('Self-made agency') $$,
  '42501', 'new row violates row-level security policy for table "agencies"',
  'an authenticated user cannot create an agency');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('010a0000-0000-4000-8000-000000000002', '010b0000-0000-4000-8000-000000000004', 'owner') $$,
  '42501', 'new row violates row-level security policy for table "agency_members"',
  'an authenticated user cannot add themselves to another agency');
select results_eq(
  $$ with u as (update public.agency_members set role = 'owner'
                 where user_id = '010b0000-0000-4000-8000-000000000004' returning 1)
     select count(*)::int from u $$,
  $$ values (0) $$,
  'an admin cannot promote themselves to owner (0 rows affected)');
reset role;

select results_eq(
  $$ select (select status::text from public.historical_sync_jobs where id = '010c0000-0000-4000-8000-000000000012'),
            (select count(*)::int from public.historical_sync_jobs where agency_id = '010a0000-0000-4000-8000-000000000001'),
            (select count(*)::int from public.calls where agency_id = '010a0000-0000-4000-8000-000000000001' and summary is null),
            (select role from public.agency_members where user_id = '010b0000-0000-4000-8000-000000000004') $$,
  $$ values ('pending', 2, 3, 'admin') $$,
  'after those attempts agency one still has its pending job, 2 jobs, 3 untouched calls and its admin');

-- ── backend-only tables and Vault refuse authenticated; net is open, as hosted ─────────────────────────
set local role authenticated;
set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000002","role":"authenticated"}';
select throws_ok($$ select * from public.cron_job_logs $$,
  '42501', 'permission denied for table cron_job_logs', 'authenticated cannot read cron_job_logs');
select throws_ok($$ insert into public.cron_job_logs (job_name) values ('forged') $$,
  '42501', 'permission denied for table cron_job_logs', 'authenticated cannot write cron_job_logs');
select throws_ok($$ select * from public.historical_sync_job_leases $$,
  '42501', 'permission denied for table historical_sync_job_leases',
  'authenticated cannot read historical_sync_job_leases, even for a job of their agency');
select throws_ok($$ update public.historical_sync_job_leases set holder = null, expires_at = null $$,
  '42501', 'permission denied for table historical_sync_job_leases', 'authenticated cannot release a lease directly');
select throws_ok($$ select * from vault.secrets $$,
  '42501', 'permission denied for schema vault', 'authenticated cannot read vault.secrets');
select throws_ok($$ select * from vault.decrypted_secrets $$,
  '42501', 'permission denied for schema vault', 'authenticated cannot read vault.decrypted_secrets');
-- pg_net is open to everyone on the platform (PUBLIC may call net.http_post and use its
-- tables); what keeps the processor's secret key away from users is Vault and our own
-- functions, never net.
select lives_ok($$ select net.http_post('http://127.0.0.1:9/', '{}'::jsonb) $$,
  'authenticated may queue an HTTP request through net, as PUBLIC may on the platform');
select throws_ok($$ select public.post_process_historical_sync('{}'::jsonb) $$,
  '42501', 'permission denied for function post_process_historical_sync',
  'authenticated cannot queue a processor request carrying the secret key');
reset role;

set local role anon;
set local request.jwt.claims = '{"role":"anon"}';
select is((select count(*)::int from public.agencies), 0, 'anon sees 0 agencies');
select is((select count(*)::int from public.agency_members), 0, 'anon sees 0 memberships');
select is((select count(*)::int from public.historical_sync_jobs), 0, 'anon sees 0 jobs');
select is((select count(*)::int from public.calls), 0, 'anon sees 0 calls');
select throws_ok($$ select * from public.cron_job_logs $$,
  '42501', 'permission denied for table cron_job_logs', 'anon cannot read cron_job_logs');
select throws_ok($$ select * from public.historical_sync_job_leases $$,
  '42501', 'permission denied for table historical_sync_job_leases', 'anon cannot read historical_sync_job_leases');
select throws_ok($$ select * from vault.decrypted_secrets $$,
  '42501', 'permission denied for schema vault', 'anon cannot read vault.decrypted_secrets');
select throws_ok($$ insert into public.historical_sync_jobs (agency_id, date_to)
                    values ('010a0000-0000-4000-8000-000000000001', '2026-03-31Z') $$,
  '42501', 'new row violates row-level security policy for table "historical_sync_jobs"',
  'anon cannot insert a job');
select throws_ok($$ select public.has_agency_role('010a0000-0000-4000-8000-000000000001') $$,
  '42501', 'permission denied for function has_agency_role', 'anon cannot execute has_agency_role');
reset role;

-- ── the backend's SQL functions refuse both API roles ───────────────────────────────
create temporary table rls_calls (role name, fn text, stmt text) on commit drop;
insert into rls_calls
select r.role, f.fn, f.stmt
  from (values ('authenticated'::name, 1), ('anon'::name, 2)) as r(role, n)
 cross join (values
   (1, 'set_agency_ultravox_api_key', $q$ select public.set_agency_ultravox_api_key('010a0000-0000-4000-8000-000000000001', 'uv_forged') $q$),
   (2, 'get_agency_ultravox_api_key', $q$ select public.get_agency_ultravox_api_key('010a0000-0000-4000-8000-000000000001') $q$),
   (3, 'agency_has_ultravox_api_key', $q$ select public.agency_has_ultravox_api_key('010a0000-0000-4000-8000-000000000001') $q$),
   (4, 'create_sync_job', $q$ select * from public.create_sync_job('010a0000-0000-4000-8000-000000000001', null, '2026-03-31Z', 100) $q$),
   (5, 'claim_sync_jobs', $q$ select * from public.claim_sync_jobs('010d0000-0000-4000-8000-000000000009', 4, 120) $q$),
   (6, 'record_sync_page', $q$ select * from public.record_sync_page('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001', null, null, '[]', '[]', null, 120) $q$),
   (7, 'release_sync_job', $q$ select * from public.release_sync_job('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001') $q$),
   (8, 'record_sync_error', $q$ select * from public.record_sync_error('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001', null, 'x', 10) $q$),
   (9, 'fail_sync_job', $q$ select * from public.fail_sync_job('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001', null, 'x') $q$),
   (10, 'cancel_sync_job', $q$ select * from public.cancel_sync_job('010c0000-0000-4000-8000-000000000012') $q$),
   (11, 'renew_sync_lease', $q$ select * from public.renew_sync_lease('010c0000-0000-4000-8000-000000000021', '010d0000-0000-4000-8000-000000000001', 3600) $q$),
   (12, 'complete_cron_log', $q$ select * from public.complete_cron_log('010f0000-0000-4000-8000-000000000001', 'completed') $q$),
   (13, 'dispatch_historical_sync', $q$ select public.dispatch_historical_sync() $q$),
   (14, 'cleanup_cron_job_logs', $q$ select public.cleanup_cron_job_logs() $q$),
   (15, 'sync_job_is_claimable', $q$ select public.sync_job_is_claimable(null::public.historical_sync_jobs, null::public.historical_sync_job_leases, now()) $q$)
 ) as f(n, fn, stmt)
 order by r.n, f.n;
grant select on rls_calls to anon, authenticated;

set local role authenticated;
set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000002","role":"authenticated"}';
select throws_ok(stmt, '42501', format('permission denied for function %s', fn),
                 format('authenticated cannot execute %s', fn))
  from rls_calls where role = 'authenticated';
reset role;
set local role anon;
set local request.jwt.claims = '{"role":"anon"}';
select throws_ok(stmt, '42501', format('permission denied for function %s', fn),
                 format('anon cannot execute %s', fn))
  from rls_calls where role = 'anon';
reset role;

-- Beyond the list above: of every function in public, the API roles may execute only the
-- membership helpers (authenticated: the policies' my_agency_ids, and has_agency_role for a
-- dashboard's own checks) and nothing at all (anon).
select results_eq(
  $$ select proname::text collate "default" from pg_proc
      where pronamespace = 'public'::regnamespace and has_function_privilege('authenticated', oid, 'execute')
      order by 1 $$,
  $$ values ('has_agency_role'), ('my_agency_ids'), ('my_agency_ids_as') $$,
  'authenticated may execute exactly the three read-only membership helpers in public');
select is_empty(
  $$ select proname from pg_proc
      where pronamespace = 'public'::regnamespace and has_function_privilege('anon', oid, 'execute') $$,
  'anon may execute no function in public');
set local role authenticated;
set local request.jwt.claims = '{"sub":"010b0000-0000-4000-8000-000000000002","role":"authenticated"}';
select throws_ok($$ select * from public.virsyn_cron_jobs $$,
  '42501', 'permission denied for view virsyn_cron_jobs', 'authenticated cannot read the cron view virsyn_cron_jobs');
reset role;
set local role anon;
select throws_ok($$ select * from public.virsyn_cron_jobs $$,
  '42501', 'permission denied for view virsyn_cron_jobs', 'anon cannot read the cron view virsyn_cron_jobs');
reset role;

-- Nothing those attempts did survived: the lease is still held and the pending job still pending.
select results_eq(
  $$ select (select expires_at from public.historical_sync_job_leases where job_id = '010c0000-0000-4000-8000-000000000021'),
            (select status from public.cron_job_logs where id = '010f0000-0000-4000-8000-000000000001'),
            (select holder from public.historical_sync_job_leases where job_id = '010c0000-0000-4000-8000-000000000021'),
            (select status::text from public.historical_sync_jobs where id = '010c0000-0000-4000-8000-000000000012') $$,
  $$ values ('2026-01-01T00:00:00Z'::timestamptz, 'running', '010d0000-0000-4000-8000-000000000001'::uuid, 'pending') $$,
  'the refused calls left the lease held and unrenewed, the log running and the pending job pending');

-- ── service_role, the backend, reads everything ─────────────────────────────────────
set local role service_role;
select is(
  (select count(*)::int from public.historical_sync_jobs
    where agency_id in ('010a0000-0000-4000-8000-000000000001', '010a0000-0000-4000-8000-000000000002')),
  3, 'service_role sees all 3 jobs of both agencies (bypasses RLS)');
select is(
  (select count(*)::int from public.cron_job_logs where id = '010f0000-0000-4000-8000-000000000001'),
  1, 'service_role reads cron_job_logs');
select is(public.agency_has_ultravox_api_key('010a0000-0000-4000-8000-000000000001'), false,
  'service_role may execute agency_has_ultravox_api_key (agency one has no key)');
reset role;

select * from finish();
rollback;
