-- historical_sync_jobs exists exactly as docs/ARCHITECTURE.md §4 specifies it:
-- columns, types, defaults, nullability, constraints by name, indexes by name, comments.
begin;
create extension if not exists pgtap with schema extensions;
select plan(123);

-- ── table and columns ───────────────────────────────────────────────────────────────
select has_table('public', 'historical_sync_jobs', 'historical_sync_jobs exists');
select columns_are('public', 'historical_sync_jobs', array[
  'id', 'agency_id', 'date_from', 'date_to', 'status', 'total_calls', 'processed_calls',
  'imported_calls', 'skipped_calls', 'failed_calls', 'cursor', 'error_message', 'last_error_at',
  'max_calls', 'created_at', 'started_at', 'completed_at', 'last_activity_at'
], 'historical_sync_jobs has exactly the 18 seed columns and no other');

select enum_has_labels('public', 'sync_job_status',
  array['pending', 'in_progress', 'completed', 'failed', 'cancelled'],
  'sync_job_status has the labels pending, in_progress, completed, failed, cancelled in that order');

-- id
select col_type_is('public', 'historical_sync_jobs', 'id', 'uuid', 'id is uuid');
select col_default_is('public', 'historical_sync_jobs', 'id', 'uuid_generate_v4()', 'id defaults to uuid_generate_v4()');
select is(
  (select p.pronamespace::regnamespace::text || '.' || p.proname
     from pg_attrdef d
     join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
     join pg_depend dep on dep.classid = 'pg_attrdef'::regclass and dep.objid = d.oid
                        and dep.refclassid = 'pg_proc'::regclass
     join pg_proc p on p.oid = dep.refobjid
    where d.adrelid = 'public.historical_sync_jobs'::regclass and a.attname = 'id'),
  'extensions.uuid_generate_v4',
  'the id default calls extensions.uuid_generate_v4 (uuid-ossp in the extensions schema)');
