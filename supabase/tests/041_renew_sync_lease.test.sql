-- renew_sync_lease: the heartbeat a worker sends while it waits on Ultravox; only the holder
-- renews, and a renewed lease keeps other claimers out until its new expiry.
begin;
create extension if not exists pgtap with schema extensions;
select plan(13);

insert into public.agencies (id, name) values
  ('041a0000-0000-4000-8000-000000000001', 'Renew agency one'),
  ('041a0000-0000-4000-8000-000000000002', 'Renew agency two');
insert into public.historical_sync_jobs (id, agency_id, date_to, status, cursor, created_at, started_at) values
  ('041c0000-0000-4000-8000-000000000001', '041a0000-0000-4000-8000-000000000001', '1990-01-31Z', 'in_progress', 'c1', '1990-01-01Z', '1990-01-02Z'),
  ('041c0000-0000-4000-8000-000000000002', '041a0000-0000-4000-8000-000000000002', '1990-01-31Z', 'in_progress', 'c1', '1990-01-01Z', '1990-01-02Z');
-- H1 holds job 1 until 1990-01-02 00:02:00 with 2 failed attempts; job 2's lease is released.
insert into public.historical_sync_job_leases (job_id, holder, expires_at, failed_attempts) values
  ('041c0000-0000-4000-8000-000000000001', '041d0000-0000-4000-8000-000000000001', '1990-01-02T00:02:00Z', 2),
  ('041c0000-0000-4000-8000-000000000002', null, null, 0);

select is_empty(
  $$ select * from public.renew_sync_lease('041c0000-0000-4000-8000-000000000001',
                                           '041d0000-0000-4000-8000-000000000002', 120, '1990-01-02T00:01:00Z') $$,
  'H2 cannot renew the lease H1 holds');
select is(
  (select expires_at from public.historical_sync_job_leases where job_id = '041c0000-0000-4000-8000-000000000001'),
  '1990-01-02T00:02:00Z'::timestamptz, 'H1''s lease still expires at 00:02:00');
select results_eq(
  $$ select holder, expires_at, failed_attempts
       from public.renew_sync_lease('041c0000-0000-4000-8000-000000000001',
                                    '041d0000-0000-4000-8000-000000000001', 120, '1990-01-02T00:01:00Z') $$,
  $$ values ('041d0000-0000-4000-8000-000000000001'::uuid, '1990-01-02T00:03:00Z'::timestamptz, 2) $$,
  'H1 renews at 00:01:00 for 120 s: the lease runs to 00:03:00, failed_attempts untouched');
select is_empty(
  $$ select * from public.claim_sync_jobs('041d0000-0000-4000-8000-000000000002', 1, 60,
                                          '041c0000-0000-4000-8000-000000000001', '1990-01-02T00:02:01Z') $$,
  'one second past the old expiry the renewed lease keeps H2 out');
select is_empty(
  $$ select * from public.claim_sync_jobs('041d0000-0000-4000-8000-000000000002', 1, 60,
                                          '041c0000-0000-4000-8000-000000000001', '1990-01-02T00:03:00Z') $$,
  'at exactly the new expiry the lease is still live');
select is(
  (select count(*)::int from public.claim_sync_jobs('041d0000-0000-4000-8000-000000000002', 1, 60,
     '041c0000-0000-4000-8000-000000000001', '1990-01-02T00:03:01Z')),
  1, 'one second past the new expiry H2 takes the job over');
select is_empty(
  $$ select * from public.renew_sync_lease('041c0000-0000-4000-8000-000000000001',
                                           '041d0000-0000-4000-8000-000000000001', 120, '1990-01-02T00:03:02Z') $$,
  'after the takeover H1''s heartbeat returns no row');
select results_eq(
  $$ select holder, expires_at from public.historical_sync_job_leases
      where job_id = '041c0000-0000-4000-8000-000000000001' $$,
  $$ values ('041d0000-0000-4000-8000-000000000002'::uuid, '1990-01-02T00:04:01Z'::timestamptz) $$,
  'and leaves H2''s lease as the takeover set it');
select is_empty(
  $$ select * from public.renew_sync_lease('041c0000-0000-4000-8000-000000000002',
                                           '041d0000-0000-4000-8000-000000000001', 120, '1990-01-02T00:01:00Z') $$,
  'a released lease cannot be renewed');
select results_eq(
  $$ select holder, expires_at from public.historical_sync_job_leases
      where job_id = '041c0000-0000-4000-8000-000000000002' $$,
  $$ values (null::uuid, null::timestamptz) $$,
  'the released lease stays released');

select is(
  (select count(*)::int from public.cancel_sync_job('041c0000-0000-4000-8000-000000000001', '1990-01-02T00:03:30Z')),
  1, 'job 1 is cancelled while H2 holds it');
select is_empty(
  $$ select * from public.renew_sync_lease('041c0000-0000-4000-8000-000000000001',
                                           '041d0000-0000-4000-8000-000000000002', 120, '1990-01-02T00:03:40Z') $$,
  'H2 cannot renew the lease of the job cancelled under it');

select ok(
  (select prosecdef and proconfig = array['search_path=""'] from pg_proc
    where oid = 'public.renew_sync_lease(uuid, uuid, integer, timestamptz)'::regprocedure),
  'renew_sync_lease is security definer with an empty search_path');

select * from finish();
rollback;
