-- claim_sync_jobs: leases claimable jobs (sync_job_is_claimable: active, no live lease, no
-- not_before ahead) oldest first, counts an attempt on each, and fails a job whose attempts ran
-- out instead. T = 1990-01-02 00:00:00Z throughout; the fixture jobs are created in 1990 so
-- that they are the oldest claimable jobs in the database.
begin;
create extension if not exists pgtap with schema extensions;
select plan(54);

insert into public.agencies (id, name)
select format('021a0000-0000-4000-8000-0000000000%s', n)::uuid, format('Claim agency %s', n)
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08']) as n;
-- J3 and J6 are in progress under H9's lease, which expires at exactly T.
insert into public.historical_sync_jobs (id, agency_id, date_to, status, created_at, started_at, completed_at) values
  ('021c0000-0000-4000-8000-000000000003', '021a0000-0000-4000-8000-000000000003', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:00Z', '1990-01-01T12:00:00Z', null),
  ('021c0000-0000-4000-8000-000000000001', '021a0000-0000-4000-8000-000000000001', '1990-01-31Z', 'pending',     '1990-01-01T00:00:01Z', null, null),
  ('021c0000-0000-4000-8000-000000000002', '021a0000-0000-4000-8000-000000000002', '1990-01-31Z', 'pending',     '1990-01-01T00:00:02Z', null, null),
  ('021c0000-0000-4000-8000-000000000007', '021a0000-0000-4000-8000-000000000007', '1990-01-31Z', 'pending',     '1990-01-01T00:00:03Z', null, null),
  ('021c0000-0000-4000-8000-000000000008', '021a0000-0000-4000-8000-000000000008', '1990-01-31Z', 'pending',     '1990-01-01T00:00:03Z', null, null),
  ('021c0000-0000-4000-8000-000000000006', '021a0000-0000-4000-8000-000000000006', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:04Z', '1990-01-01T12:00:00Z', null),
  ('021c0000-0000-4000-8000-000000000004', '021a0000-0000-4000-8000-000000000004', '1989-12-31Z', 'completed',   '1989-01-01T00:00:00Z', '1989-01-01T00:00:00Z', '1989-12-31T12:00:00Z'),
  ('021c0000-0000-4000-8000-000000000005', '021a0000-0000-4000-8000-000000000005', '1989-12-31Z', 'cancelled',   '1989-01-01T00:00:00Z', null, '1989-06-01T00:00:00Z');
insert into public.historical_sync_job_leases (job_id, holder, expires_at) values
  ('021c0000-0000-4000-8000-000000000003', '021d0000-0000-4000-8000-000000000009', '1990-01-02T00:00:00Z'),
  ('021c0000-0000-4000-8000-000000000006', '021d0000-0000-4000-8000-000000000009', '1990-01-02T00:00:00Z');

-- ── oldest claimable first, p_limit respected ──────────────────────────────────────
select results_eq(
  $$ select id, status::text, started_at, last_activity_at
       from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000001', 1, 60, null, '1990-01-02T00:00:00Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000001'::uuid, 'in_progress', '1990-01-02T00:00:00Z'::timestamptz,
             '1990-01-02T00:00:00Z'::timestamptz) $$,
  'a claim of 1 at T takes J1, the oldest job without a live lease (J3''s lease is live at T), and starts it at T');
select results_eq(
  $$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000001' $$,
  $$ values ('021d0000-0000-4000-8000-000000000001'::uuid, '1990-01-02T00:01:00Z'::timestamptz, 1) $$,
  'J1''s lease row names holder H1, expires at T + 60 s and counts 1 attempt (a claim is an attempt)');
select set_eq(
  $$ select id from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000001', 2, 60, null, '1990-01-02T00:00:00Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000002'::uuid), ('021c0000-0000-4000-8000-000000000007'::uuid) $$,
  'a claim of 2 takes J2 and then J7 (J7 and J8 tie on created_at; the smaller id goes first)');
select results_eq(
  $$ select id from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000001', 1, 60, null, '1990-01-02T00:00:00Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000008'::uuid) $$,
  'the next claim of 1 takes J8');
select is(
  (select count(*)::int from public.historical_sync_job_leases
    where holder = '021d0000-0000-4000-8000-000000000001'),
  4, 'H1 now holds exactly 4 leases (J1, J2, J7, J8)');

-- ── finished jobs are never claimed ───────────────────────────────────────────────
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 4, 60,
                                          '021c0000-0000-4000-8000-000000000004', '1990-01-02T00:00:00Z') $$,
  'a completed job is not claimed, even by id');
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 4, 60,
                                          '021c0000-0000-4000-8000-000000000005', '1990-01-02T00:00:00Z') $$,
  'a cancelled job is not claimed, even by id');
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 4, 60,
                                          '021c0000-0000-4000-8000-0000000000ff', '1990-01-02T00:00:00Z') $$,
  'an unknown job id claims nothing');