select col_not_null('public', 'historical_sync_jobs', 'id', 'id is not null');
-- agency_id
select col_type_is('public', 'historical_sync_jobs', 'agency_id', 'uuid', 'agency_id is uuid');
select col_hasnt_default('public', 'historical_sync_jobs', 'agency_id', 'agency_id has no default');
select col_not_null('public', 'historical_sync_jobs', 'agency_id', 'agency_id is not null');
-- date_from
select col_type_is('public', 'historical_sync_jobs', 'date_from', 'timestamp with time zone', 'date_from is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'date_from', 'date_from has no default');
select col_is_null('public', 'historical_sync_jobs', 'date_from', 'date_from is nullable');
-- date_to
select col_type_is('public', 'historical_sync_jobs', 'date_to', 'timestamp with time zone', 'date_to is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'date_to', 'date_to has no default');
select col_not_null('public', 'historical_sync_jobs', 'date_to', 'date_to is not null');
-- status
select col_type_is('public', 'historical_sync_jobs', 'status', 'sync_job_status', 'status is sync_job_status');
select col_default_is('public', 'historical_sync_jobs', 'status', 'pending'::text, 'status defaults to ''pending''::sync_job_status');
select col_not_null('public', 'historical_sync_jobs', 'status', 'status is not null');
-- total_calls
select col_type_is('public', 'historical_sync_jobs', 'total_calls', 'integer', 'total_calls is integer');
select col_hasnt_default('public', 'historical_sync_jobs', 'total_calls', 'total_calls has no default');
select col_is_null('public', 'historical_sync_jobs', 'total_calls', 'total_calls is nullable');
-- processed_calls
select col_type_is('public', 'historical_sync_jobs', 'processed_calls', 'integer', 'processed_calls is integer');
select col_default_is('public', 'historical_sync_jobs', 'processed_calls', 0, 'processed_calls defaults to 0');
select col_not_null('public', 'historical_sync_jobs', 'processed_calls', 'processed_calls is not null');
-- imported_calls
select col_type_is('public', 'historical_sync_jobs', 'imported_calls', 'integer', 'imported_calls is integer');
select col_default_is('public', 'historical_sync_jobs', 'imported_calls', 0, 'imported_calls defaults to 0');
select col_not_null('public', 'historical_sync_jobs', 'imported_calls', 'imported_calls is not null');
-- skipped_calls
select col_type_is('public', 'historical_sync_jobs', 'skipped_calls', 'integer', 'skipped_calls is integer');
select col_default_is('public', 'historical_sync_jobs', 'skipped_calls', 0, 'skipped_calls defaults to 0');
select col_not_null('public', 'historical_sync_jobs', 'skipped_calls', 'skipped_calls is not null');
-- failed_calls
select col_type_is('public', 'historical_sync_jobs', 'failed_calls', 'integer', 'failed_calls is integer');
select col_default_is('public', 'historical_sync_jobs', 'failed_calls', 0, 'failed_calls defaults to 0');
select col_not_null('public', 'historical_sync_jobs', 'failed_calls', 'failed_calls is not null');
-- cursor
select col_type_is('public', 'historical_sync_jobs', 'cursor', 'text', 'cursor is text');
select col_hasnt_default('public', 'historical_sync_jobs', 'cursor', 'cursor has no default');
select col_is_null('public', 'historical_sync_jobs', 'cursor', 'cursor is nullable');
-- error_message
select col_type_is('public', 'historical_sync_jobs', 'error_message', 'text', 'error_message is text');
select col_hasnt_default('public', 'historical_sync_jobs', 'error_message', 'error_message has no default');
select col_is_null('public', 'historical_sync_jobs', 'error_message', 'error_message is nullable');
-- last_error_at
select col_type_is('public', 'historical_sync_jobs', 'last_error_at', 'timestamp with time zone', 'last_error_at is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'last_error_at', 'last_error_at has no default');
select col_is_null('public', 'historical_sync_jobs', 'last_error_at', 'last_error_at is nullable');
-- max_calls
select col_type_is('public', 'historical_sync_jobs', 'max_calls', 'integer', 'max_calls is integer');
select col_default_is('public', 'historical_sync_jobs', 'max_calls', 100, 'max_calls defaults to 100');
select col_is_null('public', 'historical_sync_jobs', 'max_calls', 'max_calls is nullable (null = no cap)');
-- created_at
select col_type_is('public', 'historical_sync_jobs', 'created_at', 'timestamp with time zone', 'created_at is timestamptz');
select col_default_is('public', 'historical_sync_jobs', 'created_at', 'now()', 'created_at defaults to now()');
select col_not_null('public', 'historical_sync_jobs', 'created_at', 'created_at is not null');
-- started_at
select col_type_is('public', 'historical_sync_jobs', 'started_at', 'timestamp with time zone', 'started_at is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'started_at', 'started_at has no default');
select col_is_null('public', 'historical_sync_jobs', 'started_at', 'started_at is nullable');
-- completed_at
select col_type_is('public', 'historical_sync_jobs', 'completed_at', 'timestamp with time zone', 'completed_at is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'completed_at', 'completed_at has no default');
select col_is_null('public', 'historical_sync_jobs', 'completed_at', 'completed_at is nullable');
-- last_activity_at
select col_type_is('public', 'historical_sync_jobs', 'last_activity_at', 'timestamp with time zone', 'last_activity_at is timestamptz');
select col_hasnt_default('public', 'historical_sync_jobs', 'last_activity_at', 'last_activity_at has no default');
select col_is_null('public', 'historical_sync_jobs', 'last_activity_at', 'last_activity_at is nullable');

-- ── a minimal insert takes every default ─────────────────────────────────────────────
insert into public.agencies (id, name) values
  ('000a0000-0000-4000-8000-000000000001', 'Schema test agency one'),
  ('000a0000-0000-4000-8000-000000000002', 'Schema test agency two');
insert into public.historical_sync_jobs (agency_id, date_to)
values ('000a0000-0000-4000-8000-000000000001', '2026-01-31T23:59:59.999999Z');

select results_eq(
  $$ select status::text, total_calls, processed_calls, imported_calls, skipped_calls, failed_calls,
            cursor, max_calls, created_at = now(), started_at, completed_at, last_activity_at,
            substr(id::text, 15, 1)
       from public.historical_sync_jobs
      where agency_id = '000a0000-0000-4000-8000-000000000001' $$,
  $$ values ('pending', null::int, 0, 0, 0, 0, null::text, 100, true,
             null::timestamptz, null::timestamptz, null::timestamptz, '4') $$,
  'a job inserted with only agency_id and date_to is pending, counts 0, max_calls 100, created now, with a version-4 id');

-- ── constraints, by their seed names ─────────────────────────────────────────────────
select is(
  (select array_agg(conname::text order by conname) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass),
  array['historical_sync_jobs_agency_id_fkey', 'historical_sync_jobs_pkey',
        'sync_jobs_completed_at_iff_finished', 'sync_jobs_counts_positive', 'sync_jobs_date_range',
        'sync_jobs_max_calls_positive', 'sync_jobs_processed_is_sum'],
  'historical_sync_jobs has the four seed constraints, sync_jobs_max_calls_positive and the two named invariants');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'historical_sync_jobs_pkey'),
  'PRIMARY KEY (id)',
  'historical_sync_jobs_pkey is the primary key on id');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'historical_sync_jobs_agency_id_fkey'),
  'FOREIGN KEY (agency_id) REFERENCES agencies(id) ON DELETE CASCADE',
  'historical_sync_jobs_agency_id_fkey references agencies(id) on delete cascade');
select is(
  (select confdeltype::text from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'historical_sync_jobs_agency_id_fkey'),
  'c',
  'historical_sync_jobs_agency_id_fkey deletes with action cascade (confdeltype c)');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'sync_jobs_counts_positive'),
  'CHECK (((processed_calls >= 0) AND (imported_calls >= 0) AND (skipped_calls >= 0) AND (failed_calls >= 0)))',
  'sync_jobs_counts_positive checks all four counters are >= 0');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'sync_jobs_date_range'),
  'CHECK (((date_from IS NULL) OR (date_from < date_to)))',
  'sync_jobs_date_range checks date_from is null or before date_to');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'sync_jobs_processed_is_sum'),
  'CHECK ((processed_calls = ((imported_calls + skipped_calls) + failed_calls)))',
  'sync_jobs_processed_is_sum checks processed = imported + skipped + failed');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.historical_sync_jobs'::regclass and conname = 'sync_jobs_completed_at_iff_finished'),
  'CHECK (((completed_at IS NOT NULL) = (status = ANY (ARRAY[''completed''::sync_job_status, ''failed''::sync_job_status, ''cancelled''::sync_job_status]))))',
  'sync_jobs_completed_at_iff_finished checks completed_at is set exactly for completed, failed and cancelled jobs');
