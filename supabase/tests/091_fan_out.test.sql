-- Fan-out (20261201000700, docs/ARCHITECTURE.md §7): how many processor requests the
-- claimable work needs (sync_invocations_wanted, from sync_dispatch_settings), the dispatcher
-- and a continuation posting that many, and report_sync_run closing a tick's log row once
-- every request it posted has reported. Times are pinned (p_now) except where a function
-- reads now() itself (request_sync_continuation).
begin;
-- One snapshot for the whole file: sync_invocations_wanted counts the claimable work of the
-- whole shared database; jobs committed by others while this file runs are not seen.
set transaction isolation level repeatable read;
create extension if not exists pgtap with schema extensions;
select plan(101);

-- ── helpers ─────────────────────────────────────────────────────────────────────────
-- Ids of this file: agencies 091a…01nn, cron log rows 091a…02nn, holders 091a…03nn.
create function pg_temp.ag(p_n int) returns uuid language sql immutable as $$
  select ('091a0000-0000-4000-8000-' || lpad((100 + p_n)::text, 12, '0'))::uuid $$;
create function pg_temp.log(p_n int) returns uuid language sql immutable as $$
  select ('091a0000-0000-4000-8000-' || lpad((200 + p_n)::text, 12, '0'))::uuid $$;
create function pg_temp.h(p_n int) returns uuid language sql immutable as $$
  select ('091a0000-0000-4000-8000-' || lpad((300 + p_n)::text, 12, '0'))::uuid $$;
-- One job per agency, found by its agency.
create function pg_temp.jid(p_n int) returns uuid language sql stable as $$
  select id from public.historical_sync_jobs where agency_id = pg_temp.ag(p_n) $$;
-- The JSON body pg_net will POST for a queued request.
create function pg_temp.body(p_id bigint) returns jsonb language sql stable as $$
  select convert_from(q.body, 'UTF8')::jsonb from net.http_request_queue q where q.id = p_id $$;
-- The queued requests a dispatch posted for its log row.
create function pg_temp.queued_for_log(p_log uuid) returns bigint[] language sql stable as $$
  select coalesce(array_agg(q.id order by q.id), '{}') from net.http_request_queue q
   where convert_from(q.body, 'UTF8')::jsonb ->> 'cron_log_id' = p_log::text $$;
-- The request ids a log row names, in order.
create function pg_temp.logged_ids(p_log uuid) returns bigint[] language sql stable as $$
  select coalesce(array_agg(e::bigint order by o), '{}')
    from public.cron_job_logs c,
         jsonb_array_elements_text(c.result -> 'request_ids') with ordinality as x(e, o)
   where c.id = p_log $$;