select is(
  (select count(*)::int from public.historical_sync_job_leases
    where job_id in ('021c0000-0000-4000-8000-000000000004', '021c0000-0000-4000-8000-000000000005')),
  0, 'no lease row was written for the completed and cancelled jobs');

-- ── the lease boundary: live up to and including expires_at ────────────────────────
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 1, 60,
                                          '021c0000-0000-4000-8000-000000000003', '1990-01-01T23:59:59Z') $$,
  'J3''s lease is live one second before its expiry T: not claimed');
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 1, 60,
                                          '021c0000-0000-4000-8000-000000000003', '1990-01-02T00:00:00Z') $$,
  'J3''s lease is still live at exactly T: not claimed');
select is(
  (select holder from public.historical_sync_job_leases where job_id = '021c0000-0000-4000-8000-000000000003'),
  '021d0000-0000-4000-8000-000000000009'::uuid, 'H9 still holds J3 after both refused claims');
select results_eq(
  $$ select id, started_at, last_activity_at
       from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 1, 60,
                                   '021c0000-0000-4000-8000-000000000003', '1990-01-02T00:00:01Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000003'::uuid, '1990-01-01T12:00:00Z'::timestamptz,
             '1990-01-02T00:00:01Z'::timestamptz) $$,
  'one second past T, H2 takes J3 over; started_at keeps its first value, last_activity_at moves');
select results_eq(
  $$ select holder, expires_at from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000003' $$,
  $$ values ('021d0000-0000-4000-8000-000000000002'::uuid, '1990-01-02T00:01:01Z'::timestamptz) $$,
  'the taken-over lease names H2 and expires 60 s after the claim');
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000002', 1, 60,
     '021c0000-0000-4000-8000-000000000006', '1990-01-02T00:00:00.000001Z')),
  1, 'one microsecond past T, J6''s expired lease is claimable');

-- ── p_job_id: only that job ─────────────────────────────────────────────────────────
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000003', 1, 60,
                                          '021c0000-0000-4000-8000-000000000001', '1990-01-02T00:00:30Z') $$,
  'J1 by id is not claimed by H3 while H1''s lease is live');
update public.historical_sync_job_leases set holder = null, expires_at = null
 where job_id = '021c0000-0000-4000-8000-000000000007';
select results_eq(
  $$ select id from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000003', 4, 60,
                                           '021c0000-0000-4000-8000-000000000007', '1990-01-02T00:00:30Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000007'::uuid) $$,
  'a released lease (no holder) is claimable at once; with p_job_id and p_limit 4 only that job is claimed');
select is(
  (select count(*)::int from public.historical_sync_job_leases where holder = '021d0000-0000-4000-8000-000000000003'),
  1, 'H3 holds exactly 1 lease');

-- ── started_at is set once ────────────────────────────────────────────────────────────
select results_eq(
  $$ select status::text, started_at, last_activity_at
       from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000004', 1, 60,
                                   '021c0000-0000-4000-8000-000000000001', '1990-01-02T00:01:01Z') $$,
  $$ values ('in_progress', '1990-01-02T00:00:00Z'::timestamptz, '1990-01-02T00:01:01Z'::timestamptz) $$,
  'a second claim of J1 after its lease ran out keeps started_at from the first claim');