select col_is_pk('public', 'historical_sync_jobs', 'id', 'id is the primary key');
select fk_ok('public', 'historical_sync_jobs', 'agency_id', 'public', 'agencies', 'id',
  'agency_id references agencies.id');

-- Each constraint refuses the row that violates it, under its own name. Finished rows carry
-- completed_at and the counters add up (the named invariants of 20261201000100), except where
-- the check under test needs otherwise: processed_calls = -1 cannot add up with the other three
-- at 0 or more, and PostgreSQL tests checks in name order, so sync_jobs_counts_positive is the
-- one named before sync_jobs_processed_is_sum.
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status, completed_at, processed_calls)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'completed', '2026-02-01Z', -1) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_counts_positive"',
  'processed_calls = -1 violates sync_jobs_counts_positive');
select throws_ok(
  $$ insert into public.historical_sync_jobs
       (agency_id, date_to, status, completed_at, processed_calls, imported_calls, skipped_calls)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'completed', '2026-02-01Z', 0, -1, 1) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_counts_positive"',
  'imported_calls = -1 violates sync_jobs_counts_positive');
select throws_ok(
  $$ insert into public.historical_sync_jobs
       (agency_id, date_to, status, completed_at, processed_calls, imported_calls, skipped_calls)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'completed', '2026-02-01Z', 0, 1, -1) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_counts_positive"',
  'skipped_calls = -1 violates sync_jobs_counts_positive');
