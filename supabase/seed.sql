-- Local demo data only (applied by `deno task db:reset` / `supabase db reset`).
-- One agency with an owner, an admin and a member, with fixed ids so the README's curl
-- walkthrough can name them. No Ultravox key: `deno task demo` sets one for its stand-in.

insert into auth.users (id, aud, role, email, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
values
  ('11111111-1111-4111-8111-111111111111', 'authenticated', 'authenticated', 'owner@demo.agency',
   '{"provider": "email"}', '{}', now(), now()),
  ('22222222-2222-4222-8222-222222222222', 'authenticated', 'authenticated', 'admin@demo.agency',
   '{"provider": "email"}', '{}', now(), now()),
  ('33333333-3333-4333-8333-333333333333', 'authenticated', 'authenticated', 'member@demo.agency',
   '{"provider": "email"}', '{}', now(), now())
on conflict (id) do nothing;

insert into public.agencies (id, name)
values ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'Demo Agency')
on conflict (id) do nothing;

insert into public.agency_members (agency_id, user_id, role)
values
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '11111111-1111-4111-8111-111111111111', 'owner'),
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '22222222-2222-4222-8222-222222222222', 'admin'),
  ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', '33333333-3333-4333-8333-333333333333', 'member')
on conflict do nothing;
