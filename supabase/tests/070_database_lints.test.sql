-- Supabase's database linter (splinter) as our own assertions over the live schema, so a
-- migration that would make the dashboard's Security Advisor complain fails `deno task test`
-- first (docs/DECISIONS.md "Database lints and their exceptions"):
--
--   rls_disabled_in_public (0013)       RLS on every table of an exposed schema
--   security_definer_view (0010)        no view anon/authenticated may read that runs as its owner
--   function_search_path_mutable (0011) every function of ours has a fixed search_path
--   auth_rls_initplan (0003)            no policy calls auth.uid()/jwt()/role()/email() or
--                                       current_setting() per row instead of (select …)
--   auth_users_exposed (0002)           no view over auth.users that anon/authenticated may read
--   *_security_definer_function_executable (0028, 0029), and stricter: no function of ours
--                                       that is not STABLE/IMMUTABLE is executable by anon or
--                                       authenticated
--
-- Each check compares with an exact list: a deliberate exception is named here with its reason,
-- and anything new, violation or exception, fails until it is listed here and in DECISIONS.md.
-- The second half plants one violation of each kind (rolled back) and shows that each check
-- names it, so a check that silently matches nothing cannot pass.
begin;
create extension if not exists pgtap with schema extensions;
-- Policies and views are deparsed against the search_path: without public (and auth) on it,
-- every function call in pg_policies.qual is printed schema-qualified, which the checks read.
set local search_path = extensions;
select plan(28);

-- The schemas the Data API exposes (supabase/config.toml [api] schemas).
create temporary view lint_exposed_schema as
  select n.oid, n.nspname::text as nspname
    from pg_catalog.pg_namespace n
   where n.nspname in ('public', 'graphql_public');

-- Objects that belong to an extension are the extension's business (splinter skips them too).
create temporary view lint_extension_member as
  select d.classid, d.objid from pg_catalog.pg_depend d where d.deptype = 'e';

-- ── 0013 rls_disabled_in_public ─────────────────────────────────────────────────────
create temporary view lint_rls_disabled as
  select s.nspname || '.' || c.relname as object
    from pg_catalog.pg_class c
    join lint_exposed_schema s on s.oid = c.relnamespace
   where c.relkind in ('r', 'p') and not c.relrowsecurity
     and not exists (select from lint_extension_member e
                      where e.classid = 'pg_class'::regclass and e.objid = c.oid);

select is((select coalesce(array_agg(object order by object), '{}') from lint_rls_disabled),
  '{}'::text[], 'rls_disabled_in_public: every table in an exposed schema has RLS enabled');

-- Backend-only tables: RLS on and no policy at all (splinter 0008 reports these as INFO). The
-- exact list, each with no privilege left to anon or authenticated.
select is(
  (select array_agg(c.relname::text order by c.relname)
     from pg_catalog.pg_class c join lint_exposed_schema s on s.oid = c.relnamespace
    where c.relkind in ('r', 'p') and c.relrowsecurity
      and not exists (select from pg_catalog.pg_policy p where p.polrelid = c.oid)),
  array[
    'cron_job_logs',              -- one row per cron execution: written and read by the backend only
    'historical_sync_job_leases', -- the engine's state (lease, attempts): backend only
    'historical_sync_job_slices', -- a sliced walk's slices (cursor, lease): backend only
    'sync_dispatch_settings',     -- how far the dispatcher fans out: backend only
    'sync_user_actions'           -- the rate limiter's counts: backend only
  ],
  'rls_enabled_no_policy: exactly the five backend-only tables have RLS and no policy');