select throws_ok(
  $$ insert into public.historical_sync_jobs
       (agency_id, date_to, status, completed_at, processed_calls, imported_calls, failed_calls)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'completed', '2026-02-01Z', 0, 1, -1) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_counts_positive"',
  'failed_calls = -1 violates sync_jobs_counts_positive');
select lives_ok(
  $$ update public.historical_sync_jobs
        set processed_calls = 0, imported_calls = 0, skipped_calls = 0, failed_calls = 0
      where agency_id = '000a0000-0000-4000-8000-000000000001' $$,
  'all four counters at exactly 0 satisfy sync_jobs_counts_positive');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_from, date_to, status, completed_at)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31T12:00:00Z', '2026-01-31T12:00:00Z', 'completed', '2026-02-01Z') $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_date_range"',
  'date_from equal to date_to violates sync_jobs_date_range');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_from, date_to, status, completed_at)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31T12:00:00.000001Z', '2026-01-31T12:00:00Z', 'completed', '2026-02-01Z') $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_date_range"',
  'date_from one microsecond after date_to violates sync_jobs_date_range');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status, completed_at, max_calls)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31T12:00:00Z', 'completed', '2026-02-01Z', 0) $$,
  '23514', 'new row for relation "historical_sync_jobs" violates check constraint "sync_jobs_max_calls_positive"',
  'max_calls 0 violates sync_jobs_max_calls_positive');
select lives_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_from, date_to, status, completed_at)
     values ('000a0000-0000-4000-8000-000000000002', '2026-01-31T11:59:59.999999Z', '2026-01-31T12:00:00Z', 'completed', '2026-02-01Z') $$,
  'date_from one microsecond before date_to satisfies sync_jobs_date_range');
select lives_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_from, date_to, status, completed_at)
     values ('000a0000-0000-4000-8000-000000000002', null, '2026-01-31T12:00:00Z', 'completed', '2026-02-01Z') $$,
  'a null date_from (beginning of time) satisfies sync_jobs_date_range');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to)
     values ('000a0000-0000-4000-8000-0000000000ff', '2026-01-31Z') $$,
  '23503', 'insert or update on table "historical_sync_jobs" violates foreign key constraint "historical_sync_jobs_agency_id_fkey"',
  'a job of a missing agency violates historical_sync_jobs_agency_id_fkey');
select throws_ok(
  $$ insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at)
     select id, '000a0000-0000-4000-8000-000000000002', '2026-01-31Z', 'completed', '2026-02-01Z'
       from public.historical_sync_jobs where agency_id = '000a0000-0000-4000-8000-000000000001' $$,
  '23505', 'duplicate key value violates unique constraint "historical_sync_jobs_pkey"',
  'a second job with an existing id violates historical_sync_jobs_pkey');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to)
     values ('000a0000-0000-4000-8000-000000000002', null) $$,
  '23502', 'null value in column "date_to" of relation "historical_sync_jobs" violates not-null constraint',
  'a job without date_to violates the not-null constraint on date_to');

-- ── ON DELETE CASCADE from agencies ──────────────────────────────────────────────────
insert into public.agencies (id, name) values ('000a0000-0000-4000-8000-000000000003', 'Doomed agency');
insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at) values
  ('000c0000-0000-4000-8000-000000000031', '000a0000-0000-4000-8000-000000000003', '2026-01-31Z', 'completed', '2026-02-01Z'),
  ('000c0000-0000-4000-8000-000000000032', '000a0000-0000-4000-8000-000000000003', '2026-02-28Z', 'pending', null);
select is(
  (select count(*)::int from public.historical_sync_jobs where agency_id = '000a0000-0000-4000-8000-000000000003'),
  2, 'the doomed agency has 2 jobs before it is deleted');
