-- agencies, agency_members and calls as docs/ARCHITECTURE.md §4 describes them.
begin;
create extension if not exists pgtap with schema extensions;
select plan(91);

-- ══ agencies ═════════════════════════════════════════════════════════════════════════
select columns_are('public', 'agencies', array['id', 'name', 'created_at'],
  'agencies has exactly id, name, created_at');
select col_type_is('public', 'agencies', 'id', 'uuid', 'agencies.id is uuid');
select col_default_is('public', 'agencies', 'id', 'gen_random_uuid()', 'agencies.id defaults to gen_random_uuid()');
select col_is_pk('public', 'agencies', 'id', 'agencies.id is the primary key');
select col_type_is('public', 'agencies', 'name', 'text', 'agencies.name is text');
select col_not_null('public', 'agencies', 'name', 'agencies.name is not null');
select col_hasnt_default('public', 'agencies', 'name', 'agencies.name has no default');
select col_type_is('public', 'agencies', 'created_at', 'timestamp with time zone', 'agencies.created_at is timestamptz');
select col_not_null('public', 'agencies', 'created_at', 'agencies.created_at is not null');
select col_default_is('public', 'agencies', 'created_at', 'now()', 'agencies.created_at defaults to now()');
select throws_ok(
  $$ insert into public.agencies (name) values (null) $$,
  '23502', 'null value in column "name" of relation "agencies" violates not-null constraint',
  'an agency without a name violates the not-null constraint on name');

-- ══ agency_members ═══════════════════════════════════════════════════════════════════
select columns_are('public', 'agency_members', array['agency_id', 'user_id', 'role', 'created_at'],
  'agency_members has exactly agency_id, user_id, role, created_at');
select col_type_is('public', 'agency_members', 'agency_id', 'uuid', 'agency_members.agency_id is uuid');
select col_not_null('public', 'agency_members', 'agency_id', 'agency_members.agency_id is not null');
select col_type_is('public', 'agency_members', 'user_id', 'uuid', 'agency_members.user_id is uuid');
select col_not_null('public', 'agency_members', 'user_id', 'agency_members.user_id is not null');
select col_type_is('public', 'agency_members', 'role', 'text', 'agency_members.role is text');
select col_not_null('public', 'agency_members', 'role', 'agency_members.role is not null');
select col_hasnt_default('public', 'agency_members', 'role', 'agency_members.role has no default');
select col_type_is('public', 'agency_members', 'created_at', 'timestamp with time zone', 'agency_members.created_at is timestamptz');
select col_default_is('public', 'agency_members', 'created_at', 'now()', 'agency_members.created_at defaults to now()');
select col_is_pk('public', 'agency_members', array['agency_id', 'user_id'],
  'agency_members has the primary key (agency_id, user_id)');
select fk_ok('public', 'agency_members', 'agency_id', 'public', 'agencies', 'id',
  'agency_members.agency_id references agencies.id');
select fk_ok('public', 'agency_members', 'user_id', 'auth', 'users', 'id',
  'agency_members.user_id references auth.users.id');
select results_eq(
  $$ select conname::text collate "default", confdeltype::text from pg_constraint
      where conrelid = 'public.agency_members'::regclass and contype = 'f' order by conname $$,
  $$ values ('agency_members_agency_id_fkey', 'c'), ('agency_members_user_id_fkey', 'c') $$,
  'both agency_members foreign keys delete with action cascade');
select is(
  (select pg_get_constraintdef(oid) from pg_constraint
    where conrelid = 'public.agency_members'::regclass and conname = 'agency_members_role_check'),
  'CHECK ((role = ANY (ARRAY[''owner''::text, ''admin''::text, ''member''::text])))',
  'agency_members_role_check allows owner, admin, member');
select has_index('public', 'agency_members', 'idx_agency_members_user', array['user_id'],
  'idx_agency_members_user indexes user_id for membership look-ups');

insert into public.agencies (id, name) values
  ('002a0000-0000-4000-8000-000000000001', 'Members agency one'),
  ('002a0000-0000-4000-8000-000000000002', 'Members agency two');
