-- historical_sync_job_leases: the engine state beside the seed table (docs/ARCHITECTURE.md §4), one row per job.
begin;
create extension if not exists pgtap with schema extensions;
select plan(55);

select columns_are('public', 'historical_sync_job_leases',
  array['job_id', 'holder', 'expires_at', 'failed_attempts', 'not_before', 'oldest_counted_at',
        'oldest_counted_ids', 'refreshed_calls', 'unreadable_calls', 'unreadable_fields',
        'latest_failure', 'last_problem', 'trigger', 'catch_up', 'phase', 'deleted_cursor',
        'deleted_marked', 'sliced'],
  'historical_sync_job_leases has exactly job_id, holder, expires_at, failed_attempts, the 13 engine-state columns of 20261201000200 and sliced (20261201000600)');
select col_type_is('public', 'historical_sync_job_leases', 'job_id', 'uuid', 'job_id is uuid');
select col_is_pk('public', 'historical_sync_job_leases', 'job_id', 'job_id is the primary key: one lease row per job');
select col_type_is('public', 'historical_sync_job_leases', 'holder', 'uuid', 'holder is uuid');
select col_is_null('public', 'historical_sync_job_leases', 'holder', 'holder is nullable (null = released)');
select col_type_is('public', 'historical_sync_job_leases', 'expires_at', 'timestamp with time zone', 'expires_at is timestamptz');
select col_is_null('public', 'historical_sync_job_leases', 'expires_at', 'expires_at is nullable (null = released)');
select col_type_is('public', 'historical_sync_job_leases', 'failed_attempts', 'integer', 'failed_attempts is integer');
select col_not_null('public', 'historical_sync_job_leases', 'failed_attempts', 'failed_attempts is not null');
select col_default_is('public', 'historical_sync_job_leases', 'failed_attempts', 0, 'failed_attempts defaults to 0');
-- the engine-state columns of 20261201000200
select col_type_is('public', 'historical_sync_job_leases', 'not_before', 'timestamp with time zone', 'not_before is timestamptz');
select col_is_null('public', 'historical_sync_job_leases', 'not_before', 'not_before is nullable (null = no Retry-After pending)');
select col_hasnt_default('public', 'historical_sync_job_leases', 'not_before', 'not_before has no default');
select col_type_is('public', 'historical_sync_job_leases', 'oldest_counted_at', 'timestamp with time zone', 'oldest_counted_at is timestamptz');
select col_is_null('public', 'historical_sync_job_leases', 'oldest_counted_at', 'oldest_counted_at is nullable (null = nothing counted yet)');
select col_hasnt_default('public', 'historical_sync_job_leases', 'oldest_counted_at', 'oldest_counted_at has no default');
select col_type_is('public', 'historical_sync_job_leases', 'oldest_counted_ids', 'uuid[]', 'oldest_counted_ids is uuid[]');
select col_not_null('public', 'historical_sync_job_leases', 'oldest_counted_ids', 'oldest_counted_ids is not null');
select col_default_is('public', 'historical_sync_job_leases', 'oldest_counted_ids', '{}', 'oldest_counted_ids defaults to the empty array');
select col_type_is('public', 'historical_sync_job_leases', 'refreshed_calls', 'integer', 'refreshed_calls is integer');
select col_not_null('public', 'historical_sync_job_leases', 'refreshed_calls', 'refreshed_calls is not null');
select col_default_is('public', 'historical_sync_job_leases', 'refreshed_calls', 0, 'refreshed_calls defaults to 0');
select col_type_is('public', 'historical_sync_job_leases', 'unreadable_calls', 'integer', 'unreadable_calls is integer');
select col_not_null('public', 'historical_sync_job_leases', 'unreadable_calls', 'unreadable_calls is not null');
select col_default_is('public', 'historical_sync_job_leases', 'unreadable_calls', 0, 'unreadable_calls defaults to 0');
select col_type_is('public', 'historical_sync_job_leases', 'unreadable_fields', 'text[]', 'unreadable_fields is text[]');
select col_not_null('public', 'historical_sync_job_leases', 'unreadable_fields', 'unreadable_fields is not null');
select col_default_is('public', 'historical_sync_job_leases', 'unreadable_fields', '{}', 'unreadable_fields defaults to the empty array');
select col_type_is('public', 'historical_sync_job_leases', 'latest_failure', 'text', 'latest_failure is text');
select col_is_null('public', 'historical_sync_job_leases', 'latest_failure', 'latest_failure is nullable (null = no call failed)');
select col_hasnt_default('public', 'historical_sync_job_leases', 'latest_failure', 'latest_failure has no default');
select col_type_is('public', 'historical_sync_job_leases', 'last_problem', 'text', 'last_problem is text');
select col_is_null('public', 'historical_sync_job_leases', 'last_problem', 'last_problem is nullable (null = no problem since the last page)');
select col_hasnt_default('public', 'historical_sync_job_leases', 'last_problem', 'last_problem has no default');
select col_type_is('public', 'historical_sync_job_leases', 'trigger', 'text', 'trigger is text');
select col_not_null('public', 'historical_sync_job_leases', 'trigger', 'trigger is not null');
select col_default_is('public', 'historical_sync_job_leases', 'trigger', 'user', 'trigger defaults to ''user''');
select results_eq(
  $$ select conname::text collate "default", pg_get_constraintdef(oid) from pg_constraint
      where conrelid = 'public.historical_sync_job_leases'::regclass order by conname $$,
  $$ values
       ('historical_sync_job_leases_job_id_fkey',
        'FOREIGN KEY (job_id) REFERENCES historical_sync_jobs(id) ON DELETE CASCADE'),
       ('historical_sync_job_leases_pkey', 'PRIMARY KEY (job_id)'),
       ('sync_job_leases_attempts_positive', 'CHECK ((failed_attempts >= 0))'),
       ('sync_job_leases_deleted_marked_positive', 'CHECK ((deleted_marked >= 0))'),
       ('sync_job_leases_holder_has_expiry', 'CHECK (((holder IS NULL) = (expires_at IS NULL)))'),
       ('sync_job_leases_phase_needs_catch_up', 'CHECK (((phase = ''calls''::text) OR catch_up))'),
       ('sync_job_leases_phase_valid', 'CHECK ((phase = ANY (ARRAY[''calls''::text, ''deleted_calls''::text])))'),
       ('sync_job_leases_refreshed_positive', 'CHECK ((refreshed_calls >= 0))'),
       ('sync_job_leases_sliced_not_catch_up', 'CHECK ((NOT (sliced AND catch_up)))'),
       ('sync_job_leases_trigger_valid', 'CHECK ((trigger = ANY (ARRAY[''user''::text, ''schedule''::text])))'),
       ('sync_job_leases_unreadable_positive', 'CHECK ((unreadable_calls >= 0))') $$,
  'the lease table has its pk, the cascading fk to the job, and the nine named checks, no other');
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
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, refreshed_calls)
     values ('003c0000-0000-4000-8000-000000000001', -1) $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_refreshed_positive"',
  'refreshed_calls = -1 violates sync_job_leases_refreshed_positive');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, unreadable_calls)
     values ('003c0000-0000-4000-8000-000000000001', -1) $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_unreadable_positive"',
  'unreadable_calls = -1 violates sync_job_leases_unreadable_positive');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, trigger)
     values ('003c0000-0000-4000-8000-000000000001', 'cron') $$,
  '23514', 'new row for relation "historical_sync_job_leases" violates check constraint "sync_job_leases_trigger_valid"',
  'trigger ''cron'' violates sync_job_leases_trigger_valid');