delete from public.agencies where id = '000a0000-0000-4000-8000-000000000003';
select is(
  (select count(*)::int from public.historical_sync_jobs
    where id in ('000c0000-0000-4000-8000-000000000031', '000c0000-0000-4000-8000-000000000032')),
  0, 'deleting an agency deletes its 2 jobs (on delete cascade)');

-- ── indexes ──────────────────────────────────────────────────────────────────────────
select indexes_are('public', 'historical_sync_jobs', array[
  'historical_sync_jobs_pkey', 'idx_sync_jobs_agency', 'idx_sync_jobs_status',
  'idx_sync_jobs_active', 'idx_sync_jobs_created', 'uq_sync_jobs_one_active_per_agency'
], 'historical_sync_jobs has the four seed indexes, its primary key and the one-active-job index, no other');
select has_index('public', 'historical_sync_jobs', 'idx_sync_jobs_agency', array['agency_id'],
  'idx_sync_jobs_agency is on (agency_id)');
select has_index('public', 'historical_sync_jobs', 'idx_sync_jobs_status', array['status'],
  'idx_sync_jobs_status is on (status)');
select has_index('public', 'historical_sync_jobs', 'idx_sync_jobs_active', array['agency_id', 'status'],
  'idx_sync_jobs_active is on (agency_id, status)');
select has_index('public', 'historical_sync_jobs', 'idx_sync_jobs_created', array['created_at'],
  'idx_sync_jobs_created is on (created_at)');
select has_index('public', 'historical_sync_jobs', 'uq_sync_jobs_one_active_per_agency', array['agency_id'],
  'uq_sync_jobs_one_active_per_agency is on (agency_id)');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_sync_jobs_agency'),
  'CREATE INDEX idx_sync_jobs_agency ON public.historical_sync_jobs USING btree (agency_id)',
  'idx_sync_jobs_agency is a plain btree on agency_id');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_sync_jobs_status'),
  'CREATE INDEX idx_sync_jobs_status ON public.historical_sync_jobs USING btree (status)',
  'idx_sync_jobs_status is a plain btree on status');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_sync_jobs_active'),
  'CREATE INDEX idx_sync_jobs_active ON public.historical_sync_jobs USING btree (agency_id, status) WHERE (status = ANY (ARRAY[''pending''::sync_job_status, ''in_progress''::sync_job_status]))',
  'idx_sync_jobs_active is filtered to status in (pending, in_progress)');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_sync_jobs_created'),
  'CREATE INDEX idx_sync_jobs_created ON public.historical_sync_jobs USING btree (created_at DESC)',
  'idx_sync_jobs_created orders created_at DESC');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'uq_sync_jobs_one_active_per_agency'),
  'CREATE UNIQUE INDEX uq_sync_jobs_one_active_per_agency ON public.historical_sync_jobs USING btree (agency_id) WHERE (status = ANY (ARRAY[''pending''::sync_job_status, ''in_progress''::sync_job_status]))',
  'uq_sync_jobs_one_active_per_agency is unique on agency_id over pending and in_progress jobs');
select index_is_unique('public', 'historical_sync_jobs', 'uq_sync_jobs_one_active_per_agency',
  'uq_sync_jobs_one_active_per_agency is unique');
select is(
  (select count(*)::int from pg_index
    where indrelid = 'public.historical_sync_jobs'::regclass and indisunique
      and indexrelid::regclass::text in ('idx_sync_jobs_agency', 'idx_sync_jobs_status', 'idx_sync_jobs_active', 'idx_sync_jobs_created')),
  0, 'none of the four seed indexes is unique');

-- ── one active job per agency ───────────────────────────────────────────────────────
insert into public.agencies (id, name) values ('000a0000-0000-4000-8000-000000000004', 'One active job agency');
insert into public.historical_sync_jobs (id, agency_id, date_to, status) values
  ('000c0000-0000-4000-8000-000000000041', '000a0000-0000-4000-8000-000000000004', '2026-01-31Z', 'pending');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status)
     values ('000a0000-0000-4000-8000-000000000004', '2026-02-28Z', 'pending') $$,
  '23505', 'duplicate key value violates unique constraint "uq_sync_jobs_one_active_per_agency"',
  'a second pending job beside a pending one violates uq_sync_jobs_one_active_per_agency');
