-- The cron view is read-only for every role, and the dispatcher writes exactly one log row
-- whatever fails (docs/ARCHITECTURE.md §7).
begin;
create extension if not exists pgtap with schema extensions;
select plan(20);

-- ── virsyn_cron_jobs: no role may write through it ──────────────────────────────────
select is(
  (select is_updatable || '/' || is_insertable_into from information_schema.views
    where table_schema = 'public' and table_name = 'virsyn_cron_jobs'),
  'NO/NO', 'virsyn_cron_jobs is not an updatable view');
select ok(not has_table_privilege(r, 'public.virsyn_cron_jobs', 'insert, update, delete, truncate'),
  r || ' holds no write privilege on virsyn_cron_jobs')
  from unnest(array['anon', 'authenticated', 'service_role']) r;

set local role service_role;
select throws_ok(
  $$ update public.virsyn_cron_jobs set command = 'select 42' where jobname = 'process-historical-sync' $$,
  '55000', 'cannot update view "virsyn_cron_jobs"',
  'service_role cannot rewrite a cron command through the view');
select throws_ok($$ delete from public.virsyn_cron_jobs $$,
  '55000', 'cannot delete from view "virsyn_cron_jobs"', 'service_role cannot delete through the view');
select throws_ok(
  $$ insert into public.virsyn_cron_jobs (jobid, jobname, schedule, command, active)
     values (999, 'x', '* * * * *', 'select 42', true) $$,
  '55000', 'cannot insert into view "virsyn_cron_jobs"', 'service_role cannot insert through the view');
reset role;
set local role authenticated;
select throws_ok(
  $$ update public.virsyn_cron_jobs set command = 'select 42' $$,
  '55000', 'cannot update view "virsyn_cron_jobs"', 'authenticated cannot write through the view');
reset role;
set local role anon;
select throws_ok($$ delete from public.virsyn_cron_jobs $$,
  '55000', 'cannot delete from view "virsyn_cron_jobs"', 'anon cannot write through the view');
reset role;
-- The view itself is not updatable (its LIMIT), so even its owner cannot write through it;
-- and no API role keeps a write privilege on it either (above).
select throws_ok(
  $$ update public.virsyn_cron_jobs set command = 'select 42' where jobname = 'process-historical-sync' $$,
  '55000', null, 'the view''s owner (postgres) cannot write through it either');
select is((select command from cron.job where jobname = 'process-historical-sync'),
  'select public.dispatch_historical_sync()', 'the dispatch command is unchanged');

-- ── the dispatcher always writes its one row ────────────────────────────────────────
-- A stale running row whose result cannot be read breaks the sweep; the row of this call
-- is still written, and says why it failed.
select cron.alter_job(jobid, active := false) from cron.job where jobname = 'process-historical-sync';
insert into public.cron_job_logs (id, job_name, started_at, status, result)
values ('06000000-0000-4000-8000-000000000001', 'process-historical-sync',
        '2026-11-30T10:00:00Z', 'running', '{"request_id": "not a number", "request_ids": ["not a number"]}');
insert into net._http_response (id, status_code, content) values (-6001, 500, 'pgtap 060');
select lives_ok($$ select public.dispatch_historical_sync('2026-11-30T11:00:00Z') $$,
  'the dispatcher does not raise when its sweep fails');
select is(
  (select count(*)::int from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-11-30T11:00:00Z'),
  1, 'exactly one row was written for the call');
select matches(
  (select status || ': ' || error_message from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-11-30T11:00:00Z'),
  '^failed: closing stale log rows failed: invalid input syntax for type bigint',
  'the row is failed and names the error');


-- pg_net's response table has no key: two rows under one id must not break the sweep.
delete from public.cron_job_logs where id = '06000000-0000-4000-8000-000000000001';
insert into public.cron_job_logs (id, job_name, started_at, status, result)
values ('06000000-0000-4000-8000-000000000002', 'process-historical-sync',
        '2026-11-30T10:00:00Z', 'running', '{"request_ids": [-6002]}');
insert into net._http_response (id, status_code, content, created)
values (-6002, 502, 'first answer', '2026-11-30T10:00:01Z'),
       (-6002, 503, 'second answer', '2026-11-30T10:00:02Z');
select lives_ok($$ select public.dispatch_historical_sync('2026-11-30T12:00:00Z') $$,
  'two response rows under one request id do not make the dispatcher raise');
select is(
  (select status || ': ' || error_message from public.cron_job_logs
    where id = '06000000-0000-4000-8000-000000000002'),
  'failed: timed out: no completion reported within 10 minutes (the function answered HTTP 503: second answer)',
  'the stale row is closed as timed out, quoting the newest response');
select is(
  (select count(*)::int from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-11-30T12:00:00Z'),
  1, 'and the call still wrote exactly its one row');


-- A dispatch that fails (no Vault secrets) does not take back the sweep of stale rows.
insert into public.cron_job_logs (id, job_name, started_at, status, result)
values ('06000000-0000-4000-8000-000000000003', 'process-historical-sync',
        '2026-11-30T10:00:00Z', 'running', '{"request_ids": [-6003]}');
insert into public.agencies (id, name) values ('06000000-0000-4000-8000-0000000000a1', 'pgtap 060');
insert into public.historical_sync_jobs (agency_id, date_to)
values ('06000000-0000-4000-8000-0000000000a1', '2026-11-01');
delete from vault.secrets where name in ('project_url', 'functions_secret_key');
select lives_ok($$ select public.dispatch_historical_sync('2026-11-30T13:00:00Z') $$,
  'a dispatch without its Vault secrets does not raise');
select is(
  (select status || ': ' || left(error_message, 35) from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-11-30T13:00:00Z'),
  'failed: Vault secret project_url is missing',
  'its row is failed and names the missing secret');
select is(
  (select status from public.cron_job_logs where id = '06000000-0000-4000-8000-000000000003'),
  'failed', 'and the stale running row was still closed');

select * from finish();
rollback;