select throws_ok(
  $$ insert into public.historical_sync_job_leases (job_id, trigger)
     values ('003c0000-0000-4000-8000-000000000001', null) $$,
  '23502', 'null value in column "trigger" of relation "historical_sync_job_leases" violates not-null constraint',
  'a null trigger violates the not-null constraint on trigger');
select lives_ok(
  $$ insert into public.historical_sync_job_leases (job_id) values ('003c0000-0000-4000-8000-000000000001') $$,
  'a released lease row (no holder, no expiry) is valid');
select results_eq(
  $$ select holder, expires_at, failed_attempts, not_before, oldest_counted_at, oldest_counted_ids,
            refreshed_calls, unreadable_calls, unreadable_fields, latest_failure, last_problem, trigger
       from public.historical_sync_job_leases
      where job_id = '003c0000-0000-4000-8000-000000000001' $$,
  $$ values (null::uuid, null::timestamptz, 0, null::timestamptz, null::timestamptz, '{}'::uuid[],
             0, 0, '{}'::text[], null::text, null::text, 'user') $$,
  'a lease row inserted with only job_id is released with 0 failed attempts, no Retry-After, no mark, 0 refreshed, 0 unreadable, no failure or problem, trigger user');
select lives_ok(
  $$ update public.historical_sync_job_leases set trigger = 'schedule'
      where job_id = '003c0000-0000-4000-8000-000000000001' $$,
  'trigger ''schedule'' satisfies sync_job_leases_trigger_valid');
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
select is_empty(
  $$ select a.attname from pg_attribute a
      where a.attrelid = 'public.historical_sync_job_leases'::regclass
        and a.attname in ('not_before', 'oldest_counted_at', 'oldest_counted_ids', 'refreshed_calls',
                          'unreadable_calls', 'unreadable_fields', 'latest_failure', 'last_problem', 'trigger')
        and col_description(a.attrelid, a.attnum) is null $$,
  'each of the 9 engine-state columns carries a comment');

select * from finish();
rollback;