insert into auth.users (id, email) values
  ('002b0000-0000-4000-8000-000000000001', 'owner@pgtap.test'),
  ('002b0000-0000-4000-8000-000000000002', 'admin@pgtap.test'),
  ('002b0000-0000-4000-8000-000000000003', 'member@pgtap.test');

select lives_ok(
  $$ insert into public.agency_members (agency_id, user_id, role) values
       ('002a0000-0000-4000-8000-000000000001', '002b0000-0000-4000-8000-000000000001', 'owner'),
       ('002a0000-0000-4000-8000-000000000001', '002b0000-0000-4000-8000-000000000002', 'admin'),
       ('002a0000-0000-4000-8000-000000000001', '002b0000-0000-4000-8000-000000000003', 'member'),
       ('002a0000-0000-4000-8000-000000000002', '002b0000-0000-4000-8000-000000000001', 'member') $$,
  'the roles owner, admin and member are accepted, and a user may belong to two agencies');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('002a0000-0000-4000-8000-000000000002', '002b0000-0000-4000-8000-000000000002', 'viewer') $$,
  '23514', 'new row for relation "agency_members" violates check constraint "agency_members_role_check"',
  'the role viewer violates agency_members_role_check');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('002a0000-0000-4000-8000-000000000002', '002b0000-0000-4000-8000-000000000002', 'Owner') $$,
  '23514', 'new row for relation "agency_members" violates check constraint "agency_members_role_check"',
  'roles are case-sensitive: Owner violates agency_members_role_check');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('002a0000-0000-4000-8000-000000000001', '002b0000-0000-4000-8000-000000000001', 'admin') $$,
  '23505', 'duplicate key value violates unique constraint "agency_members_pkey"',
  'a second membership of the same user in the same agency violates agency_members_pkey');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('002a0000-0000-4000-8000-0000000000ff', '002b0000-0000-4000-8000-000000000001', 'owner') $$,
  '23503', 'insert or update on table "agency_members" violates foreign key constraint "agency_members_agency_id_fkey"',
  'a membership of a missing agency violates agency_members_agency_id_fkey');
select throws_ok(
  $$ insert into public.agency_members (agency_id, user_id, role)
     values ('002a0000-0000-4000-8000-000000000001', '002b0000-0000-4000-8000-0000000000ff', 'owner') $$,
  '23503', 'insert or update on table "agency_members" violates foreign key constraint "agency_members_user_id_fkey"',
  'a membership of a missing user violates agency_members_user_id_fkey');

delete from auth.users where id = '002b0000-0000-4000-8000-000000000001';
select results_eq(
  $$ select agency_id, user_id from public.agency_members
      where agency_id in ('002a0000-0000-4000-8000-000000000001', '002a0000-0000-4000-8000-000000000002')
      order by agency_id, user_id $$,
  $$ values ('002a0000-0000-4000-8000-000000000001'::uuid, '002b0000-0000-4000-8000-000000000002'::uuid),
            ('002a0000-0000-4000-8000-000000000001'::uuid, '002b0000-0000-4000-8000-000000000003'::uuid) $$,
  'deleting a user deletes both of their memberships and no other (cascade from auth.users)');
delete from public.agencies where id = '002a0000-0000-4000-8000-000000000001';
select is(
  (select count(*)::int from public.agency_members
    where user_id in ('002b0000-0000-4000-8000-000000000002', '002b0000-0000-4000-8000-000000000003')),
  0, 'deleting an agency deletes its 2 remaining memberships (cascade from agencies)');
select is(
  (select count(*)::int from auth.users
    where id in ('002b0000-0000-4000-8000-000000000002', '002b0000-0000-4000-8000-000000000003')),
  2, 'deleting an agency leaves its 2 users in auth.users');

-- ══ calls ════════════════════════════════════════════════════════════════════════════
select columns_are('public', 'calls', array[
  'id', 'agency_id', 'ultravox_call_id', 'ultravox_agent_id', 'created_at', 'joined_at', 'ended_at',
  'end_reason', 'duration_seconds', 'billed_duration_seconds', 'short_summary', 'summary',
  'recording_enabled', 'metadata', 'raw', 'source', 'historical_sync_job_id', 'imported_at',
  'ultravox_deleted_at'
], 'calls has exactly the 19 columns of docs/ARCHITECTURE.md §4 (ultravox_deleted_at for catch-up)');