select is(
  (select coalesce(array_agg(c.relname || ':' || r order by c.relname, r), '{}')
     from pg_catalog.pg_class c join lint_exposed_schema s on s.oid = c.relnamespace
     cross join unnest(array['anon', 'authenticated']) r
    where c.relkind in ('r', 'p')
      and not exists (select from pg_catalog.pg_policy p where p.polrelid = c.oid)
      and (has_table_privilege(r, c.oid, 'select, insert, update, delete, truncate, references, trigger')
           or has_any_column_privilege(r, c.oid, 'select, insert, update, references'))),
  '{}'::text[], 'the backend-only tables grant anon and authenticated nothing at all');

-- ── 0010 security_definer_view ──────────────────────────────────────────────────────
-- Views that run with their owner's rights (no security_invoker), and materialized views
-- (which have no RLS at all).
create temporary view lint_owner_rights_view as
  select s.nspname || '.' || c.relname as object, c.oid, c.relkind
    from pg_catalog.pg_class c
    join lint_exposed_schema s on s.oid = c.relnamespace
   where (c.relkind = 'm'
          or (c.relkind = 'v'
              and not (lower(coalesce(c.reloptions::text, '{}'))::text[]
                       && array['security_invoker=1', 'security_invoker=true',
                                'security_invoker=yes', 'security_invoker=on'])))
     and not exists (select from lint_extension_member e
                      where e.classid = 'pg_class'::regclass and e.objid = c.oid);
create temporary view lint_security_definer_view as
  select v.object from lint_owner_rights_view v
   where has_any_column_privilege('anon', v.oid, 'select')
      or has_any_column_privilege('authenticated', v.oid, 'select');

select is((select coalesce(array_agg(object order by object), '{}') from lint_security_definer_view),
  '{}'::text[],
  'security_definer_view: no view running with its owner''s rights is readable by anon or authenticated');
select is((select coalesce(array_agg(object order by object), '{}') from lint_owner_rights_view),
  array[
    -- reads cron.job, which only its owner may read (RLS: username = current_user), so it
    -- cannot be security_invoker; only service_role may select it (060, 010)
    'public.virsyn_cron_jobs'
  ],
  'the views running with their owner''s rights are exactly: virsyn_cron_jobs');
select is(
  (select array_agg(r::text order by r)
     from unnest(array['anon', 'authenticated', 'service_role']) r
    where has_any_column_privilege(r, 'public.virsyn_cron_jobs', 'select')),
  array['service_role'], 'of the API roles only service_role may read virsyn_cron_jobs');

-- ── 0011 function_search_path_mutable ───────────────────────────────────────────────
create temporary view lint_our_function as
  select p.oid, format('public.%s(%s)', p.proname, oidvectortypes(p.proargtypes)) as object,
         p.proconfig, p.provolatile, p.prosecdef
    from pg_catalog.pg_proc p
   where p.pronamespace = 'public'::regnamespace
     and not exists (select from lint_extension_member e
                      where e.classid = 'pg_proc'::regclass and e.objid = p.oid);
create temporary view lint_search_path_mutable as
  select f.object from lint_our_function f
   where not exists (select from unnest(coalesce(f.proconfig, '{}')) c where c like 'search_path=%');

select is((select coalesce(array_agg(object order by object), '{}') from lint_search_path_mutable),
  '{}'::text[], 'function_search_path_mutable: every function in public fixes its search_path');
select is(
  (select coalesce(array_agg(f.object order by f.object), '{}') from lint_our_function f
    where not ('search_path=""' = any (coalesce(f.proconfig, '{}')))),
  '{}'::text[],
  'stricter: every function in public runs with an empty search_path (every name schema-qualified)');
select is(
  (select coalesce(array_agg(r order by r), '{}')
     from unnest(array['public', 'anon', 'authenticated', 'service_role']) r
    where has_schema_privilege(r, 'public', 'create')),
  '{}'::text[], 'no API role (nor PUBLIC) may create objects in public, where our functions live');