select is(
  (select holder from public.historical_sync_job_leases where job_id = '021c0000-0000-4000-8000-000000000001'),
  '021d0000-0000-4000-8000-000000000004'::uuid, 'J1 is now held by H4');
select is(
  (select count(*)::int from public.historical_sync_job_leases where job_id = '021c0000-0000-4000-8000-000000000001'),
  1, 'J1 still has exactly one lease row (the claim updated it in place)');

-- A pending job claimed after a lease row already exists (released) also starts at the claim.
update public.historical_sync_jobs set status = 'pending', started_at = null
 where id = '021c0000-0000-4000-8000-000000000008';
update public.historical_sync_job_leases set holder = null, expires_at = null
 where job_id = '021c0000-0000-4000-8000-000000000008';
select results_eq(
  $$ select status::text, started_at
       from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000004', 1, 30,
                                   '021c0000-0000-4000-8000-000000000008', '1990-01-03T00:00:00Z') $$,
  $$ values ('in_progress', '1990-01-03T00:00:00Z'::timestamptz) $$,
  'a pending job moves to in_progress and started_at is set at its first claim');
select is(
  (select expires_at from public.historical_sync_job_leases where job_id = '021c0000-0000-4000-8000-000000000008'),
  '1990-01-03T00:00:30Z'::timestamptz, 'p_lease_seconds 30 gives a lease until claim + 30 s');

-- p_now defaults to now(): a lease expiring in the far future is live now.
update public.historical_sync_job_leases set holder = '021d0000-0000-4000-8000-000000000009', expires_at = now() + interval '1 hour'
 where job_id = '021c0000-0000-4000-8000-000000000002';
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000005', 1, 60,
                                          '021c0000-0000-4000-8000-000000000002') $$,
  'without p_now, a lease expiring an hour from now() is live');
update public.historical_sync_job_leases set expires_at = now() - interval '1 second'
 where job_id = '021c0000-0000-4000-8000-000000000002';
select results_eq(
  $$ select last_activity_at = now() from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000005', 1, 60,
                                          '021c0000-0000-4000-8000-000000000002') $$,
  $$ values (true) $$,
  'without p_now, a lease that expired a second before now() is claimed, at now()');

-- ── skip locked ──────────────────────────────────────────────────────────────────────
-- `for update of j skip locked` is not tested here: seeing a row another transaction has
-- locked takes a second session, and opening one from SQL (dblink) needs a superuser, which
-- `postgres` is not on hosted Supabase. Claim races under real concurrency are covered by
-- tests/integration/claim_race.test.ts (Deno, two connections).

-- ── a claim counts an attempt and clears a passed not_before ──────────────────────────
select results_eq(
  $$ select failed_attempts, not_before from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000001' $$,
  $$ values (2, null::timestamptz) $$,
  'J1 was claimed twice without a page landing: 2 attempts counted');
update public.historical_sync_job_leases
   set holder = null, expires_at = null, not_before = '1990-01-03T00:00:00Z'
 where job_id = '021c0000-0000-4000-8000-000000000007';
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000003', 1, 60,
     '021c0000-0000-4000-8000-000000000007', '1990-01-02T23:59:59.999999Z')),
  0, 'J7 released with not_before 1990-01-03: not claimed one microsecond before');
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000003', 1, 60,
     '021c0000-0000-4000-8000-000000000007', '1990-01-03T00:00:00Z')),
  1, 'J7 is claimed at exactly its not_before');
select results_eq(
  $$ select holder, failed_attempts, not_before from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000007' $$,
  $$ values ('021d0000-0000-4000-8000-000000000003'::uuid, 3, null::timestamptz) $$,
  'that claim clears not_before and counts J7''s third attempt (H1, H3 and now H3 again)');