select throws_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status)
     values ('000a0000-0000-4000-8000-000000000004', '2026-02-28Z', 'in_progress') $$,
  '23505', 'duplicate key value violates unique constraint "uq_sync_jobs_one_active_per_agency"',
  'an in_progress job beside a pending one violates uq_sync_jobs_one_active_per_agency');
select lives_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status, completed_at) values
       ('000a0000-0000-4000-8000-000000000004', '2026-02-28Z', 'completed', '2026-03-01Z'),
       ('000a0000-0000-4000-8000-000000000004', '2026-03-31Z', 'completed', '2026-04-01Z'),
       ('000a0000-0000-4000-8000-000000000004', '2026-04-30Z', 'failed', '2026-05-01Z'),
       ('000a0000-0000-4000-8000-000000000004', '2026-05-31Z', 'cancelled', '2026-06-01Z') $$,
  'completed, failed and cancelled jobs sit beside an active one');
select lives_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status)
     values ('000a0000-0000-4000-8000-000000000002', '2026-02-28Z', 'in_progress') $$,
  'another agency may have its own active job at the same time');
update public.historical_sync_jobs set status = 'completed', completed_at = '2026-02-01Z'
 where id = '000c0000-0000-4000-8000-000000000041';
select lives_ok(
  $$ insert into public.historical_sync_jobs (agency_id, date_to, status)
     values ('000a0000-0000-4000-8000-000000000004', '2026-06-30Z', 'pending') $$,
  'once the active job completes, the agency may start a new one');
select throws_ok(
  $$ update public.historical_sync_jobs set status = 'in_progress', completed_at = null
      where id = '000c0000-0000-4000-8000-000000000041' $$,
  '23505', 'duplicate key value violates unique constraint "uq_sync_jobs_one_active_per_agency"',
  'reactivating a finished job beside an active one violates uq_sync_jobs_one_active_per_agency');

-- ── realtime ─────────────────────────────────────────────────────────────────────────
select ok(
  exists (select 1 from pg_publication_tables
           where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = 'historical_sync_jobs'),
  'historical_sync_jobs is in the supabase_realtime publication');

-- ── comments, as the seed describes them ─────────────────────────────────────────────
select is(obj_description('public.historical_sync_jobs'::regclass, 'pg_class'),
  'Tracks historical call data import jobs. Each job fetches past calls from Ultravox for a specified date range and imports them into the calls table.',
  'the table comment is the seed description');
select is(col_description('public.historical_sync_jobs'::regclass, a.attnum), d.descr,
          format('the comment on %s is %L', d.col, d.descr))
  from (values
    ('id', 'Primary key'),
    ('agency_id', 'FK → agencies.id'),
    ('date_from', 'Start of date range (null = beginning of time)'),
    ('date_to', 'End of date range'),
    ('status', 'Job status'),
    ('total_calls', 'Total calls found in Ultravox'),
    ('processed_calls', 'Calls processed so far'),
    ('imported_calls', 'Calls successfully imported'),
    ('skipped_calls', 'Calls skipped (already exist)'),
    ('failed_calls', 'Calls that failed to import'),
    ('cursor', 'Pagination cursor for resuming'),
    ('error_message', 'Last error message'),
    ('last_error_at', 'When the last error occurred'),
    ('max_calls', 'Maximum calls to import per job'),
    ('created_at', 'Record creation timestamp'),
    ('started_at', 'When processing began'),
    ('completed_at', 'When processing finished'),
    ('last_activity_at', 'Last processing activity timestamp')
  ) as d(col, descr)
  left join pg_attribute a
    on a.attrelid = 'public.historical_sync_jobs'::regclass and a.attname = d.col
 order by d.col;

select * from finish();
rollback;