select col_type_is('public', 'calls', c.col, c.typ, format('calls.%s is %s', c.col, c.typ))
  from (values
    (1, 'id', 'uuid'), (2, 'agency_id', 'uuid'), (3, 'ultravox_call_id', 'uuid'),
    (4, 'ultravox_agent_id', 'uuid'), (5, 'created_at', 'timestamp with time zone'),
    (6, 'joined_at', 'timestamp with time zone'), (7, 'ended_at', 'timestamp with time zone'),
    (8, 'end_reason', 'text'), (9, 'duration_seconds', 'numeric'),
    (10, 'billed_duration_seconds', 'numeric'), (11, 'short_summary', 'text'), (12, 'summary', 'text'),
    (13, 'recording_enabled', 'boolean'), (14, 'metadata', 'jsonb'), (15, 'raw', 'jsonb'),
    (16, 'source', 'text'), (17, 'historical_sync_job_id', 'uuid'),
    (18, 'imported_at', 'timestamp with time zone')
  ) as c(n, col, typ)
 order by c.n;

select col_not_null('public', 'calls', c.col, format('calls.%s is not null', c.col))
  from unnest(array['id', 'agency_id', 'ultravox_call_id', 'created_at', 'recording_enabled',
                    'metadata', 'raw', 'source', 'imported_at']) with ordinality as c(col, n)
 order by c.n;
select col_is_null('public', 'calls', c.col, format('calls.%s is nullable', c.col))
  from unnest(array['ultravox_agent_id', 'joined_at', 'ended_at', 'end_reason', 'duration_seconds',
                    'billed_duration_seconds', 'short_summary', 'summary',
                    'historical_sync_job_id']) with ordinality as c(col, n)
 order by c.n;

select col_default_is('public', 'calls', 'id', 'gen_random_uuid()', 'calls.id defaults to gen_random_uuid()');
select col_default_is('public', 'calls', 'recording_enabled', false, 'calls.recording_enabled defaults to false');
select col_default_is('public', 'calls', 'metadata', '{}'::jsonb, 'calls.metadata defaults to ''{}''');
select col_default_is('public', 'calls', 'imported_at', 'now()', 'calls.imported_at defaults to now()');
select col_hasnt_default('public', 'calls', 'source', 'calls.source has no default (every writer names it)');
select col_hasnt_default('public', 'calls', 'raw', 'calls.raw has no default');
select col_is_pk('public', 'calls', 'id', 'calls.id is the primary key');
select col_is_unique('public', 'calls', array['ultravox_call_id'], 'calls.ultravox_call_id is unique');
select results_eq(
  $$ select conname::text collate "default", pg_get_constraintdef(oid), confdeltype::text from pg_constraint
      where conrelid = 'public.calls'::regclass and contype = 'f' order by conname $$,
  $$ values
       ('calls_agency_id_fkey', 'FOREIGN KEY (agency_id) REFERENCES agencies(id) ON DELETE CASCADE', 'c'),
       ('calls_historical_sync_job_id_fkey',
        'FOREIGN KEY (historical_sync_job_id) REFERENCES historical_sync_jobs(id) ON DELETE SET NULL', 'n') $$,
  'calls references agencies on delete cascade and historical_sync_jobs on delete set null');

insert into public.agencies (id, name) values
  ('002a0000-0000-4000-8000-000000000003', 'Calls agency three'),
  ('002a0000-0000-4000-8000-000000000004', 'Calls agency four');