-- The dispatch log row started at a pinned time (this file's calls use distinct times).
create function pg_temp.tick(p_at timestamptz) returns uuid language sql stable as $$
  select id from public.cron_job_logs
   where job_name = 'process-historical-sync' and started_at = p_at $$;

-- ── fixtures ────────────────────────────────────────────────────────────────────────
-- Work left behind by other tests is taken out of this transaction's picture (rolled back).
update public.historical_sync_jobs set status = 'cancelled', completed_at = now()
 where status in ('pending', 'in_progress');
insert into public.agencies (id, name)
select pg_temp.ag(n), format('Fan-out agency %s', n) from generate_series(1, 9) n;
-- Dispatch is set up: both Vault secrets, replaced by this file's values.
delete from vault.secrets where name in ('project_url', 'functions_secret_key');
do $$ begin
  perform vault.create_secret('https://pgtap-091.example.test/', 'project_url');
  perform vault.create_secret('pgtap-091-secret-key', 'functions_secret_key');
end $$;

-- ══ 1. sync_dispatch_settings ════════════════════════════════════════════════════════
-- The migration leaves exactly one row; a row of defaults fans out to 4 invocations of 4.
select is((select count(*)::int from public.sync_dispatch_settings), 1,
  'sync_dispatch_settings holds exactly one row');
select col_default_is('public', 'sync_dispatch_settings', 'max_invocations', '4',
  'max_invocations defaults to 4');
select col_default_is('public', 'sync_dispatch_settings', 'jobs_per_invocation', '4',
  'jobs_per_invocation defaults to 4');
delete from public.sync_dispatch_settings;  -- whatever `deno task serve` wrote (rolled back)
insert into public.sync_dispatch_settings default values;
select results_eq(
  $$ select singleton, max_invocations, jobs_per_invocation from public.sync_dispatch_settings $$,
  $$ values (true, 4, 4) $$,
  'a row of defaults is (singleton true, max_invocations 4, jobs_per_invocation 4)');

-- The checks: one row only, both numbers within 1..64.
select throws_ok(
  $$ insert into public.sync_dispatch_settings (singleton) values (false) $$,
  '23514', 'new row for relation "sync_dispatch_settings" violates check constraint "sync_dispatch_settings_one_row"',
  'a second row with singleton false is refused by the one-row check');
select throws_ok(
  $$ insert into public.sync_dispatch_settings default values $$,
  '23505', 'duplicate key value violates unique constraint "sync_dispatch_settings_pkey"',
  'a second row with singleton true is refused by the primary key');
select throws_ok(
  $$ update public.sync_dispatch_settings set max_invocations = 0 $$,
  '23514', 'new row for relation "sync_dispatch_settings" violates check constraint "sync_dispatch_settings_invocations_valid"',
  'max_invocations 0 is refused');
select throws_ok(
  $$ update public.sync_dispatch_settings set max_invocations = 65 $$,
  '23514', 'new row for relation "sync_dispatch_settings" violates check constraint "sync_dispatch_settings_invocations_valid"',
  'max_invocations 65 is refused');
select throws_ok(
  $$ update public.sync_dispatch_settings set jobs_per_invocation = 0 $$,
  '23514', 'new row for relation "sync_dispatch_settings" violates check constraint "sync_dispatch_settings_jobs_valid"',
  'jobs_per_invocation 0 is refused');
select throws_ok(
  $$ update public.sync_dispatch_settings set jobs_per_invocation = 65 $$,
  '23514', 'new row for relation "sync_dispatch_settings" violates check constraint "sync_dispatch_settings_jobs_valid"',
  'jobs_per_invocation 65 is refused');
select lives_ok(
  $$ update public.sync_dispatch_settings set max_invocations = 64, jobs_per_invocation = 1 $$,
  'the bounds 64 and 1 are accepted');
select lives_ok(
  $$ update public.sync_dispatch_settings set max_invocations = 1, jobs_per_invocation = 64 $$,
  'and so are 1 and 64');
select ok(not has_table_privilege(r, 'public.sync_dispatch_settings', 'select, insert, update, delete'),
  r || ' holds no privilege on sync_dispatch_settings')
  from unnest(array['anon', 'authenticated']) r;
update public.sync_dispatch_settings set max_invocations = 4, jobs_per_invocation = 4;

-- ══ 2. sync_invocations_wanted ══════════════════════════════════════════════════════
-- No claimable work: no request.
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 0,
  'no claimable work anywhere: 0 invocations');

-- One unsliced pending job is one piece of work: one request.
select is((select count(*)::int from public.create_sync_job(pg_temp.ag(1), null, '2026-11-01Z', 100,
             '2026-12-10T09:00:00Z')), 1, 'job 1 (capped, unsliced) is created');
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 1,
  'one unsliced pending job: 1 invocation');
-- Its own lease and Retry-After decide, as sync_job_is_claimable says.
update public.historical_sync_job_leases set holder = pg_temp.h(1), expires_at = '2026-12-10T10:05:00Z'
 where job_id = pg_temp.jid(1);
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 0,
  'the job leased until 10:05: 0 invocations at 10:00');
select is(public.sync_invocations_wanted(null, '2026-12-10T10:06:00Z'), 1,
  'its lease expired (at 10:06): 1 invocation');
update public.historical_sync_job_leases set holder = null, expires_at = null, not_before = '2026-12-10T11:00:00Z'
 where job_id = pg_temp.jid(1);
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 0,
  'the job waiting out a Retry-After until 11:00: 0 invocations at 10:00');