-- ── sync_job_is_claimable: active, no live lease, no Retry-After still to wait ─────────
-- Rows are built in memory (jsonb_populate_record), T = 1990-01-02 00:00:00Z.
select is(
  public.sync_job_is_claimable(jsonb_populate_record(null::public.historical_sync_jobs, c.job),
                               case when c.lease is null then null
                                    else jsonb_populate_record(null::public.historical_sync_job_leases, c.lease) end,
                               '1990-01-02T00:00:00Z'),
  c.expected, c.name)
  from (values
    (1, '{"status": "pending"}'::jsonb, '{}'::jsonb, true,
     'claimable: a pending job with a released lease row and no not_before'),
    (2, '{"status": "pending"}', null, true,
     'claimable: a pending job without any lease row'),
    (3, '{"status": "in_progress"}',
        '{"holder": "021d0000-0000-4000-8000-000000000009", "expires_at": "1990-01-01T23:59:59.999999Z", "not_before": "1990-01-01T23:00:00Z"}',
     true, 'claimable: an in_progress job whose lease expired a microsecond ago and whose not_before has passed'),
    (4, '{"status": "pending"}', '{"not_before": "1990-01-02T00:00:00Z"}', true,
     'claimable: a not_before of exactly now has passed'),
    (5, '{"status": "pending"}', '{"not_before": "1990-01-02T00:00:00.000001Z"}', false,
     'not claimable: a not_before one microsecond ahead'),
    (6, '{"status": "in_progress"}',
        '{"holder": "021d0000-0000-4000-8000-000000000009", "expires_at": "1990-01-02T00:00:00Z"}',
     false, 'not claimable: a lease expiring at exactly now is still live'),
    (7, '{"status": "in_progress"}',
        '{"holder": "021d0000-0000-4000-8000-000000000009", "expires_at": "1990-01-02T00:01:00Z"}',
     false, 'not claimable: a lease live for another minute'),
    (8, '{"status": "completed"}', '{}', false, 'not claimable: a completed job, even with a free lease'),
    (9, '{"status": "failed"}', '{}', false, 'not claimable: a failed job, even with a free lease'),
    (10, '{"status": "cancelled"}', '{}', false, 'not claimable: a cancelled job, even with a free lease')
  ) as c(n, job, lease, expected, name)
 order by c.n;

-- ── attempts run out: the claim after the last allowed attempt fails the job ───────────
-- J11 and J12 have used all 10 attempts (default p_max_attempts), J11 with a reported
-- problem, J12 without one (an invocation that died); J13 has used 9; J14 2 of 3.
insert into public.agencies (id, name)
select format('021a0000-0000-4000-8000-0000000000%s', n)::uuid, format('Claim agency %s', n)
  from unnest(array['11', '12', '13', '14']) as n;
insert into public.historical_sync_jobs (id, agency_id, date_to, status, created_at, started_at, cursor) values
  ('021c0000-0000-4000-8000-000000000011', '021a0000-0000-4000-8000-000000000011', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:11Z', '1990-01-01T12:00:00Z', 'c5'),
  ('021c0000-0000-4000-8000-000000000012', '021a0000-0000-4000-8000-000000000012', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:12Z', '1990-01-01T12:00:00Z', null),
  ('021c0000-0000-4000-8000-000000000013', '021a0000-0000-4000-8000-000000000013', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:13Z', '1990-01-01T12:00:00Z', null),
  ('021c0000-0000-4000-8000-000000000014', '021a0000-0000-4000-8000-000000000014', '1990-01-31Z', 'pending',     '1990-01-01T00:00:14Z', null, null);
insert into public.historical_sync_job_leases (job_id, failed_attempts, last_problem) values
  ('021c0000-0000-4000-8000-000000000011', 10, 'Ultravox answered HTTP 503'),
  ('021c0000-0000-4000-8000-000000000012', 10, null),
  ('021c0000-0000-4000-8000-000000000013', 9, 'Ultravox answered HTTP 503'),
  ('021c0000-0000-4000-8000-000000000014', 2, 'Ultravox answered HTTP 429');

select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000007', 1, 60,
                                          '021c0000-0000-4000-8000-000000000011', '1990-01-02T00:00:00Z') $$,
  'a job whose 10 attempts ran out is not handed out by the claim');
select results_eq(
  $$ select status::text, completed_at, last_error_at, error_message, cursor
       from public.historical_sync_jobs where id = '021c0000-0000-4000-8000-000000000011' $$,
  $$ values ('failed', '1990-01-02T00:00:00Z'::timestamptz, '1990-01-02T00:00:00Z'::timestamptz,
             'Gave up after 10 attempts in a row without a page landing; the last problem: Ultravox answered HTTP 503',
             'c5') $$,
  'the claim failed J11 at T instead, quoting its 10 attempts and its last problem, cursor kept');
select results_eq(
  $$ select holder, expires_at, failed_attempts, last_problem from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000011' $$,
  $$ values (null::uuid, null::timestamptz, 10, 'Ultravox answered HTTP 503') $$,
  'J11 got no lease and no eleventh attempt');
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000007', 1, 60,
     '021c0000-0000-4000-8000-000000000012', '1990-01-02T00:00:00Z')),
  0, 'J12, its 10 attempts run out without a reported problem, is not handed out either');
