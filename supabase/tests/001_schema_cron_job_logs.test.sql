-- cron_job_logs exists exactly as docs/ARCHITECTURE.md §4 specifies it.
begin;
create extension if not exists pgtap with schema extensions;
select plan(47);

select has_table('public', 'cron_job_logs', 'cron_job_logs exists');
select columns_are('public', 'cron_job_logs', array[
  'id', 'job_name', 'started_at', 'completed_at', 'status', 'result', 'error_message', 'created_at'
], 'cron_job_logs has exactly the 8 seed columns and no other');

-- id
select col_type_is('public', 'cron_job_logs', 'id', 'uuid', 'id is uuid');
select col_default_is('public', 'cron_job_logs', 'id', 'gen_random_uuid()', 'id defaults to gen_random_uuid()');
select col_not_null('public', 'cron_job_logs', 'id', 'id is not null');
-- job_name
select col_type_is('public', 'cron_job_logs', 'job_name', 'text', 'job_name is text');
select col_hasnt_default('public', 'cron_job_logs', 'job_name', 'job_name has no default');
select col_not_null('public', 'cron_job_logs', 'job_name', 'job_name is not null');
-- started_at
select col_type_is('public', 'cron_job_logs', 'started_at', 'timestamp with time zone', 'started_at is timestamptz');
select col_default_is('public', 'cron_job_logs', 'started_at', 'now()', 'started_at defaults to now()');
select col_is_null('public', 'cron_job_logs', 'started_at', 'started_at is nullable, as the seed says');
-- completed_at
select col_type_is('public', 'cron_job_logs', 'completed_at', 'timestamp with time zone', 'completed_at is timestamptz');
select col_hasnt_default('public', 'cron_job_logs', 'completed_at', 'completed_at has no default');
select col_is_null('public', 'cron_job_logs', 'completed_at', 'completed_at is nullable');
-- status
select col_type_is('public', 'cron_job_logs', 'status', 'text', 'status is text');
select col_default_is('public', 'cron_job_logs', 'status', 'running'::text, 'status defaults to ''running''::text');
select is(
  (select pg_get_expr(d.adbin, d.adrelid) from pg_attrdef d
     join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
    where d.adrelid = 'public.cron_job_logs'::regclass and a.attname = 'status'),
  '''running''::text',
  'the status default reads ''running''::text');
select col_is_null('public', 'cron_job_logs', 'status', 'status is nullable, as the seed says');
-- result
select col_type_is('public', 'cron_job_logs', 'result', 'jsonb', 'result is jsonb');
select col_hasnt_default('public', 'cron_job_logs', 'result', 'result has no default');
select col_is_null('public', 'cron_job_logs', 'result', 'result is nullable');
-- error_message
select col_type_is('public', 'cron_job_logs', 'error_message', 'text', 'error_message is text');
select col_hasnt_default('public', 'cron_job_logs', 'error_message', 'error_message has no default');
select col_is_null('public', 'cron_job_logs', 'error_message', 'error_message is nullable');
-- created_at
select col_type_is('public', 'cron_job_logs', 'created_at', 'timestamp with time zone', 'created_at is timestamptz');
select col_default_is('public', 'cron_job_logs', 'created_at', 'now()', 'created_at defaults to now()');
select col_is_null('public', 'cron_job_logs', 'created_at', 'created_at is nullable, as the seed says');

-- ── a minimal insert takes every default ─────────────────────────────────────────────
insert into public.cron_job_logs (id, job_name)
values ('001f0000-0000-4000-8000-000000000001', 'pgtap-schema-test');
select results_eq(
  $$ select job_name, started_at = now(), completed_at, status, result, error_message, created_at = now()
       from public.cron_job_logs where id = '001f0000-0000-4000-8000-000000000001' $$,
  $$ values ('pgtap-schema-test', true, null::timestamptz, 'running', null::jsonb, null::text, true) $$,
  'a log inserted with only job_name is running, started and created now');
select lives_ok(
  $$ insert into public.cron_job_logs (job_name, started_at, status, created_at)
     values ('pgtap-schema-test', null, null, null) $$,
  'started_at, status and created_at accept explicit nulls');
select throws_ok(
  $$ insert into public.cron_job_logs (job_name) values (null) $$,
  '23502', 'null value in column "job_name" of relation "cron_job_logs" violates not-null constraint',
  'a log without job_name violates the not-null constraint on job_name');

-- ── constraints ──────────────────────────────────────────────────────────────────────
select is(
  (select array_agg(conname::text || ' ' || pg_get_constraintdef(oid) order by conname) from pg_constraint
    where conrelid = 'public.cron_job_logs'::regclass),
  array['cron_job_logs_pkey PRIMARY KEY (id)',
        'cron_job_logs_status_valid CHECK ((status = ANY (ARRAY[''running''::text, ''completed''::text, ''failed''::text])))'],
  'cron_job_logs has the seed''s primary key on id and the named check cron_job_logs_status_valid');
select col_is_pk('public', 'cron_job_logs', 'id', 'id is the primary key');
select throws_ok(
  $$ insert into public.cron_job_logs (id, job_name)
     values ('001f0000-0000-4000-8000-000000000001', 'pgtap-schema-test') $$,
  '23505', 'duplicate key value violates unique constraint "cron_job_logs_pkey"',
  'a second log with an existing id violates cron_job_logs_pkey');

-- ── indexes ──────────────────────────────────────────────────────────────────────────
select indexes_are('public', 'cron_job_logs', array[
  'cron_job_logs_pkey', 'idx_cron_job_logs_job_name', 'idx_cron_job_logs_started_at'
], 'cron_job_logs has its primary key and the two seed indexes, no other');
select has_index('public', 'cron_job_logs', 'idx_cron_job_logs_job_name', array['job_name'],
  'idx_cron_job_logs_job_name is on (job_name)');
select has_index('public', 'cron_job_logs', 'idx_cron_job_logs_started_at', array['started_at'],
  'idx_cron_job_logs_started_at is on (started_at)');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_cron_job_logs_job_name'),
  'CREATE INDEX idx_cron_job_logs_job_name ON public.cron_job_logs USING btree (job_name)',
  'idx_cron_job_logs_job_name is a plain btree on job_name');
select is(
  (select indexdef from pg_indexes where schemaname = 'public' and indexname = 'idx_cron_job_logs_started_at'),
  'CREATE INDEX idx_cron_job_logs_started_at ON public.cron_job_logs USING btree (started_at DESC)',
  'idx_cron_job_logs_started_at orders started_at DESC');

-- ── comments, as the seed describes them ─────────────────────────────────────────────
select is(obj_description('public.cron_job_logs'::regclass, 'pg_class'),
  'Audit log for cron job executions. Each row represents one execution of a scheduled job.',
  'the table comment is the seed description');
select is(col_description('public.cron_job_logs'::regclass, a.attnum), d.descr,
          format('the comment on %s is %L', d.col, d.descr))
  from (values
    ('id', 'Primary key'),
    ('job_name', 'Name of the cron job'),
    ('started_at', 'When execution started'),
    ('completed_at', 'When execution finished'),
    ('status', 'Execution status (e.g., running, completed, failed)'),
    ('result', 'Execution result data'),
    ('error_message', 'Error message if failed'),
    ('created_at', 'Record creation timestamp')
  ) as d(col, descr)
  left join pg_attribute a on a.attrelid = 'public.cron_job_logs'::regclass and a.attname = d.col
 order by d.col;

select * from finish();
rollback;