update public.historical_sync_jobs set status = 'cancelled', completed_at = '2026-12-10T09:30:00Z'
 where id = pg_temp.jid(1);
select is(public.sync_invocations_wanted(null, '2026-12-10T12:00:00Z'), 0,
  'a cancelled job is no work');

-- A sliced job counts its slices, not itself: 8 slices of 4 per invocation are 2 requests.
select is((select count(*)::int from public.create_sync_job(pg_temp.ag(2), null, '2026-11-01Z', null,
             '2026-12-10T09:00:00Z', p_slices => 8)), 1, 'job 2 (uncapped, 8 slices) is created');
select is((select count(*)::int from public.historical_sync_job_slices where job_id = pg_temp.jid(2)), 8,
  'job 2 has 8 slices');
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 2,
  '8 claimable slices, 4 per invocation: ceil(8/4) = 2 invocations');
update public.sync_dispatch_settings set jobs_per_invocation = 3;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 3,
  '8 slices, 3 per invocation: ceil(8/3) = 3 invocations (rounded up)');
update public.sync_dispatch_settings set jobs_per_invocation = 1, max_invocations = 4;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 4,
  '8 slices, 1 per invocation, at most 4: capped at 4');

-- With 1 per invocation and room for 64, the result is the number of claimable pieces.
update public.sync_dispatch_settings set jobs_per_invocation = 1, max_invocations = 64;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 8,
  'uncapped by max_invocations 64: 8 invocations for 8 slices');
update public.historical_sync_job_slices set holder = pg_temp.h(2), expires_at = '2026-12-10T10:05:00Z'
 where job_id = pg_temp.jid(2) and slice_no in (1, 2);
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 6,
  'slices 1 and 2 leased until 10:05 do not count at 10:00: 6');
update public.historical_sync_job_slices set not_before = '2026-12-10T11:00:00Z'
 where job_id = pg_temp.jid(2) and slice_no = 3;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 5,
  'slice 3 with not_before 11:00 does not count at 10:00: 5');
update public.historical_sync_job_slices set done = true
 where job_id = pg_temp.jid(2) and slice_no = 4;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 4,
  'slice 4 done does not count: 4');
update public.historical_sync_job_slices set holder = pg_temp.h(3), expires_at = '2026-12-10T09:59:00Z'
 where job_id = pg_temp.jid(2) and slice_no = 5;
update public.historical_sync_job_slices set not_before = '2026-12-10T09:59:00Z'
 where job_id = pg_temp.jid(2) and slice_no = 6;
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 4,
  'a lease expired before p_now and a not_before already passed still count: 4');
select is(public.sync_invocations_wanted(null, '2026-12-10T11:00:00Z'), 8 - 1,
  'at 11:00 the leases of slices 1 and 2 have expired and slice 3 may be retried: all but the done slice, 7');

-- p_job_id: only that job's work counts.
select is((select count(*)::int from public.create_sync_job(pg_temp.ag(3), null, '2026-11-01Z', 100,
             '2026-12-10T09:00:00Z')), 1, 'job 3 (unsliced) is created');
select is(public.sync_invocations_wanted(null, '2026-12-10T10:00:00Z'), 5,
  'everything: job 2''s 4 claimable slices and job 3, 5');
select is(public.sync_invocations_wanted(pg_temp.jid(2), '2026-12-10T10:00:00Z'), 4,
  'p_job_id job 2: only its 4 claimable slices');
select is(public.sync_invocations_wanted(pg_temp.jid(3), '2026-12-10T10:00:00Z'), 1,
  'p_job_id job 3: only itself, 1');
select is(public.sync_invocations_wanted('091a0000-0000-4000-8000-0000000009ff', '2026-12-10T10:00:00Z'), 0,
  'p_job_id of no job: 0');
update public.historical_sync_jobs set status = 'cancelled', completed_at = '2026-12-10T09:30:00Z'
 where id in (pg_temp.jid(2), pg_temp.jid(3));