-- ── 0003 auth_rls_initplan ──────────────────────────────────────────────────────────
-- A call of auth.uid()/jwt()/role()/email() or current_setting() in a policy is evaluated
-- once per query only as `(select …)`, deparsed "( SELECT auth.uid() AS uid)". Every wrapped
-- call is taken out first, then any call left is a per-row one: unlike splinter's regex, a
-- policy that wraps one call and not another is caught too.
create temporary view lint_policy_expr as
  select n.nspname || '.' || c.relname || ': ' || p.polname as object, x.expr
    from pg_catalog.pg_policy p
    join pg_catalog.pg_class c on c.oid = p.polrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    cross join lateral (values (pg_get_expr(p.polqual, p.polrelid)),
                               (pg_get_expr(p.polwithcheck, p.polrelid))) x(expr)
   where c.relrowsecurity and x.expr is not null
     and n.nspname not in ('auth', 'cron', 'extensions', 'graphql', 'information_schema', 'net', 'pg_catalog', 'pgsodium', 'realtime',
                           'storage', 'supabase_functions', 'supabase_migrations', 'vault');
create temporary view lint_auth_rls_initplan as
  select distinct e.object from lint_policy_expr e
   where regexp_replace(e.expr,
           '\mSELECT\s+\(*((auth\.(uid|jwt|role|email)\(\))|(current_setting\(([^()]|\([^()]*\))*\)))',
           '', 'gi')
         ~* '(\mauth\.(uid|jwt|role|email)\s*\()|(\mcurrent_setting\s*\()';

select is((select coalesce(array_agg(object order by object), '{}') from lint_auth_rls_initplan),
  '{}'::text[],
  'auth_rls_initplan: no policy calls auth.uid()/jwt()/role()/email() or current_setting() per row');