insert into public.historical_sync_jobs (id, agency_id, date_to, status, completed_at) values
  ('002c0000-0000-4000-8000-000000000003', '002a0000-0000-4000-8000-000000000003', '2026-01-31Z', 'completed', '2026-02-01Z');
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source, historical_sync_job_id) values
  ('002a0000-0000-4000-8000-000000000003', '002e0000-0000-4000-8000-000000000001',
   '2026-01-15T10:20:30.123456Z', '{"callId": "002e0000-0000-4000-8000-000000000001"}', 'historical_sync',
   '002c0000-0000-4000-8000-000000000003'),
  ('002a0000-0000-4000-8000-000000000003', '002e0000-0000-4000-8000-000000000002',
   '2026-01-15T10:20:31Z', '{}', 'historical_sync', '002c0000-0000-4000-8000-000000000003'),
  ('002a0000-0000-4000-8000-000000000003', '002e0000-0000-4000-8000-000000000003',
   '2026-01-15T10:20:32Z', '{}', 'webhook', null);

select results_eq(
  $$ select recording_enabled, metadata, imported_at = now(), to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
       from public.calls where ultravox_call_id = '002e0000-0000-4000-8000-000000000001' $$,
  $$ values (false, '{}'::jsonb, true, '2026-01-15T10:20:30.123456') $$,
  'a call takes recording_enabled false, metadata {}, imported_at now, and keeps created_at to the microsecond');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
     values ('002a0000-0000-4000-8000-000000000004', '002e0000-0000-4000-8000-000000000001',
             '2026-01-15Z', '{}', 'historical_sync') $$,
  '23505', 'duplicate key value violates unique constraint "calls_ultravox_call_id_key"',
  'the same Ultravox call in another agency violates calls_ultravox_call_id_key (unique across agencies)');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
     values ('002a0000-0000-4000-8000-0000000000ff', '002e0000-0000-4000-8000-000000000009',
             '2026-01-15Z', '{}', 'historical_sync') $$,
  '23503', 'insert or update on table "calls" violates foreign key constraint "calls_agency_id_fkey"',
  'a call of a missing agency violates calls_agency_id_fkey');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source, historical_sync_job_id)
     values ('002a0000-0000-4000-8000-000000000004', '002e0000-0000-4000-8000-000000000009',
             '2026-01-15Z', '{}', 'historical_sync', '002c0000-0000-4000-8000-0000000000ff') $$,
  '23503', 'insert or update on table "calls" violates foreign key constraint "calls_historical_sync_job_id_fkey"',
  'a call of a missing sync job violates calls_historical_sync_job_id_fkey');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, source)
     values ('002a0000-0000-4000-8000-000000000004', '002e0000-0000-4000-8000-000000000009',
             '2026-01-15Z', 'historical_sync') $$,
  '23502', 'null value in column "raw" of relation "calls" violates not-null constraint',
  'a call without raw violates the not-null constraint on raw');
select throws_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw)
     values ('002a0000-0000-4000-8000-000000000004', '002e0000-0000-4000-8000-000000000009',
             '2026-01-15Z', '{}') $$,
  '23502', 'null value in column "source" of relation "calls" violates not-null constraint',
  'a call without source violates the not-null constraint on source');

delete from public.historical_sync_jobs where id = '002c0000-0000-4000-8000-000000000003';
select results_eq(
  $$ select ultravox_call_id, historical_sync_job_id from public.calls
      where agency_id = '002a0000-0000-4000-8000-000000000003' order by ultravox_call_id $$,
  $$ values ('002e0000-0000-4000-8000-000000000001'::uuid, null::uuid),
            ('002e0000-0000-4000-8000-000000000002'::uuid, null::uuid),
            ('002e0000-0000-4000-8000-000000000003'::uuid, null::uuid) $$,
  'deleting a sync job keeps its 2 calls (historical_sync_job_id set to null) beside the agency''s third call');
delete from public.agencies where id = '002a0000-0000-4000-8000-000000000003';
select is(
  (select count(*)::int from public.calls where ultravox_call_id in (
     '002e0000-0000-4000-8000-000000000001', '002e0000-0000-4000-8000-000000000002',
     '002e0000-0000-4000-8000-000000000003')),
  0, 'deleting an agency deletes its 3 calls (cascade from agencies)');
select lives_ok(
  $$ insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
     values ('002a0000-0000-4000-8000-000000000004', '002e0000-0000-4000-8000-000000000001',
             '2026-01-15Z', '{}', 'historical_sync') $$,
  'once the holding agency is gone, another agency may import that Ultravox call');

select * from finish();
rollback;