select is(public.sync_invocations_wanted(pg_temp.jid(2), '2026-12-10T10:00:00Z'), 0,
  'the slices of a cancelled job are no work');
update public.sync_dispatch_settings set max_invocations = 4, jobs_per_invocation = 4;

-- ══ 3. dispatch_historical_sync fans out ═══════════════════════════════════════════════
-- No work: one row, completed at once, and no HTTP call.
select is(public.sync_invocations_wanted(null, '2026-12-10T11:00:00Z'), 0, 'no claimable work before the idle tick');
select lives_ok($$ select public.dispatch_historical_sync('2026-12-10T11:00:00Z') $$,
  'an idle tick runs');
select is(
  (select count(*)::int from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-12-10T11:00:00Z'),
  1, 'the idle tick wrote exactly one log row');
select results_eq(
  $$ select status, result, completed_at, error_message from public.cron_job_logs
      where id = pg_temp.tick('2026-12-10T11:00:00Z') $$,
  $$ values ('completed', '{"dispatched": false, "reason": "no_work"}'::jsonb,
             '2026-12-10T11:00:00Z'::timestamptz, null::text) $$,
  'the idle row is completed at p_now: {dispatched: false, reason: no_work}');
select is(cardinality(pg_temp.queued_for_log(pg_temp.tick('2026-12-10T11:00:00Z'))), 0,
  'and no request was queued for it');

-- 8 claimable slices, 4 per invocation: one row, two requests.
select is((select count(*)::int from public.create_sync_job(pg_temp.ag(4), null, '2026-11-01Z', null,
             '2026-12-10T09:00:00Z', p_slices => 8)), 1, 'job 4 (8 slices) is created');
select lives_ok($$ select public.dispatch_historical_sync('2026-12-10T11:01:00Z') $$,
  'a tick with 8 claimable slices runs');
select is(
  (select count(*)::int from public.cron_job_logs
    where job_name = 'process-historical-sync' and started_at = '2026-12-10T11:01:00Z'),
  1, 'it wrote exactly one log row');
select results_eq(
  $$ select status, completed_at, error_message, result - 'request_ids',
            jsonb_typeof(result -> 'request_ids'), jsonb_array_length(result -> 'request_ids')
       from public.cron_job_logs where id = pg_temp.tick('2026-12-10T11:01:00Z') $$,
  $$ values ('running', null::timestamptz, null::text, '{"dispatched": true}'::jsonb, 'array', 2) $$,
  'the row stays running, result {dispatched: true, request_ids: [two ids]}');
select is(pg_temp.queued_for_log(pg_temp.tick('2026-12-10T11:01:00Z')),
  pg_temp.logged_ids(pg_temp.tick('2026-12-10T11:01:00Z')),
  'exactly the 2 requests queued for the row are the request_ids it names');
select is(
  (select count(*)::int from unnest(pg_temp.logged_ids(pg_temp.tick('2026-12-10T11:01:00Z'))) i
    where pg_temp.body(i) = jsonb_build_object('cron_log_id', pg_temp.tick('2026-12-10T11:01:00Z'), 'wait', false)),
  2, 'each body is exactly {cron_log_id: <the row id>, wait: false}');
select results_eq(
  $$ select q.method::text, q.url, q.headers ->> 'apikey', q.timeout_milliseconds
       from net.http_request_queue q
      where q.id = any (pg_temp.logged_ids(pg_temp.tick('2026-12-10T11:01:00Z')))
      order by q.id $$,
  $$ values ('POST', 'https://pgtap-091.example.test/functions/v1/process-historical-sync', 'pgtap-091-secret-key', 10000),
            ('POST', 'https://pgtap-091.example.test/functions/v1/process-historical-sync', 'pgtap-091-secret-key', 10000) $$,
  'both are short POSTs to process-historical-sync with the secret key');

-- 1 per invocation, at most 4: the same 8 slices take 4 requests.
update public.sync_dispatch_settings set jobs_per_invocation = 1;
select lives_ok($$ select public.dispatch_historical_sync('2026-12-10T11:02:00Z') $$,
  'a tick with 1 per invocation runs');
select is(cardinality(pg_temp.logged_ids(pg_temp.tick('2026-12-10T11:02:00Z'))), 4,
  'it names 4 request ids (capped by max_invocations)');
select is(pg_temp.queued_for_log(pg_temp.tick('2026-12-10T11:02:00Z')),
  pg_temp.logged_ids(pg_temp.tick('2026-12-10T11:02:00Z')),
  'and exactly those 4 requests are queued for it');
update public.sync_dispatch_settings set jobs_per_invocation = 4;

-- ══ 4. request_sync_continuation ═══════════════════════════════════════════════════
-- As many requests as the job's claimable work needs (job 4: 8 slices, 2), each for the job.
create temp table cont (n int primary key, ids bigint[]);
insert into cont values (1, public.request_sync_continuation(pg_temp.jid(4)));
select is(public.sync_invocations_wanted(pg_temp.jid(4)), 2, 'job 4 needs 2 invocations now');
select is(cardinality((select ids from cont where n = 1)), 2,
  'request_sync_continuation(job 4) returns 2 request ids, as sync_invocations_wanted says');
select is(
  (select count(*)::int from cont, unnest(cont.ids) i
    where cont.n = 1 and pg_temp.body(i) = jsonb_build_object('job_id', pg_temp.jid(4), 'wait', false)),
  2, 'each is queued with body exactly {job_id: job 4, wait: false}');
-- No claimable work for the job (every slice leased): still one request, the kick.
insert into public.historical_sync_jobs (agency_id, date_to, created_at)
values (pg_temp.ag(5), '2026-11-01Z', '2026-12-10T09:00:00Z');
insert into public.historical_sync_job_leases (job_id, holder, expires_at)
values (pg_temp.jid(5), pg_temp.h(5), now() + interval '1 hour');
select is(public.sync_invocations_wanted(pg_temp.jid(5)), 0, 'job 5, leased for an hour, needs no invocation');
insert into cont values (2, public.request_sync_continuation(pg_temp.jid(5)));
select is(cardinality((select ids from cont where n = 2)), 1,
  'request_sync_continuation(job 5) still returns one request id (at least 1)');
select is(pg_temp.body((select ids[1] from cont where n = 2)),
  jsonb_build_object('job_id', pg_temp.jid(5), 'wait', false),
  'its body is {job_id: job 5, wait: false}');
-- Without a job: all claimable work (job 4's 8 slices: 2), body {wait: false}.
insert into cont values (3, public.request_sync_continuation());
select is(cardinality((select ids from cont where n = 3)), public.sync_invocations_wanted(),
  'request_sync_continuation() returns as many ids as sync_invocations_wanted() says');
select is(cardinality((select ids from cont where n = 3)), 2, 'that is 2');
select is(
  (select count(*)::int from cont, unnest(cont.ids) i
    where cont.n = 3 and pg_temp.body(i) = '{"wait": false}'::jsonb),
  2, 'each body is exactly {wait: false}');
-- Only if work (after a run that made progress): job 5 alone, leased, gets nothing; work
-- whose last attempt failed (slice attempts counted, unleased) is left for a later tick.
insert into cont values (4, public.request_sync_continuation(pg_temp.jid(5), true));
select is((select ids from cont where n = 4), '{}'::bigint[],
  'request_sync_continuation(job 5, only if work) queues nothing: nothing is claimable');
update public.historical_sync_job_slices set failed_attempts = 1 where job_id = pg_temp.jid(4);
select is(public.sync_invocations_wanted(pg_temp.jid(4), now(), true), 0,
  'with every slice''s last attempt failed, job 4 needs no invocation among progressing work');
select is(public.sync_invocations_wanted(pg_temp.jid(4), now()), 2,
  'though a tick still counts its 8 slices: 2');
insert into cont values (5, public.request_sync_continuation(pg_temp.jid(4), true));
select is((select ids from cont where n = 5), '{}'::bigint[],
  'so a continuation only if work queues nothing for it: it is retried on a later tick');
update public.historical_sync_job_slices set failed_attempts = 0
 where job_id = pg_temp.jid(4) and slice_no <= 5;
insert into cont values (6, public.request_sync_continuation(pg_temp.jid(4), true));
select is(cardinality((select ids from cont where n = 6)), 2,
  'with 5 slices progressing again: ceil(5 / 4) = 2 requests');
update public.historical_sync_job_slices set failed_attempts = 0 where job_id = pg_temp.jid(4);
-- Not set up for dispatch: null, nothing queued.
create temp table queue_before as
  select count(*)::int as n from net.http_request_queue
   where convert_from(body, 'UTF8')::jsonb ->> 'job_id' = pg_temp.jid(4)::text;
delete from vault.secrets where name = 'functions_secret_key';
select is(public.request_sync_continuation(pg_temp.jid(4)), null,
  'without the functions_secret_key secret request_sync_continuation returns null');
delete from vault.secrets where name = 'project_url';
select is(public.request_sync_continuation(pg_temp.jid(4)), null,
  'without either secret it returns null');
select is(
  (select count(*)::int from net.http_request_queue
    where convert_from(body, 'UTF8')::jsonb ->> 'job_id' = pg_temp.jid(4)::text),
  (select n from queue_before),
  'and neither call queued a request');

-- ══ 5. report_sync_run ════════════════════════════════════════════════════════════
-- A row of a tick that posted 2 requests: the first report keeps it running, the second
-- closes it with every run, every job and the longest duration.
insert into public.cron_job_logs (id, job_name, started_at, status, result, error_message) values
  (pg_temp.log(1), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running',
   '{"dispatched": true, "request_ids": [-9101, -9102]}', null),
  (pg_temp.log(2), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running',
   '{"dispatched": true, "request_ids": [-9201, -9202]}', 'closing stale log rows failed: sweep'),
  (pg_temp.log(3), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running',
   '{"dispatched": true, "request_ids": [-9301, -9302]}', null),
  (pg_temp.log(4), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running',
   '{"dispatched": true, "request_ids": [-9401, -9402]}', 'closing stale log rows failed: sweep'),
  (pg_temp.log(5), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running',
   '{"dispatched": true, "request_id": -9501}', null),
  (pg_temp.log(6), 'process-historical-sync', '2026-12-10T12:00:00Z', 'running', null, null),
  (pg_temp.log(7), 'process-historical-sync', '2026-12-10T12:00:00Z', 'completed',
   '{"dispatched": false, "reason": "no_work"}', null);
update public.cron_job_logs set completed_at = '2026-12-10T12:00:00Z' where id = pg_temp.log(7);

select results_eq(
  $$ select id, status from public.report_sync_run(pg_temp.log(1),
       '{"jobs": [{"job_id": "a"}], "duration_ms": 1200}', null, '2026-12-10T12:01:00Z') $$,
  $$ values (pg_temp.log(1), 'running') $$,
  'the first of 2 reports returns the row, still running');
select results_eq(
  $$ select status, result, completed_at, error_message from public.cron_job_logs where id = pg_temp.log(1) $$,
  $$ values ('running',
             '{"dispatched": true, "request_ids": [-9101, -9102],
               "runs": [{"jobs": [{"job_id": "a"}], "duration_ms": 1200}]}'::jsonb,
             null::timestamptz, null::text) $$,
  'after it: running, result.runs = [run 1], completed_at null');
select results_eq(
  $$ select id, status from public.report_sync_run(pg_temp.log(1),
       '{"jobs": [{"job_id": "b"}, {"job_id": "c"}], "duration_ms": 3400}', null, '2026-12-10T12:02:00Z') $$,
  $$ values (pg_temp.log(1), 'completed') $$,
  'the second report returns the row, completed');
select results_eq(
  $$ select status, result, completed_at, error_message from public.cron_job_logs where id = pg_temp.log(1) $$,
  $$ values ('completed',
             '{"dispatched": true, "request_ids": [-9101, -9102],
               "runs": [{"jobs": [{"job_id": "a"}], "duration_ms": 1200},
                        {"jobs": [{"job_id": "b"}, {"job_id": "c"}], "duration_ms": 3400}],
               "jobs": [{"job_id": "a"}, {"job_id": "b"}, {"job_id": "c"}],
               "duration_ms": 3400}'::jsonb,
             '2026-12-10T12:02:00Z'::timestamptz, null::text) $$,
  'after it: completed at p_now, runs [run 1, run 2], jobs of both runs in order, duration_ms the larger');

