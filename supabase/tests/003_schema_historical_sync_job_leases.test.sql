-- historical_sync_job_leases: the engine state beside the seed table (DESIGN §4), one row per job.
begin;
create extension if not exists pgtap with schema extensions;
select plan(22);

select columns_are('public', 'historical_sync_job_leases',
  array['job_id', 'holder', 'expires_at', 'failed_attempts'],
  'historical_sync_job_leases has exactly job_id, holder, expires_at, failed_attempts');
select col_type_is('public', 'historical_sync_job_leases', 'job_id', 'uuid', 'job_id is uuid');
select col_is_pk('public', 'historical_sync_job_leases', 'job_id', 'job_id is the primary key: one lease row per job');
select col_type_is('public', 'historical_sync_job_leases', 'holder', 'uuid', 'holder is uuid');
select col_is_null('public', 'historical_sync_job_leases', 'holder', 'holder is nullable (null = released)');
select col_type_is('public', 'historical_sync_job_leases', 'expires_at', 'timestamp with time zone', 'expires_at is timestamptz');
select col_is_null('public', 'historical_sync_job_leases', 'expires_at', 'expires_at is nullable (null = released)');
select col_type_is('public', 'historical_sync_job_leases', 'failed_attempts', 'integer', 'failed_attempts is integer');
select col_not_null('public', 'historical_sync_job_leases', 'failed_attempts', 'failed_attempts is not null');
select col_default_is('public', 'historical_sync_job_leases', 'failed_attempts', 0, 'failed_attempts defaults to 0');
select results_eq(
  $$ select conname::text collate "default", pg_get_constraintdef(oid) from pg_constraint
      where conrelid = 'public.historical_sync_job_leases'::regclass order by conname $$,
  $$ values
       ('historical_sync_job_leases_job_id_fkey',
        'FOREIGN KEY (job_id) REFERENCES historical_sync_jobs(id) ON DELETE CASCADE'),
       ('historical_sync_job_leases_pkey', 'PRIMARY KEY (job_id)'),
       ('sync_job_leases_attempts_positive', 'CHECK ((failed_attempts >= 0))'),
       ('sync_job_leases_holder_has_expiry', 'CHECK (((holder IS NULL) = (expires_at IS NULL)))') $$,
  'the lease table has its pk, the cascading fk to the job, and the two named checks, no other');
select is(
  (select count(*)::int from pg_attribute
    where attrelid = 'public.historical_sync_jobs'::regclass and attnum > 0 and not attisdropped),
  18, 'the seed table keeps its 18 columns: the lease lives beside it');

insert into public.agencies (id, name) values ('003a0000-0000-4000-8000-000000000001', 'Lease schema agency');
insert into public.historical_sync_jobs (id, agency_id, date_to) values
  ('003c0000-0000-4000-8000-000000000001', '003a0000-0000-4000-8000-000000000001', '2026-01-31Z');

select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, holder, expires_at)
     values ('003c0000-0000-4000-8000-000000000001', '003d0000-0000-4000-8000-000000000001', null) $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_holder_has_expiry"',
  'a holder without an expiry violates sync_job_leases_holder_has_expiry');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, holder, expires_at)
     values ('003c0000-0000-4000-8000-000000000001', null, '2026-01-01Z') $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_holder_has_expiry"',
  'an expiry without a holder violates sync_job_leases_holder_has_expiry');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, failed_attempts)
     values ('003c0000-0000-4000-8000-000000000001', -1) $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_attempts_positive"',
  'failed_attempts = -1 violates sync_job_leases_attempts_positive');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id) values ('003c0000-0000-4000-8000-0000000000ff') $$,
  '23503', 'insert or update on table "historical_sync_job_leases" violates foreign key constraint "historical_sync_job_leases_job_id_fkey"',
  'a lease of a missing job violates historical_sync_job_leases_job_id_fkey');
select lives_ok(
  $$ insert into public.historical_sync_job_leases (job_id) values ('003c0000-0000-4000-8000-000000000001') $$,
  'a released lease row (no holder, no expiry) is valid');
select results_eq(
  $$ select holder, expires_at, failed_attempts from public.historical_sync_job_leases
      where job_id = '003c0000-0000-4000-8000-000000000001' $$,
  $$ values (null::uuid, null::timestamptz, 0) $$,
  'a lease row inserted with only job_id is released with 0 failed attempts');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, holder, expires_at)
     values ('003c0000-0000-4000-8000-000000000001', '003d0000-0000-4000-8000-000000000001', '2026-01-01Z') $$,
  '23505', 'duplicate key value violates unique constraint "historical_sync_job_leases_pkey"',
  'a second lease row for the same job violates historical_sync_job_leases_pkey');
select lives_ok(
  $$ update public.historical_sync_job_leases
        set holder = '003d0000-0000-4000-8000-000000000001', expires_at = '2026-01-01Z', failed_attempts = 0
      where job_id = '003c0000-0000-4000-8000-000000000001' $$,
  'a holder with an expiry and 0 failed attempts is valid');
delete from public.historical_sync_jobs where id = '003c0000-0000-4000-8000-000000000001';
select is(
  (select count(*)::int from public.historical_sync_job_leases where job_id = '003c0000-0000-4000-8000-000000000001'),
  0, 'deleting a job deletes its lease (on delete cascade)');
select isnt(obj_description('public.historical_sync_job_leases'::regclass, 'pg_class'), null,
  'the lease table carries a comment saying why it exists');

select * from finish();
rollback;