select results_eq(
  $$ select status::text, completed_at, error_message
       from public.historical_sync_jobs where id = '021c0000-0000-4000-8000-000000000012' $$,
  $$ values ('failed', '1990-01-02T00:00:00Z'::timestamptz,
             'Gave up after 10 attempts in a row without a page landing; the last problem: an invocation ended without reporting one (out of memory or CPU time, or killed)') $$,
  'J12 is failed saying an invocation ended without reporting a problem');
select results_eq(
  $$ select id, status::text from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000007', 1, 60,
                                          '021c0000-0000-4000-8000-000000000013', '1990-01-02T00:00:00Z') $$,
  $$ values ('021c0000-0000-4000-8000-000000000013'::uuid, 'in_progress') $$,
  'J13, after 9 of 10 attempts, is claimed for its tenth');
select results_eq(
  $$ select holder, failed_attempts from public.historical_sync_job_leases
      where job_id = '021c0000-0000-4000-8000-000000000013' $$,
  $$ values ('021d0000-0000-4000-8000-000000000007'::uuid, 10) $$,
  'J13''s lease names H7 and counts 10 attempts');
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000008', 1, 60,
     '021c0000-0000-4000-8000-000000000014', '1990-01-02T00:00:00Z', 3)),
  1, 'with p_max_attempts 3, J14 after 2 attempts is claimed for its third');
select is(
  (select failed_attempts from public.historical_sync_job_leases where job_id = '021c0000-0000-4000-8000-000000000014'),
  3, 'J14 now counts 3 attempts');
select is(
  (select count(*)::int from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000009', 1, 60,
     '021c0000-0000-4000-8000-000000000014', '1990-01-02T00:01:01Z', 3)),
  0, 'once that lease ran out without a page landing, the next claim with p_max_attempts 3 takes nothing');
select results_eq(
  $$ select j.status::text, j.completed_at, j.error_message, l.failed_attempts
       from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
      where j.id = '021c0000-0000-4000-8000-000000000014' $$,
  $$ values ('failed', '1990-01-02T00:01:01Z'::timestamptz,
             'Gave up after 3 attempts in a row without a page landing; the last problem: Ultravox answered HTTP 429',
             3) $$,
  'it failed J14 at that claim, quoting 3 attempts and the last problem, and counted no fourth attempt');

-- ── definition ──────────────────────────────────────────────────────────────────────
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz, integer)'::regprocedure),
  'claim_sync_jobs is security definer with an empty search_path');
select function_privs_are('public', 'claim_sync_jobs',
  array['uuid', 'integer', 'integer', 'uuid', 'timestamp with time zone', 'integer'],
  'service_role', array['EXECUTE'], 'service_role may execute claim_sync_jobs');
select ok(
  (select not prosecdef and provolatile = 's' and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.sync_job_is_claimable(public.historical_sync_jobs, public.historical_sync_job_leases, timestamptz)'::regprocedure),
  'sync_job_is_claimable is a stable security invoker function with an empty search_path');
select function_privs_are('public', 'sync_job_is_claimable',
  array['historical_sync_jobs', 'historical_sync_job_leases', 'timestamp with time zone'],
  'service_role', array['EXECUTE'], 'service_role may execute sync_job_is_claimable');

select * from finish();
rollback;