-- What the dispatcher noted (a failed sweep) stays on the row the runs complete.
select lives_ok(
  $$ select public.report_sync_run(pg_temp.log(2), '{"jobs": [], "duration_ms": 10}', null, '2026-12-10T12:01:00Z');
     select public.report_sync_run(pg_temp.log(2), '{"jobs": [], "duration_ms": 20}', null, '2026-12-10T12:02:00Z') $$,
  'both runs of a row with a sweep error report');
select results_eq(
  $$ select status, completed_at, error_message, result -> 'jobs', result -> 'duration_ms'
       from public.cron_job_logs where id = pg_temp.log(2) $$,
  $$ values ('completed', '2026-12-10T12:02:00Z'::timestamptz, 'closing stale log rows failed: sweep',
             '[]'::jsonb, '20'::jsonb) $$,
  'it completes with the sweep error kept as it was');

-- A run that failed (p_run null, p_error): the row fails once all have reported, naming it.
select results_eq(
  $$ select status, result, completed_at, error_message
       from public.report_sync_run(pg_temp.log(3), null, 'boom', '2026-12-10T12:01:00Z') $$,
  $$ values ('running',
             '{"dispatched": true, "request_ids": [-9301, -9302],
               "runs": [{"error": "boom"}], "errors": ["boom"]}'::jsonb,
             null::timestamptz, null::text) $$,
  'a failed first run of 2: still running, runs [{error: boom}], errors [boom], no error_message yet');
