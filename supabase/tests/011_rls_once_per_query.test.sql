-- Member policies evaluate the membership once per query and let the planner use the
-- agency_id indexes (docs/ARCHITECTURE.md §4): a member cannot make Postgres call a
-- function for, or scan, every agency's calls.
begin;
create extension if not exists pgtap with schema extensions;
select plan(5);

insert into public.agencies (id, name)
select ('011a0000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'pgtap 011 agency ' || g
  from generate_series(1, 200) g;
insert into auth.users (id, email) values ('011b0000-0000-4000-8000-000000000001', 'member@011.test');
insert into public.agency_members (agency_id, user_id, role)
values ('011a0000-0000-4000-8000-000000000001', '011b0000-0000-4000-8000-000000000001', 'member');
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
select ('011a0000-0000-4000-8000-' || lpad((1 + g % 200)::text, 12, '0'))::uuid,
       gen_random_uuid(), '2026-01-01'::timestamptz - g * interval '1 second', '{}', 'pgtap'
  from generate_series(1, 20000) g;
analyze public.calls;

create function pg_temp.plan_of(q text) returns text language plpgsql as $$
declare
  line text;
  plan text := '';
begin
  for line in execute 'explain ' || q loop
    plan := plan || line || E'\n';
  end loop;
  return plan;
end
$$;
grant execute on function pg_temp.plan_of(text) to authenticated;

set local role authenticated;
set local request.jwt.claims = '{"sub":"011b0000-0000-4000-8000-000000000001","role":"authenticated"}';
select is((select count(*)::int from public.calls), 100, 'the member sees exactly its agency''s 100 calls of 20,000');
select matches(pg_temp.plan_of('select * from public.calls'),
  'Index (Only )?Scan|Bitmap Index Scan',
  'a member''s unfiltered read of calls is an index scan, not a scan of every agency''s calls');
select matches(pg_temp.plan_of('select * from public.calls'), 'idx_calls_agency_created',
  'the index it uses is the agency_id index of calls');
select matches(pg_temp.plan_of('select * from public.calls'), 'InitPlan',
  'the membership is computed once per query (an InitPlan)');
select doesnt_match(pg_temp.plan_of('select * from public.calls'), 'has_agency_role',
  'no per-row call of has_agency_role remains in the plan');
reset role;

select * from finish();
rollback;
