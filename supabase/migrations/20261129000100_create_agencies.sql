-- Agencies and their members: the tenant boundary every other table is scoped by.

-- ── Tables ─────────────────────────────────────────────────────────────────────────
create table public.agencies (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  created_at timestamptz not null default now()
);
comment on table public.agencies is 'A customer agency; the unit of tenancy.';

create table public.agency_members (
  agency_id uuid not null references public.agencies (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null constraint agency_members_role_check check (role in ('owner', 'admin', 'member')),
  created_at timestamptz not null default now(),
  primary key (agency_id, user_id)
);
create index idx_agency_members_user on public.agency_members (user_id);
comment on table public.agency_members is
  'Who belongs to an agency. owner and admin may start and cancel syncs; member may watch them.';

-- ── Membership helper used by every policy ─────────────────────────────────────────
-- security definer so policies on agency_members itself do not recurse.
create or replace function public.has_agency_role(p_agency_id uuid, p_roles text[] default null)
returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
      from public.agency_members m
     where m.agency_id = p_agency_id
       and m.user_id = (select auth.uid())
       and (p_roles is null or m.role = any (p_roles))
  );
$$;
comment on function public.has_agency_role is
  'True when the calling user (auth.uid()) is a member of the agency, optionally with one of p_roles.';
revoke execute on function public.has_agency_role(uuid, text[]) from public, anon;
grant execute on function public.has_agency_role(uuid, text[]) to authenticated, service_role;

-- ── Row level security ─────────────────────────────────────────────────────────────
alter table public.agencies enable row level security;
alter table public.agency_members enable row level security;

create policy "Members can see their agencies" on public.agencies
  for select to authenticated using (public.has_agency_role(id));

create policy "Members can see the members of their agencies" on public.agency_members
  for select to authenticated using (public.has_agency_role(agency_id));