select results_eq(
  $$ select status, result, completed_at, error_message
       from public.report_sync_run(pg_temp.log(3), '{"jobs": [{"job_id": "d"}], "duration_ms": 500}',
                                   null, '2026-12-10T12:02:00Z') $$,
  $$ values ('failed',
             '{"dispatched": true, "request_ids": [-9301, -9302],
               "runs": [{"error": "boom"}, {"jobs": [{"job_id": "d"}], "duration_ms": 500}],
               "errors": ["boom"], "jobs": [{"job_id": "d"}], "duration_ms": 500}'::jsonb,
             '2026-12-10T12:02:00Z'::timestamptz, 'boom') $$,
  'after the second report: failed at p_now, error_message boom, errors [boom], the good run''s jobs kept');
select results_eq(
  $$ select status, error_message from public.cron_job_logs where id = pg_temp.log(3) $$,
  $$ values ('failed', 'boom') $$,
  'the stored row says the same');
-- A sweep error and a run's error are both named.
select lives_ok(
  $$ select public.report_sync_run(pg_temp.log(4), null, 'boom', '2026-12-10T12:01:00Z');
     select public.report_sync_run(pg_temp.log(4), null, 'bang', '2026-12-10T12:02:00Z') $$,
  'two failed runs of a row with a sweep error report');
