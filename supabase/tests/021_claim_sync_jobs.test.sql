-- claim_sync_jobs: leases active jobs that no live lease holds, oldest first, skipping
-- rows another claimer has locked. T = 1990-01-02 00:00:00Z throughout; the fixture jobs
-- are created in 1990 so that they are the oldest claimable jobs in the database.
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
select plan(29);

insert into public.agencies (id, name)
select format('021a0000-0000-4000-8000-0000000000%s', n)::uuid, format('Claim agency %s', n)
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08']) as n;
-- J3 and J6 are in progress under H9's lease, which expires at exactly T.
insert into public.historical_sync_jobs (id, agency_id, date_to, status, created_at, started_at) values
  ('021c0000-0000-4000-8000-000000000003', '021a0000-0000-4000-8000-000000000003', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:00Z', '1990-01-01T12:00:00Z'),
  ('021c0000-0000-4000-8000-000000000001', '021a0000-0000-4000-8000-000000000001', '1990-01-31Z', 'pending',     '1990-01-01T00:00:01Z', null),
  ('021c0000-0000-4000-8000-000000000002', '021a0000-0000-4000-8000-000000000002', '1990-01-31Z', 'pending',     '1990-01-01T00:00:02Z', null),
  ('021c0000-0000-4000-8000-000000000007', '021a0000-0000-4000-8000-000000000007', '1990-01-31Z', 'pending',     '1990-01-01T00:00:03Z', null),
  ('021c0000-0000-4000-8000-000000000008', '021a0000-0000-4000-8000-000000000008', '1990-01-31Z', 'pending',     '1990-01-01T00:00:03Z', null),
  ('021c0000-0000-4000-8000-000000000006', '021a0000-0000-4000-8000-000000000006', '1990-01-31Z', 'in_progress', '1990-01-01T00:00:04Z', '1990-01-01T12:00:00Z'),
  ('021c0000-0000-4000-8000-000000000004', '021a0000-0000-4000-8000-000000000004', '1989-12-31Z', 'completed',   '1989-01-01T00:00:00Z', '1989-01-01T00:00:00Z'),
  ('021c0000-0000-4000-8000-000000000005', '021a0000-0000-4000-8000-000000000005', '1989-12-31Z', 'cancelled',   '1989-01-01T00:00:00Z', null);
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
  $$ values ('021d0000-0000-4000-8000-000000000001'::uuid, '1990-01-02T00:01:00Z'::timestamptz, 0) $$,
  'J1''s lease row names holder H1 and expires at T + 60 s');
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

-- ── skip locked: a row another transaction holds is skipped, not waited for ─────────
-- The fixture must be committed to be seen, so a second session (dblink) creates it, then
-- locks it. Its lease runs until 2990 so no real worker claims it meanwhile; it is deleted
-- at the end, and any leftover of an interrupted run is deleted first.
do $fixture$
begin
  -- The server's own Unix socket where it has one (trust/peer for postgres), else its TCP address.
  perform dblink_connect('fx', format('host=%s port=%s dbname=%s user=%s',
    coalesce(nullif(trim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''),
             host(inet_server_addr()), '127.0.0.1'),
    current_setting('port'), current_database(), current_user));
  perform dblink_exec('fx', $$ set statement_timeout = '10s' $$);
  perform dblink_exec('fx', $$ delete from public.agencies where id = '021a0000-0000-4000-8000-0000000000f0' $$);
  perform dblink_exec('fx', $$
    insert into public.agencies (id, name)
    values ('021a0000-0000-4000-8000-0000000000f0', 'pgtap 021 skip-locked fixture (safe to delete)') $$);
  perform dblink_exec('fx', $$
    insert into public.historical_sync_jobs (id, agency_id, date_to, status, created_at)
    values ('021c0000-0000-4000-8000-0000000000f0', '021a0000-0000-4000-8000-0000000000f0',
            '1990-01-31Z', 'pending', '1990-01-01Z') $$);
  perform dblink_exec('fx', $$
    insert into public.historical_sync_job_leases (job_id, holder, expires_at)
    values ('021c0000-0000-4000-8000-0000000000f0', '021d0000-0000-4000-8000-0000000000f0', '2990-01-01Z') $$);
  perform dblink_exec('fx', 'begin');
  perform * from dblink('fx', $$ select id from public.historical_sync_jobs
                                 where id = '021c0000-0000-4000-8000-0000000000f0' for update $$) as t(id uuid);
end
$fixture$;

set local lock_timeout = '3s';
select is_empty(
  $$ select * from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000006', 1, 60,
                                          '021c0000-0000-4000-8000-0000000000f0', '2995-01-01Z') $$,
  'a claimable job whose row another transaction has locked is skipped at once, not waited for');
do $$ begin perform dblink_exec('fx', 'rollback'); end $$;

-- Control: once the other transaction lets go, the same claim takes the job.
savepoint control_claim;
select count(*) as control_claimed
  from public.claim_sync_jobs('021d0000-0000-4000-8000-000000000006', 1, 60,
                              '021c0000-0000-4000-8000-0000000000f0', '2995-01-01Z') \gset
rollback to savepoint control_claim;
reset lock_timeout;
select is(:control_claimed::int, 1, 'once the other transaction ends, the same claim takes the job');

do $fixture$
begin
  perform dblink_exec('fx', $$ delete from public.agencies where id = '021a0000-0000-4000-8000-0000000000f0' $$);
end
$fixture$;
select is(
  (select count(*)::int from dblink('fx', $$ select 1 from public.historical_sync_jobs
                                             where id = '021c0000-0000-4000-8000-0000000000f0' $$) as t(x int)),
  0, 'the committed skip-locked fixture is deleted again');
do $$ begin perform dblink_disconnect('fx'); end $$;

-- ── definition ──────────────────────────────────────────────────────────────────────
select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz)'::regprocedure),
  'claim_sync_jobs is security definer with an empty search_path');

select * from finish();
rollback;