-- The same for our own helpers: a function of public in a policy runs once per query only
-- inside (select …) and with constant arguments (literals, casts, arrays of them); with a
-- column argument it runs for every row (011 measures it).
create temporary view lint_policy_per_row_helper as
  select distinct e.object from lint_policy_expr e
   where regexp_replace(e.expr,
           '\mSELECT\s+\(*public\.[a-z_][a-z0-9_]*\('
             || '(\s|,|''([^'']|'''')*''|::\s*[a-z_ ]+(\[\])?|ARRAY\[|\]|-?[0-9]+(\.[0-9]+)?|NULL|true|false)*\)',
           '', 'gi')
         ~* '\mpublic\.[a-z_][a-z0-9_]*\s*\(';
select is((select coalesce(array_agg(object order by object), '{}') from lint_policy_per_row_helper),
  '{}'::text[],
  'no policy calls a function of public per row (only inside (select …), with constant arguments)');
-- Policies are for signed-in users: none applies to anon or to PUBLIC (every role).
select is(
  (select coalesce(array_agg(n.nspname || '.' || c.relname || ': ' || p.polname order by 1), '{}')
     from pg_catalog.pg_policy p
     join pg_catalog.pg_class c on c.oid = p.polrelid
     join lint_exposed_schema n on n.oid = c.relnamespace
    where 0 = any (p.polroles) or 'anon'::regrole = any (p.polroles)),
  '{}'::text[], 'no policy in an exposed schema applies to anon or PUBLIC');

-- ── 0002 auth_users_exposed ─────────────────────────────────────────────────────────
create temporary view lint_auth_users_view as
  select distinct s.nspname || '.' || c.relname as object, c.oid
    from pg_catalog.pg_depend d
    join pg_catalog.pg_rewrite w on w.oid = d.objid
    join pg_catalog.pg_class c on c.oid = w.ev_class
    join lint_exposed_schema s on s.oid = c.relnamespace
   where d.classid = 'pg_rewrite'::regclass and d.refobjid = 'auth.users'::regclass
     and d.deptype = 'n' and c.relkind in ('v', 'm');
create temporary view lint_auth_users_exposed as
  select v.object from lint_auth_users_view v
   where has_any_column_privilege('anon', v.oid, 'select')
      or has_any_column_privilege('authenticated', v.oid, 'select');

select is((select coalesce(array_agg(object order by object), '{}') from lint_auth_users_exposed),
  '{}'::text[], 'auth_users_exposed: no view in an exposed schema shows auth.users to anon or authenticated');
select is((select coalesce(array_agg(object order by object), '{}') from lint_auth_users_view),
  '{}'::text[], 'stricter: no view in an exposed schema reads auth.users at all');

-- ── 0028/0029 and: nothing that changes state is executable by the API roles ────────
create temporary view lint_api_executable as
  select f.object, f.provolatile, f.prosecdef, r.role
    from lint_our_function f
    cross join (values ('anon'), ('authenticated')) r(role)
   where has_function_privilege(r.role, f.oid, 'execute');
create temporary view lint_api_state_changing as
  select role || ': ' || object as object from lint_api_executable where provolatile = 'v';

select is((select coalesce(array_agg(object order by object), '{}') from lint_api_state_changing),
  '{}'::text[],
  'no function of public that is not STABLE or IMMUTABLE is executable by anon or authenticated');
select is(
  (select coalesce(array_agg(object order by object), '{}') from lint_api_executable
    where role = 'anon' and prosecdef),
  '{}'::text[], 'anon_security_definer_function_executable: anon may execute no SECURITY DEFINER function');
select is(
  (select coalesce(array_agg(object order by object), '{}') from lint_api_executable
    where role = 'authenticated' and prosecdef),
  array[
    -- the caller's own membership (auth.uid()) in one agency, for a dashboard's checks over
    -- RPC; STABLE, reads agency_members only; definer so it needs no grant on the table
    'public.has_agency_role(uuid, text[])',
    -- the caller's own agencies, which every member policy asks once per query; definer so
    -- the policy on agency_members does not recurse into itself
    'public.my_agency_ids()',
    -- the same, limited to some roles: what the owners-and-admins policies of
    -- agency_sync_settings ask once per query
    'public.my_agency_ids_as(text[])'
  ],
  'authenticated_security_definer_function_executable: exactly the three membership helpers');
select is(
  (select coalesce(array_agg(object order by object), '{}') from lint_api_executable
    where role = 'anon'),
  '{}'::text[], 'anon may execute no function of public at all');
select is(
  (select string_agg(f.object || ' ' || f.provolatile::text || ' ' || l.lanname, ', ' order by f.object)
     from lint_our_function f join pg_catalog.pg_proc p on p.oid = f.oid
     join pg_catalog.pg_language l on l.oid = p.prolang
    where f.object in ('public.has_agency_role(uuid, text[])', 'public.my_agency_ids()',
                       'public.my_agency_ids_as(text[])')),
  'public.has_agency_role(uuid, text[]) s sql, public.my_agency_ids() s sql, public.my_agency_ids_as(text[]) s sql',
  'the three exceptions are STABLE SQL functions (Postgres refuses INSERT/UPDATE/DELETE in them)');

-- Extensions in public (splinter 0014): pg_cron is created by `create extension pg_cron` in
-- the migrations, so it is recorded in public, but every object of it lives in schema cron.
select is(
  (select coalesce(array_agg(e.extname::text order by e.extname), '{}') from pg_catalog.pg_extension e
    where e.extnamespace = 'public'::regnamespace and e.extname not in ('plpgsql', 'pg_cron')),
  '{}'::text[], 'extension_in_public: no extension is recorded in public but plpgsql and pg_cron');
select is(
  (select count(*)::int from pg_catalog.pg_depend d
     join pg_catalog.pg_extension e on e.oid = d.refobjid
    where d.deptype = 'e' and d.refclassid = 'pg_extension'::regclass and e.extname <> 'plpgsql'
      and ((d.classid = 'pg_proc'::regclass
            and (select pronamespace from pg_catalog.pg_proc where oid = d.objid) = 'public'::regnamespace)
        or (d.classid = 'pg_class'::regclass
            and (select relnamespace from pg_catalog.pg_class where oid = d.objid) = 'public'::regnamespace)
        or (d.classid = 'pg_type'::regclass
            and (select typnamespace from pg_catalog.pg_type where oid = d.objid) = 'public'::regnamespace))),
  0, 'no function, relation or type of any extension lives in public');

-- ── each check names a planted violation (all rolled back) ──────────────────────────
set local search_path = public, extensions;
create table public.lint_probe_no_rls (id int);
create table public.lint_probe_rls (id int, owner uuid);
alter table public.lint_probe_rls enable row level security;
create policy lint_probe_per_row on public.lint_probe_rls for select to authenticated
  using (owner = auth.uid());
create policy lint_probe_half_wrapped on public.lint_probe_rls for update to authenticated
  using (owner = (select auth.uid()))
  with check (owner = (select auth.uid()) and current_setting('request.jwt.claims', true) is not null);
create policy lint_probe_wrapped on public.lint_probe_rls for delete to authenticated
  using (owner = (select auth.uid()) and (select current_setting('request.jwt.claims', true)) is not null
         and (select auth.jwt() ->> 'sub') is not null);
create policy lint_probe_helper on public.lint_probe_rls for insert to authenticated
  with check (public.has_agency_role(owner));
create policy lint_probe_helper_wrapped on public.lint_probe_rls for update to authenticated
  using (owner = any (array(select public.my_agency_ids_as(array['owner', 'admin']))));
create policy lint_probe_helper_correlated on public.lint_probe_rls for select to authenticated
  using ((select public.has_agency_role(owner, array['owner'])));
create view public.lint_probe_definer_view as select id from public.agencies;
grant select on public.lint_probe_definer_view to anon;
create view public.lint_probe_invoker_view with (security_invoker = on) as select id from public.agencies;
grant select on public.lint_probe_invoker_view to anon;
create view public.lint_probe_users as select u.id from auth.users u;
grant select (id) on public.lint_probe_users to authenticated;
create function public.lint_probe_no_search_path() returns int language sql stable as 'select 1';
-- No grant needed: Supabase's default privileges give anon and authenticated EXECUTE on every
-- new function in public, which is why this check exists.
create function public.lint_probe_writer() returns void language sql
  set search_path = '' as 'delete from public.calls where false';
set local search_path = extensions;

select is((select array_agg(object order by object) from lint_rls_disabled),
  array['public.lint_probe_no_rls'], 'self-check: a table without RLS is named');
select is((select array_agg(object order by object) from lint_security_definer_view),
  array['public.lint_probe_definer_view', 'public.lint_probe_users'],
  'self-check: views anon/authenticated may read with their owner''s rights are named (an invoker view is not)');
select is((select array_agg(object order by object) from lint_search_path_mutable),
  array['public.lint_probe_no_search_path()'], 'self-check: a function without a fixed search_path is named');
select is((select array_agg(object order by object) from lint_auth_rls_initplan),
  array['public.lint_probe_rls: lint_probe_half_wrapped', 'public.lint_probe_rls: lint_probe_per_row'],
  'self-check: per-row auth.uid() and current_setting() are named, also beside a wrapped call; wrapped ones are not');
select is((select array_agg(object order by object) from lint_policy_per_row_helper),
  array['public.lint_probe_rls: lint_probe_helper', 'public.lint_probe_rls: lint_probe_helper_correlated'],
  'self-check: a helper called per row is named, also inside (select …) with a column argument; with constants it is not');
select is((select array_agg(object order by object) from lint_auth_users_exposed),
  array['public.lint_probe_users'], 'self-check: a view over auth.users readable by authenticated (one column) is named');
select is((select array_agg(object order by object) from lint_api_state_changing),
  array['anon: public.lint_probe_writer()', 'authenticated: public.lint_probe_writer()'],
  'self-check: a new VOLATILE function, executable by the API roles by default, is named for both');

select * from finish();
rollback;