select results_eq(
  $$ select status, error_message, result -> 'errors', result -> 'jobs', result -> 'duration_ms'
       from public.cron_job_logs where id = pg_temp.log(4) $$,
  $$ values ('failed', 'closing stale log rows failed: sweep; boom; bang', '["boom", "bang"]'::jsonb,
             '[]'::jsonb, 'null'::jsonb) $$,
  'it fails naming the sweep error, then each run''s error; no jobs, no duration');

-- Without request_ids (a row of the single-request dispatcher, or none at all): the first report closes it.
select results_eq(
  $$ select status, result, completed_at
       from public.report_sync_run(pg_temp.log(5), '{"jobs": [{"job_id": "e"}], "duration_ms": 7}',
                                   null, '2026-12-10T12:01:00Z') $$,
  $$ values ('completed',
             '{"dispatched": true, "request_id": -9501,
               "runs": [{"jobs": [{"job_id": "e"}], "duration_ms": 7}],
               "jobs": [{"job_id": "e"}], "duration_ms": 7}'::jsonb,
             '2026-12-10T12:01:00Z'::timestamptz) $$,
  'a row with request_id but no request_ids closes on its first report');
select results_eq(
  $$ select status, result, completed_at
       from public.report_sync_run(pg_temp.log(6), '{"jobs": [], "duration_ms": 3}', null, '2026-12-10T12:01:00Z') $$,
  $$ values ('completed', '{"runs": [{"jobs": [], "duration_ms": 3}], "jobs": [], "duration_ms": 3}'::jsonb,
             '2026-12-10T12:01:00Z'::timestamptz) $$,
  'a row with no result at all closes on its first report');

