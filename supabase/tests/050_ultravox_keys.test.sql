-- Per-agency Ultravox API keys in Vault, under the name ultravox_api_key:<agency_id>.
begin;
create extension if not exists pgtap with schema extensions;
select plan(24);

insert into public.agencies (id, name) values
  ('050a0000-0000-4000-8000-000000000001', 'Key agency one'),
  ('050a0000-0000-4000-8000-000000000002', 'Key agency two'),
  ('050a0000-0000-4000-8000-000000000003', 'Key agency three');

select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), null,
  'an agency without a key reads back null');
select is(public.agency_has_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), false,
  'agency_has_ultravox_api_key is false before a key is set');

select lives_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001', 'uv_key_one_v1') $$,
  'setting a key for agency one succeeds');
select results_eq(
  $$ select name, description from vault.secrets where name like 'ultravox_api_key:050a0000-%' $$,
  $$ values ('ultravox_api_key:050a0000-0000-4000-8000-000000000001',
             'Ultravox API key of agency 050a0000-0000-4000-8000-000000000001') $$,
  'exactly one Vault secret exists, named ultravox_api_key:<agency_id>');
select isnt(
  (select secret from vault.secrets where name = 'ultravox_api_key:050a0000-0000-4000-8000-000000000001'),
  'uv_key_one_v1', 'the stored secret column is not the plain key');
select is(
  (select decrypted_secret from vault.decrypted_secrets where name = 'ultravox_api_key:050a0000-0000-4000-8000-000000000001'),
  'uv_key_one_v1', 'vault.decrypted_secrets reads the key back');
select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), 'uv_key_one_v1',
  'get_agency_ultravox_api_key returns the key');
select is(public.agency_has_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), true,
  'agency_has_ultravox_api_key is true once the key is set');

select id as first_secret_id from vault.secrets
 where name = 'ultravox_api_key:050a0000-0000-4000-8000-000000000001' \gset
select lives_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001', 'uv_key_one_v2') $$,
  'setting the key again (rotation) succeeds');
select results_eq(
  $$ select id from vault.secrets where name = 'ultravox_api_key:050a0000-0000-4000-8000-000000000001' $$,
  format($$ values (%L::uuid) $$, :'first_secret_id'),
  'rotation updates the same Vault secret: still one row, same id');
select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), 'uv_key_one_v2',
  'after rotation get returns the latest key');

select throws_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001', '') $$,
  '22023', 'The Ultravox API key must not be empty.', 'an empty key is refused with 22023');
select throws_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001', null) $$,
  '22023', 'The Ultravox API key must not be empty.', 'a null key is refused with 22023');
select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), 'uv_key_one_v2',
  'the refused keys left the latest key in place');
select lives_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001', ' ') $$,
  'a one-space key is accepted (no format check beyond non-empty)');
select throws_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-0000000000ff', 'uv_key') $$,
  '23503', 'No agency 050a0000-0000-4000-8000-0000000000ff.', 'a key for a missing agency is refused with 23503');
select is(
  (select count(*)::int from vault.secrets where name = 'ultravox_api_key:050a0000-0000-4000-8000-0000000000ff'),
  0, 'no secret was written for the missing agency');

-- service_role, the backend, may set and read keys; each agency has its own.
set local role service_role;
select lives_ok(
  $$ select public.set_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000002', 'uv_key_two') $$,
  'service_role may set a key');
select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000002'), 'uv_key_two',
  'service_role reads agency two''s key');
reset role;
select is(public.get_agency_ultravox_api_key('050a0000-0000-4000-8000-000000000001'), ' ',
  'agency one still has its own key');
select is(public.agency_has_ultravox_api_key('050a0000-0000-4000-8000-000000000003'), false,
  'agency three still has no key');

select ok(
  (select bool_and(prosecdef and proconfig = array['search_path=""']) from pg_proc
    where oid in ('public.set_agency_ultravox_api_key(uuid, text)'::regprocedure,
                  'public.get_agency_ultravox_api_key(uuid)'::regprocedure,
                  'public.agency_has_ultravox_api_key(uuid)'::regprocedure)),
  'the three key functions are security definer with an empty search_path');

select lives_ok(
  $$ delete from public.agencies where id = '050a0000-0000-4000-8000-000000000001' $$,
  'an agency with a key can be deleted');
select is(
  (select count(*)::int from vault.secrets
    where name = 'ultravox_api_key:050a0000-0000-4000-8000-000000000001'),
  0, 'deleting the agency removes its key from Vault');

select * from finish();
rollback;