-- Unknown or already closed: no row, nothing changed.
create temp table logs_before as
  select * from public.cron_job_logs where id in (pg_temp.log(1), pg_temp.log(3), pg_temp.log(7));
select is(
  (select count(*)::int from public.report_sync_run('091a0000-0000-4000-8000-0000000002ff',
     '{"jobs": [], "duration_ms": 1}', null, '2026-12-10T12:05:00Z')),
  0, 'an unknown id returns no row');
select is((select count(*)::int from public.cron_job_logs where id = '091a0000-0000-4000-8000-0000000002ff'), 0,
  'and creates none');
select is(
  (select count(*)::int from public.report_sync_run(pg_temp.log(1),
     '{"jobs": [{"job_id": "late"}], "duration_ms": 9999}', null, '2026-12-10T12:05:00Z')),
  0, 'a third report on the completed row returns no row');
select is(
  (select count(*)::int from public.report_sync_run(pg_temp.log(3), null, 'late', '2026-12-10T12:05:00Z')),
  0, 'a report on the failed row returns no row');
select is(
  (select count(*)::int from public.report_sync_run(pg_temp.log(7),
     '{"jobs": [], "duration_ms": 1}', null, '2026-12-10T12:05:00Z')),
  0, 'a report on an idle tick''s completed row returns no row');
select set_eq(
  $$ select * from public.cron_job_logs where id in (pg_temp.log(1), pg_temp.log(3), pg_temp.log(7)) $$,
  $$ select * from logs_before $$,
  'and those closed rows are unchanged');

-- ══ 6. definitions and privileges ══════════════════════════════════════════════════
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.sync_invocations_wanted(uuid, timestamptz, boolean)'::regprocedure),
  'sync_invocations_wanted is security definer with an empty search_path');
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.request_sync_continuation(uuid, boolean)'::regprocedure),
  'request_sync_continuation is security definer with an empty search_path');
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.report_sync_run(uuid, jsonb, text, timestamptz)'::regprocedure),
  'report_sync_run is security definer with an empty search_path');

select function_privs_are('public', 'sync_invocations_wanted', array['uuid', 'timestamp with time zone', 'boolean'],
  r, case when r = 'service_role' then array['EXECUTE'] else '{}'::text[] end,
  case when r = 'service_role' then 'service_role may execute sync_invocations_wanted'
       else r || ' may not execute sync_invocations_wanted' end)
  from unnest(array['service_role', 'anon', 'authenticated']) r;
select function_privs_are('public', 'request_sync_continuation', array['uuid', 'boolean'],
  r, case when r = 'service_role' then array['EXECUTE'] else '{}'::text[] end,
  case when r = 'service_role' then 'service_role may execute request_sync_continuation'
       else r || ' may not execute request_sync_continuation' end)
  from unnest(array['service_role', 'anon', 'authenticated']) r;
select function_privs_are('public', 'report_sync_run', array['uuid', 'jsonb', 'text', 'timestamp with time zone'],
  r, case when r = 'service_role' then array['EXECUTE'] else '{}'::text[] end,
  case when r = 'service_role' then 'service_role may execute report_sync_run'
       else r || ' may not execute report_sync_run' end)
  from unnest(array['service_role', 'anon', 'authenticated']) r;

select * from finish();
rollback;
