-- Sliced walks (20261201000600): an uncapped job is planned as disjoint inclusive time
-- slices, each claimed, walked, fenced, released and failed on its own; the job row keeps
-- the sums. Claims go to the work touched least recently. Times are pinned (p_now); the
-- fixture jobs of the claim-order test are created in 1980 so that no other job of this
-- file comes before them.
begin;
create extension if not exists pgtap with schema extensions;
select plan(144);

-- ── helpers ─────────────────────────────────────────────────────────────────────────
-- Agencies 090a…, holders 090d…, calls 090e…; one job per agency, found by its agency.
create function pg_temp.ag(p_n int) returns uuid language sql immutable as $$
  select ('090a0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create function pg_temp.h(p_n int) returns uuid language sql immutable as $$
  select ('090d0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create function pg_temp.cid(p_n bigint) returns uuid language sql immutable as $$
  select ('090e0000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create function pg_temp.jid(p_n int) returns uuid language sql stable as $$
  select id from public.historical_sync_jobs where agency_id = pg_temp.ag(p_n)
$$;
-- One mapped call as the processor sends it (only id and created set; the rest null).
create function pg_temp.uv(p_ord int, p_n bigint, p_created text) returns jsonb language sql immutable as $$
  select jsonb_build_object(
    'ord', p_ord, 'ultravox_call_id', pg_temp.cid(p_n), 'ultravox_agent_id', null,
    'created_at', p_created, 'joined_at', null, 'ended_at', null, 'end_reason', null,
    'duration_seconds', null, 'billed_duration_seconds', null, 'short_summary', null,
    'summary', null, 'recording_enabled', null, 'metadata', null,
    'raw', jsonb_build_object('callId', pg_temp.cid(p_n), 'created', p_created))
$$;
-- A slice's lease and progress, for compact assertions.
create function pg_temp.slice(p_n int, p_slice int)
returns table (holder uuid, expires_at timestamptz, failed_attempts int, not_before timestamptz,
               last_claimed_at timestamptz, cursor text, done boolean)
language sql stable as $$
  select s.holder, s.expires_at, s.failed_attempts, s.not_before, s.last_claimed_at, s.cursor, s.done
    from public.historical_sync_job_slices s
   where s.job_id = pg_temp.jid(p_n) and s.slice_no = p_slice
$$;

-- ── fixtures ────────────────────────────────────────────────────────────────────────
-- Agencies 1-20, and agency 99 that already holds call 9001 (a webhook call of 1 January).
insert into public.agencies (id, name)
select pg_temp.ag(n), format('Slice agency %s', n)
  from (select generate_series(1, 20) union all select 99) as a(n);
insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
values (pg_temp.ag(99), pg_temp.cid(9001), '2026-01-01T06:00:00Z', '{}', 'webhook');

-- ══ 1. plan_sync_slices ══════════════════════════════════════════════════════════════
-- Four slices of [1 Jan, 5 Jan]: slice 1 starts at date_from, each ends a microsecond before
-- the next starts, the last ends at date_to.
select results_eq(
  $$ select * from public.plan_sync_slices('2026-01-01Z', '2026-01-05Z', 4) $$,
  $$ values (1, '2026-01-01T00:00:00Z'::timestamptz, '2026-01-01T23:59:59.999999Z'::timestamptz),
            (2, '2026-01-02T00:00:00Z'::timestamptz, '2026-01-02T23:59:59.999999Z'::timestamptz),
            (3, '2026-01-03T00:00:00Z'::timestamptz, '2026-01-03T23:59:59.999999Z'::timestamptz),
            (4, '2026-01-04T00:00:00Z'::timestamptz, '2026-01-05T00:00:00Z'::timestamptz) $$,
  'four slices of [1 Jan, 5 Jan] tile the range exactly, inclusive, at microsecond precision');
-- Without date_from the plan spans 365 days back from date_to; the oldest slice is open-ended.
select results_eq(
  $$ select * from public.plan_sync_slices(null, '2026-01-05Z', 4) $$,
  $$ values (1, null::timestamptz, '2025-04-06T05:59:59.999999Z'::timestamptz),
            (2, '2025-04-06T06:00:00Z'::timestamptz, '2025-07-06T11:59:59.999999Z'::timestamptz),
            (3, '2025-07-06T12:00:00Z'::timestamptz, '2025-10-05T17:59:59.999999Z'::timestamptz),
            (4, '2025-10-05T18:00:00Z'::timestamptz, '2026-01-05T00:00:00Z'::timestamptz) $$,
  'with date_from null slice 1 is open-ended (date_from null); the cuts divide the 365 days before date_to');
-- Never more slices than microseconds in the range.
select is(
  (select count(*)::int from public.plan_sync_slices('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000002Z', 8)),
  3, 'a range of 3 microsecond instants asked for 8 slices yields 3 slices');
-- Cuts in whole microseconds: with as many slices as instants, each slice is one instant
-- (cuts computed in floating point once rounded two cuts onto one instant: an inverted slice).
select results_eq(
  $$ select * from public.plan_sync_slices('2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000002Z', 8) $$,
  $$ values (1, '2026-01-01T00:00:00Z'::timestamptz, '2026-01-01T00:00:00Z'::timestamptz),
            (2, '2026-01-01T00:00:00.000001Z'::timestamptz, '2026-01-01T00:00:00.000001Z'::timestamptz),
            (3, '2026-01-01T00:00:00.000002Z'::timestamptz, '2026-01-01T00:00:00.000002Z'::timestamptz) $$,
  'those 3 slices are one microsecond each');
-- Over a handful of ranges, small and large: every plan tiles its range exactly.
select is(
  (select coalesce(array_agg(distinct c.name order by c.name), '{}')
     from (values ('4 of 4 days', '2026-01-01Z'::timestamptz, '2026-01-05Z'::timestamptz, 4),
                  ('4 open-ended', null, '2026-01-05Z', 4),
                  ('8 of 2 µs', '2026-01-01Z', '2026-01-01T00:00:00.000001Z', 8),
                  ('8 of 3 µs', '2026-01-01Z', '2026-01-01T00:00:00.000002Z', 8),
                  ('8 of 4 µs', '2026-01-01Z', '2026-01-01T00:00:00.000003Z', 8),
                  ('8 of 10 µs', '2026-01-01Z', '2026-01-01T00:00:00.000009Z', 8),
                  ('3 of 5 µs', '2026-01-01Z', '2026-01-01T00:00:00.000004Z', 3)) as c(name, lo, hi, n)
     cross join lateral (
       select p.*, lead(p.date_from) over (order by p.slice_no) as next_from,
              count(*) over () as slices
         from public.plan_sync_slices(c.lo, c.hi, c.n) p) p
    where (p.slice_no = 1 and p.date_from is distinct from c.lo)
       or (p.slice_no = p.slices and p.date_to <> c.hi)
       or (p.next_from is not null and p.date_to <> p.next_from - interval '1 microsecond')
       or p.date_from > p.date_to),
  '{}'::text[], 'every plan tiles its range: no gap, no overlap, no inverted slice');
-- So a job over [x, x + 1 µs] (two instants) is created with slices (an inverted slice would
-- violate sync_slices_range_valid, SQLSTATE 23514).
select lives_ok(
  $$ select * from public.create_sync_job(pg_temp.ag(20), '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000001Z',
                                          null, '2026-02-01T09:00:00Z', 'user', false, 8) $$,
  'an uncapped job over [x, x + 1 µs] with 8 slices can be created');

-- ══ 2. create_sync_job(..., p_slices) ════════════════════════════════════════════════
-- Agency 1: uncapped over [1 Jan, 9 Jan], 8 slices: one slice per day.
select results_eq(
  $$ select status::text, date_from, date_to, max_calls, cursor
       from public.create_sync_job(pg_temp.ag(1), '2026-01-01Z', '2026-01-09Z', null,
                                   '2026-02-01T09:00:00Z', 'user', false, 8) $$,
  $$ values ('pending', '2026-01-01Z'::timestamptz, '2026-01-09Z'::timestamptz, null::int, null::text) $$,
  'an uncapped job with p_slices 8 is created pending, as any job');
select results_eq(
  $$ select sliced, catch_up, holder, failed_attempts from public.historical_sync_job_leases
      where job_id = pg_temp.jid(1) $$,
  $$ values (true, false, null::uuid, 0) $$,
  'its engine-state row says sliced (its own lease unused)');
select results_eq(
  $$ select slice_no, date_from, date_to, cursor, done, holder, expires_at, not_before, failed_attempts,
            last_problem, oldest_counted_at, oldest_counted_ids, processed_calls, reported_total,
            expected_calls, in_job_total, last_claimed_at
       from public.historical_sync_job_slices where job_id = pg_temp.jid(1) order by slice_no $$,
  $$ select n, '2026-01-01Z'::timestamptz + (n - 1) * interval '1 day',
            case when n = 8 then '2026-01-09Z'::timestamptz
                 else '2026-01-01Z'::timestamptz + n * interval '1 day' - interval '1 microsecond' end,
            null::text, false, null::uuid, null::timestamptz, null::timestamptz, 0, null::text,
            null::timestamptz, '{}'::uuid[], 0, null::int, null::int, true, null::timestamptz
       from generate_series(1, 8) n $$,
  'and 8 slice rows, one day each (the last ends at date_to), unleased, nothing walked, all in the job total');
-- Capped, catch-up and single-slice jobs walk as one walk.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(2), '2026-01-01Z', '2026-01-09Z', 500, '2026-02-01T09:00:00Z', 'user', false, 8);
     select public.create_sync_job(pg_temp.ag(3), '2026-01-01Z', '2026-01-09Z', null, '2026-02-01T09:00:00Z', 'schedule', true, 8);
     select public.create_sync_job(pg_temp.ag(4), '2026-01-01Z', '2026-01-09Z', null, '2026-02-01T09:00:00Z', 'user', false, 1);
     select public.create_sync_job(pg_temp.ag(5), '2026-01-01Z', '2026-01-09Z', null, '2026-02-01T09:00:00Z') $$,
  'jobs with max_calls 500, with p_catch_up, with p_slices 1, and without p_slices are created');
select results_eq(
  $$ select a.n, l.sliced, l.catch_up,
            (select count(*)::int from public.historical_sync_job_slices s where s.job_id = l.job_id)
       from unnest(array[2, 3, 4, 5]) a(n)
       join public.historical_sync_job_leases l on l.job_id = pg_temp.jid(a.n) order by a.n $$,
  $$ values (2, false, false, 0), (3, false, true, 0), (4, false, false, 0), (5, false, false, 0) $$,
  'none of them is sliced or has slice rows: max_calls set, catch-up, p_slices 1, p_slices by default 1');
-- The job's own claim never takes a sliced job.
select is_empty(
  $$ select * from public.claim_sync_jobs(pg_temp.h(9), 10, 60, pg_temp.jid(1), '2026-02-01T09:30:00Z') $$,
  'claim_sync_jobs does not lease the sliced job, even by id');
select results_eq(
  $$ select j.status::text, j.started_at, l.holder, l.failed_attempts
       from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
      where j.id = pg_temp.jid(1) $$,
  $$ values ('pending', null::timestamptz, null::uuid, 0) $$,
  'the sliced job stays pending, its own lease untaken, no attempt counted');
-- The dispatcher counts a sliced job's slices as work. (20261201000600 alone does not: the
-- dispatcher of 20261201000300 asks only sync_job_is_claimable, which is now false for every
-- sliced job, so it would log no_work; 20261201000700's dispatcher counts slices too.)
-- The other active jobs are cancelled for the call, so that only the sliced job 1 has work.
create temp table dispatch_090 (job_id uuid);
insert into dispatch_090 select id from public.historical_sync_jobs
 where status in ('pending', 'in_progress') and id <> pg_temp.jid(1);
update public.historical_sync_jobs set status = 'cancelled', completed_at = '2026-02-01T09:30:00Z'
 where id in (select job_id from dispatch_090);
create temp table dispatch_090_log as
select public.dispatch_historical_sync('2026-02-01T09:30:00Z') as log_id;
select isnt(
  (select c.result ->> 'reason' from public.cron_job_logs c join dispatch_090_log d on d.log_id = c.id),
  'no_work', 'the dispatcher sees the claimable slices of a sliced job as work');
update public.historical_sync_jobs set status = 'pending', completed_at = null
 where id in (select job_id from dispatch_090);

-- ══ 3. claim_sync_work ═══════════════════════════════════════════════════════════════
-- Job 1 (8 daily slices, pending) claimed once at 10:01: slice 1, its range, an attempt.
select results_eq(
  $$ select * from public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(1), '2026-02-01T10:01:00Z') $$,
  $$ values (pg_temp.jid(1), pg_temp.ag(1), '2026-01-01T00:00:00Z'::timestamptz,
             '2026-01-01T23:59:59.999999Z'::timestamptz, null::text, null::int, 'calls', null::text, 1) $$,
  'a claim of 1 on the sliced job returns slice 1 with the slice''s range (not the job''s) and its cursor');
select results_eq(
  $$ select * from pg_temp.slice(1, 1) $$,
  $$ values (pg_temp.h(1), '2026-02-01T10:03:00Z'::timestamptz, 1, null::timestamptz,
             '2026-02-01T10:01:00Z'::timestamptz, null::text, false) $$,
  'slice 1 is leased to H1 until claim + 120 s, counts 1 attempt, and was last claimed at the claim');
select results_eq(
  $$ select j.status::text, j.started_at, j.last_activity_at, l.holder
       from public.historical_sync_jobs j join public.historical_sync_job_leases l on l.job_id = j.id
      where j.id = pg_temp.jid(1) $$,
  $$ values ('in_progress', '2026-02-01T10:01:00Z'::timestamptz, '2026-02-01T10:01:00Z'::timestamptz, null::uuid) $$,
  'the claim moved the job pending → in_progress, started at the claim; the job''s own lease stays unused');
select is(
  (select count(*)::int from public.historical_sync_job_slices where job_id = pg_temp.jid(1) and holder is not null),
  1, 'only slice 1 is leased');
-- Within a job, the slice claimed longest ago first: never-claimed slices before slice 1,
-- whose lease ran out at 10:03:00.
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(4), 1, 120, pg_temp.jid(1), '2026-02-01T10:03:01Z') $$,
  $$ values (2) $$,
  'after slice 1''s lease ran out, the next claim takes slice 2 (never claimed) before slice 1');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(4), 8, 120, pg_temp.jid(1), '2026-02-01T10:03:01Z') $$,
  $$ values (3), (4), (5), (6), (7), (8), (1) $$,
  'a claim of 8 takes slices 3-8, never claimed, and then slice 1, claimed at 10:01');
select results_eq(
  $$ select j.started_at, s.holder, s.failed_attempts
       from public.historical_sync_jobs j join public.historical_sync_job_slices s on s.job_id = j.id
      where j.id = pg_temp.jid(1) and s.slice_no = 1 $$,
  $$ values ('2026-02-01T10:01:00Z'::timestamptz, pg_temp.h(4), 2) $$,
  'slice 1 is H4''s now, its second attempt counted; started_at is kept from the first claim');

-- Job 6 (8 slices): two claims of 4 by different holders take 8 distinct slices.
select is((select count(*)::int from public.create_sync_job(pg_temp.ag(6), '2026-01-01Z', '2026-01-09Z', null,
             '2026-02-01T09:00:00Z', 'user', false, 8)), 1, 'job 6 is created with 8 slices');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(1), 4, 120, pg_temp.jid(6), '2026-02-01T10:00:00Z') $$,
  $$ values (1), (2), (3), (4) $$, 'H1''s claim of 4 takes slices 1-4');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(2), 4, 120, pg_temp.jid(6), '2026-02-01T10:00:00Z') $$,
  $$ values (5), (6), (7), (8) $$, 'H2''s claim of 4 takes slices 5-8');
select is_empty(
  $$ select * from public.claim_sync_work(pg_temp.h(3), 4, 120, pg_temp.jid(6), '2026-02-01T10:00:00Z') $$,
  'H3''s claim gets nothing: every slice is leased');
select results_eq(
  $$ select holder, array_agg(slice_no order by slice_no), min(failed_attempts), max(failed_attempts)
       from public.historical_sync_job_slices where job_id = pg_temp.jid(6) group by holder order by holder $$,
  $$ values (pg_temp.h(1), array[1, 2, 3, 4], 1, 1), (pg_temp.h(2), array[5, 6, 7, 8], 1, 1) $$,
  'each slice has exactly one holder and one attempt');

-- Least recently touched first. Job 8 (capped: its own walk) was created first, on 1 January
-- 1980, and worked on 3 January; job 7 (sliced) was created on 2 January and never worked.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(8), null, '1980-01-31Z', 100, '1980-01-01T00:00:00Z');
     select public.create_sync_job(pg_temp.ag(7), '1980-01-01Z', '1980-01-09Z', null, '1980-01-02T00:00:00Z',
                                   'user', false, 2);
     update public.historical_sync_jobs set status = 'in_progress', started_at = '1980-01-03T00:00:00Z',
            last_activity_at = '1980-01-03T00:00:00Z', cursor = 'k8'
      where id = pg_temp.jid(8) $$,
  'job 8 (created 1 Jan 1980, last activity 3 Jan) and job 7 (created 2 Jan 1980, never worked)');
select results_eq(
  $$ select id, slice_no from public.claim_sync_work(pg_temp.h(5), 1, 60, null, '2026-02-01T10:00:00Z') $$,
  $$ values (pg_temp.jid(7), 1) $$,
  'a claim of 1 over all jobs takes slice 1 of job 7, never worked, before job 8, older but worked on');
select results_eq(
  $$ select * from public.claim_sync_work(pg_temp.h(5), 10, 60, pg_temp.jid(8), '2026-02-01T10:00:00Z') $$,
  $$ values (pg_temp.jid(8), pg_temp.ag(8), null::timestamptz, '1980-01-31Z'::timestamptz, 'k8', 100,
             'calls', null::text, null::int) $$,
  'with p_job_id only that job is claimed: job 8''s own walk (slice_no null, the job''s range and cursor)');

-- A slice whose attempts ran out fails its job. Job 9 (2 slices): slice 1 is H7's; slice 2
-- has used 3 attempts, the last ending with HTTP 503.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(9), '2026-01-01Z', '2026-01-09Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(7), 1, 3600, pg_temp.jid(9), '2026-02-01T10:00:00Z');
     update public.historical_sync_job_slices set failed_attempts = 3, last_problem = 'Ultravox answered HTTP 503'
      where job_id = pg_temp.jid(9) and slice_no = 2 $$,
  'job 9: slice 1 leased to H7, slice 2 after 3 attempts');
select is_empty(
  $$ select * from public.claim_sync_work(pg_temp.h(6), 4, 60, pg_temp.jid(9), '2026-02-01T10:01:00Z', 3) $$,
  'with p_max_attempts 3 the claim hands out nothing');
select results_eq(
  $$ select status::text, completed_at, last_error_at, error_message from public.historical_sync_jobs
      where id = pg_temp.jid(9) $$,
  $$ values ('failed', '2026-02-01T10:01:00Z'::timestamptz, '2026-02-01T10:01:00Z'::timestamptz,
             'Gave up after 3 attempts in a row without a page landing (slice 2 of the walk); the last problem: Ultravox answered HTTP 503') $$,
  'it failed job 9 instead, naming the attempts, the slice and its last problem');
select results_eq(
  $$ select holder, failed_attempts from pg_temp.slice(9, 2) $$,
  $$ values (null::uuid, 3) $$,
  'slice 2 got no lease and no fourth attempt');

-- ══ 4. record_sync_slice_page: one slice's page ══════════════════════════════════════
-- Job 10: [1 Jan, 5 Jan] in 4 daily slices. H1 claims slice 1 and H2 slice 2 at 10:00.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(10), '2026-01-01Z', '2026-01-05Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 4);
     select public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(10), '2026-02-01T10:00:00Z');
     select public.claim_sync_work(pg_temp.h(2), 1, 120, pg_temp.jid(10), '2026-02-01T10:00:00Z') $$,
  'job 10: slice 1 leased to H1, slice 2 to H2');
-- Slice 1, page 1 at 10:00:05: 1001 at its last microsecond, 1002 of 2 January (slice 2's),
-- 1003, and 9001 (agency 99's). Total 5.
select results_eq(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(10), 1, pg_temp.h(1), null, 'a1',
       jsonb_build_array(pg_temp.uv(0, 1001, '2026-01-01T23:59:59.999999Z'), pg_temp.uv(1, 1002, '2026-01-02T12:00:00Z'),
                         pg_temp.uv(2, 1003, '2026-01-01T12:00:00Z'), pg_temp.uv(3, 9001, '2026-01-01T06:00:00Z')),
       '[]'::jsonb, 5, 120, 2, p_now => '2026-02-01T10:00:05Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 3, 2, 1, 0, null::int, 2, 1, 0, 0,
             '2026-01-01T00:00:00Z'::timestamptz, '2026-01-01T23:59:59.999999Z'::timestamptz,
             null::int, null::timestamptz, null::timestamptz, null::text) $$,
  'slice 1''s page counts the 3 calls inside its range (2 imported, 9001 skipped); 1002 of 2 January is not counted');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(1002)),
  0, 'call 1002, outside slice 1''s range, was not inserted');
select results_eq(
  $$ select cursor, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls, last_activity_at
       from public.historical_sync_jobs where id = pg_temp.jid(10) $$,
  $$ values (null::text, 3, 2, 1, 0, null::int, '2026-02-01T10:00:05Z'::timestamptz) $$,
  'the job adds the counts; its own cursor stays null');
select results_eq(
  $$ select cursor, holder, expires_at, failed_attempts, processed_calls, reported_total, expected_calls,
            oldest_counted_at, oldest_counted_ids
       from public.historical_sync_job_slices where job_id = pg_temp.jid(10) and slice_no = 1 $$,
  $$ values ('a1', pg_temp.h(1), '2026-02-01T10:02:05Z'::timestamptz, 0, 3, 5, 5,
             '2026-01-01T06:00:00Z'::timestamptz, array[pg_temp.cid(9001)]) $$,
  'slice 1''s cursor is a1, its lease renewed, attempts reset, total 5, oldest counted mark 9001 at 06:00');
-- Slice 2, page 1 at 10:00:10 (total 2): two of four slices have reported a total.
select results_eq(
  $$ select processed_calls, imported_calls, total_calls, page_imported, slice_date_from, slice_date_to
       from public.record_sync_slice_page(pg_temp.jid(10), 2, pg_temp.h(2), null, 'b1',
       jsonb_build_array(pg_temp.uv(0, 1002, '2026-01-02T12:00:00Z')), '[]'::jsonb, 2, 120, 2, p_now => '2026-02-01T10:00:10Z') $$,
  $$ values (4, 3, null::int, 1, '2026-01-02T00:00:00Z'::timestamptz, '2026-01-02T23:59:59.999999Z'::timestamptz) $$,
  'slice 2 imports 1002, inside its range; total_calls stays null (slices 3 and 4 have reported none)');

-- ── fences: wrong holder, wrong cursor, cancelled job ──────────────────────────────
-- Job 13: 2 slices, both H1's from 10:00 (until 10:02).
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(13), '2026-01-01Z', '2026-01-03Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 2, 120, pg_temp.jid(13), '2026-02-01T10:00:00Z') $$,
  'job 13: slices 1 and 2 leased to H1');
select is_empty(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(13), 1, pg_temp.h(2), null, 'x1',
       jsonb_build_array(pg_temp.uv(0, 1301, '2026-01-01T12:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:05Z') $$,
  'a page of slice 1 from H2, who does not hold it, returns no row');
select results_eq(
  $$ select holder, expires_at, cursor from pg_temp.slice(13, 1) $$,
  $$ values (pg_temp.h(1), '2026-02-01T10:02:00Z'::timestamptz, null::text) $$,
  'H2''s fenced page leaves H1''s lease and the cursor as they were');
select is_empty(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(13), 1, pg_temp.h(1), 'zz', 'x1',
       jsonb_build_array(pg_temp.uv(0, 1301, '2026-01-01T12:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:05Z') $$,
  'a page of H1 from a cursor the slice is not at (zz; it is at the start) returns no row');
select results_eq(
  $$ select holder, expires_at, failed_attempts, cursor from pg_temp.slice(13, 1) $$,
  $$ values (null::uuid, null::timestamptz, 1, null::text) $$,
  'fenced out on the cursor, H1 dropped its own slice lease (attempts untouched)');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(1301)),
  0, 'neither fenced page stored call 1301');
select results_eq(
  $$ select status::text, cancelled.completed_at from public.cancel_sync_job(pg_temp.jid(13), '2026-02-01T10:00:06Z') cancelled $$,
  $$ values ('cancelled', '2026-02-01T10:00:06Z'::timestamptz) $$,
  'job 13 is cancelled at 10:00:06');
select is_empty(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(13), 2, pg_temp.h(1), null, null,
       jsonb_build_array(pg_temp.uv(0, 1302, '2026-01-02T12:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:07Z') $$,
  'after the cancel, a page of slice 2 by its holder at its cursor returns no row');
select results_eq(
  $$ select j.status::text, j.processed_calls, j.imported_calls, j.total_calls, j.completed_at,
            (select count(*)::int from public.calls c where c.ultravox_call_id = pg_temp.cid(1302)),
            (select s.holder from public.historical_sync_job_slices s where s.job_id = j.id and s.slice_no = 2)
       from public.historical_sync_jobs j where j.id = pg_temp.jid(13) $$,
  $$ values ('cancelled', 0, 0, null::int, '2026-02-01T10:00:06Z'::timestamptz, 0, null::uuid) $$,
  'nothing of that page landed: the job stays cancelled with zero counters, call 1302 not stored, H1''s lease on slice 2 dropped');
select is_empty(
  $$ select * from public.claim_sync_work(pg_temp.h(3), 4, 60, pg_temp.jid(13), '2026-02-01T10:05:00Z') $$,
  'no slice of the cancelled job is claimed');

-- ══ 5. a slice done: go on, split, complete ══════════════════════════════════════════
-- Slice 2's last page at 10:00:15 (total 99, ignored): H2 goes on with slice 3, never claimed.
select results_eq(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(10), 2, pg_temp.h(2), 'b1', null,
       jsonb_build_array(pg_temp.uv(0, 2002, '2026-01-02T06:00:00Z')), '[]'::jsonb, 99, 120, 2, p_now => '2026-02-01T10:00:15Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 5, 4, 1, 0, null::int, 1, 0, 0, 0,
             '2026-01-02T00:00:00Z'::timestamptz, '2026-01-02T23:59:59.999999Z'::timestamptz,
             3, '2026-01-03T00:00:00Z'::timestamptz, '2026-01-03T23:59:59.999999Z'::timestamptz,
             null::text) $$,
  'slice 2 done: the step returns slice 3, its range and its cursor (none: never walked) as the next work');
select results_eq(
  $$ select s.slice_no, s.done, s.holder, s.expires_at, s.failed_attempts, s.cursor, s.reported_total, s.last_claimed_at
       from public.historical_sync_job_slices s where s.job_id = pg_temp.jid(10) and s.slice_no in (2, 3) order by 1 $$,
  $$ values (2, true, null::uuid, null::timestamptz, 0, null::text, 2, '2026-02-01T10:00:00Z'::timestamptz),
            (3, false, pg_temp.h(2), '2026-02-01T10:02:15Z'::timestamptz, 1, null, null, '2026-02-01T10:00:15Z') $$,
  'slice 2 is done and unleased (its first total 2 kept); slice 3 is leased to H2 with an attempt counted');
-- Slice 3 in one page (total 1): H2 goes on with slice 4.
select results_eq(
  $$ select processed_calls, total_calls, next_slice_no, next_date_from, next_date_to
       from public.record_sync_slice_page(pg_temp.jid(10), 3, pg_temp.h(2), null, null,
       jsonb_build_array(pg_temp.uv(0, 3001, '2026-01-03T08:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:20Z') $$,
  $$ values (6, null::int, 4, '2026-01-04T00:00:00Z'::timestamptz, '2026-01-05T00:00:00Z'::timestamptz) $$,
  'slice 3 done: on to slice 4; total_calls still null (slice 4 has reported none)');
-- Slice 4, page 1 (total 1, a call at exactly date_to): every slice has reported.
select results_eq(
  $$ select processed_calls, imported_calls, total_calls, page_imported, next_slice_no
       from public.record_sync_slice_page(pg_temp.jid(10), 4, pg_temp.h(2), null, 'd1',
       jsonb_build_array(pg_temp.uv(0, 4001, '2026-01-05T00:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:25Z') $$,
  $$ values (7, 6, 9, 1, null::int) $$,
  'once all four slices reported a total, total_calls is their sum 5 + 2 + 1 + 1 = 9');
-- Slice 4's last page at 10:00:30: no slice is unclaimed (slice 1 is H1's until 10:02:05), so
-- the largest remainder is split: slice 1, 5 expected - 3 processed = 2 >= p_min_split_calls 2.
-- It walked down to 06:00, so its remainder [00:00, 06:00) is cut at 03:00.
select results_eq(
  $$ select * from public.record_sync_slice_page(pg_temp.jid(10), 4, pg_temp.h(2), 'd1', null,
       '[]'::jsonb, '[]'::jsonb, null, 120, 2, p_now => '2026-02-01T10:00:30Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 7, 6, 1, 0, 9, 0, 0, 0, 0,
             '2026-01-04T00:00:00Z'::timestamptz, '2026-01-05T00:00:00Z'::timestamptz,
             5, '2026-01-01T00:00:00Z'::timestamptz, '2026-01-01T02:59:59.999999Z'::timestamptz,
             null::text) $$,
  'slice 4 done with nothing unclaimed: slice 1 is split and its older half, new slice 5, is the next work');
select results_eq(
  $$ select slice_no, date_from, date_to, cursor, holder, expires_at, failed_attempts, processed_calls,
            reported_total, expected_calls, in_job_total, last_claimed_at
       from public.historical_sync_job_slices where job_id = pg_temp.jid(10) and slice_no in (1, 5) order by 1 $$,
  $$ values (1, '2026-01-01T03:00:00Z'::timestamptz, '2026-01-01T23:59:59.999999Z'::timestamptz, 'a1',
             pg_temp.h(1), '2026-02-01T10:02:05Z'::timestamptz, 0, 3, 5, 4, true, '2026-02-01T10:00:00Z'::timestamptz),
            (5, '2026-01-01T00:00:00Z', '2026-01-01T02:59:59.999999Z', null,
             pg_temp.h(2), '2026-02-01T10:02:30Z', 1, 0, null, 1, false, '2026-02-01T10:00:30Z') $$,
  'slice 1 now starts at the midpoint 03:00 (H1 keeps it, at a1); slice 5 = [00:00, 03:00 - 1 µs], H2''s, expecting 1, not in the job total');
select is(
  (select total_calls from public.historical_sync_jobs where id = pg_temp.jid(10)),
  9, 'the split leaves total_calls at 9 (slice 5''s calls were in slice 1''s total)');
-- Slice 1's last page at 10:00:35, counted by its range as it is now: 1004 (04:00) counts,
-- 1005 (02:00, slice 5's) does not. Nothing is unclaimed and slice 5's remainder (1) is below
-- p_min_split_calls: nothing to go on with; the job is not complete while slice 5 is open.
select results_eq(
  $$ select status, processed_calls, imported_calls, page_imported, page_skipped, slice_date_from, slice_date_to,
            next_slice_no, next_date_from, next_date_to
       from public.record_sync_slice_page(pg_temp.jid(10), 1, pg_temp.h(1), 'a1', null,
       jsonb_build_array(pg_temp.uv(0, 1004, '2026-01-01T04:00:00Z'), pg_temp.uv(1, 1005, '2026-01-01T02:00:00Z')),
       '[]'::jsonb, null, 120, 2, p_now => '2026-02-01T10:00:35Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 8, 7, 1, 0, '2026-01-01T03:00:00Z'::timestamptz,
             '2026-01-01T23:59:59.999999Z'::timestamptz, null::int, null::timestamptz, null::timestamptz) $$,
  'slice 1 counts only 1004 in its narrowed range; nothing left to take or split: next_slice_no null, job in progress');
select is(
  (select count(*)::int from public.calls where ultravox_call_id = pg_temp.cid(1005)),
  0, 'call 1005, now slice 5''s, was not inserted by slice 1');
-- Slice 5, the last open slice, in one page at 10:00:40: the job completes.
select results_eq(
  $$ select status, processed_calls, imported_calls, skipped_calls, failed_calls, total_calls, page_imported, next_slice_no
       from public.record_sync_slice_page(pg_temp.jid(10), 5, pg_temp.h(2), null, null,
       jsonb_build_array(pg_temp.uv(0, 1005, '2026-01-01T02:00:00Z')), '[]'::jsonb, 1, 120, 2, p_now => '2026-02-01T10:00:40Z') $$,
  $$ values ('completed'::public.sync_job_status, 9, 8, 1, 0, 9, 1, null::int) $$,
  'slice 5 imports 1005; its total does not change total_calls; the last slice done completes the job');
select results_eq(
  $$ select j.cursor, j.completed_at, j.last_activity_at,
            (select count(*)::int from public.historical_sync_job_slices s where s.job_id = j.id and s.done),
            (select count(*)::int from public.historical_sync_job_slices s where s.job_id = j.id and s.holder is not null),
            (select count(*)::int from public.calls c where c.historical_sync_job_id = j.id)
       from public.historical_sync_jobs j where j.id = pg_temp.jid(10) $$,
  $$ values (null::text, '2026-02-01T10:00:40Z'::timestamptz, '2026-02-01T10:00:40Z'::timestamptz, 5, 0, 8) $$,
  'job 10 completed at 10:00:40 with all 5 slices done and unleased, and exactly its 8 imported calls');

-- The default p_min_split_calls (200) splits no small remainder. Job 11: [1 Jan, 3 Jan] in 2
-- slices; slice 2 (H2) reported 150 and walked 1; slice 1 (H1) finishes.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(11), '2026-01-01Z', '2026-01-03Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(11), '2026-02-01T10:00:00Z');
     select public.claim_sync_work(pg_temp.h(2), 1, 120, pg_temp.jid(11), '2026-02-01T10:00:00Z');
     select public.record_sync_slice_page(pg_temp.jid(11), 2, pg_temp.h(2), null, 'x1',
       jsonb_build_array(pg_temp.uv(0, 1101, '2026-01-02T12:00:00Z')), '[]'::jsonb, 150, 120, p_now => '2026-02-01T10:00:05Z') $$,
  'job 11: slice 2 has 149 calls left to walk');
select results_eq(
  $$ select status, total_calls, next_slice_no
       from public.record_sync_slice_page(pg_temp.jid(11), 1, pg_temp.h(1), null, null, '[]'::jsonb, '[]'::jsonb, 0, 120,
                                          p_now => '2026-02-01T10:00:10Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 150, null::int) $$,
  'slice 1 done: 149 left in slice 2 is under the default 200, so nothing is split (next_slice_no null)');
select is(
  (select count(*)::int from public.historical_sync_job_slices where job_id = pg_temp.jid(11)),
  2, 'job 11 still has its 2 slices');

-- The hand-on keeps the give-up rule. Job 12 (3 slices): slice 3's 10 leases (the default
-- SYNC_MAX_ATTEMPTS) all ran out without a page landing, so a claim fails the job; when slice 1
-- is done, record_sync_slice_page does not hand slice 3 on as an 11th attempt.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(12), '2026-01-01Z', '2026-01-04Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 3);
     select public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(12), '2026-02-01T10:00:00Z');
     select public.claim_sync_work(pg_temp.h(2), 1, 3600, pg_temp.jid(12), '2026-02-01T10:00:00Z');
     update public.historical_sync_job_slices set failed_attempts = 10, last_claimed_at = '2026-02-01T09:50:00Z'
      where job_id = pg_temp.jid(12) and slice_no = 3 $$,
  'job 12: slice 1 H1''s, slice 2 H2''s, slice 3 unleased after 10 attempts');
select results_eq(
  $$ select status, processed_calls from public.record_sync_slice_page(pg_temp.jid(12), 1, pg_temp.h(1), null, null,
       '[]'::jsonb, '[]'::jsonb, 0, 120, 2, p_now => '2026-02-01T10:00:05Z') $$,
  $$ values ('in_progress'::public.sync_job_status, 0) $$,
  'slice 1''s last page lands');
select results_eq(
  $$ select holder, failed_attempts from pg_temp.slice(12, 3) $$,
  $$ values (null::uuid, 10) $$,
  'slice 3, its attempts run out, is not handed on to the worker of a finished slice');

-- A slice a walker left mid-walk (its lease ran out at its cursor) is handed on at that
-- cursor, not from its start. Job 16 (2 slices): H2 walked slice 2 to cursor k2 and died.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(16), '2026-01-01Z', '2026-01-03Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(16), '2026-02-01T10:00:00Z');
     select public.claim_sync_work(pg_temp.h(2), 1, 60, pg_temp.jid(16), '2026-02-01T10:00:00Z');
     select public.record_sync_slice_page(pg_temp.jid(16), 2, pg_temp.h(2), null, 'k2', '[]'::jsonb, '[]'::jsonb,
                                          0, 60, 2, p_now => '2026-02-01T10:00:01Z') $$,
  'job 16: slice 1 H1''s; slice 2 walked by H2 to cursor k2, its lease until 10:01:01');
select results_eq(
  $$ select next_slice_no, next_cursor from public.record_sync_slice_page(pg_temp.jid(16), 1, pg_temp.h(1), null, null,
       '[]'::jsonb, '[]'::jsonb, 0, 120, 2, p_now => '2026-02-01T10:05:00Z') $$,
  $$ values (2, 'k2'::text) $$,
  'slice 1 done after H2''s lease ran out: slice 2 is handed on with its cursor k2');
select results_eq(
  $$ select holder, cursor, failed_attempts from pg_temp.slice(16, 2) $$,
  $$ values (pg_temp.h(1), 'k2'::text, 1) $$,
  'slice 2 is H1''s now, still at k2, with the hand-on counted as an attempt (the page before reset them)');

-- ══ 6. release, renew, error, failure ═══════════════════════════════════════════════
-- Job 14: 2 slices; H1 claims slice 1 at 10:00 (60 s).
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(14), '2026-01-01Z', '2026-01-03Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 1, 60, pg_temp.jid(14), '2026-02-01T10:00:00Z') $$,
  'job 14: slice 1 leased to H1, 1 attempt');
-- Release with not_before: a Retry-After too long to wait out.
select is_empty(
  $$ select * from public.release_sync_slice(pg_temp.jid(14), 1, pg_temp.h(2), '2026-02-01T10:10:00Z') $$,
  'H2 cannot release the slice H1 holds');
select results_eq(
  $$ select slice_no, holder, expires_at, failed_attempts, not_before
       from public.release_sync_slice(pg_temp.jid(14), 1, pg_temp.h(1), '2026-02-01T10:10:00Z') $$,
  $$ values (1, null::uuid, null::timestamptz, 0, '2026-02-01T10:10:00Z'::timestamptz) $$,
  'H1 releases slice 1 with not_before 10:10: lease dropped, the claim''s attempt taken back (1 → 0)');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(2), 2, 3600, pg_temp.jid(14), '2026-02-01T10:09:59.999999Z') $$,
  $$ values (2) $$,
  'a microsecond before its not_before slice 1 is not claimable: a claim of 2 takes only slice 2');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(2), 2, 60, pg_temp.jid(14), '2026-02-01T10:10:00Z') $$,
  $$ values (1) $$,
  'at exactly its not_before slice 1 is claimed');
select results_eq(
  $$ select holder, expires_at, failed_attempts, not_before from pg_temp.slice(14, 1) $$,
  $$ values (pg_temp.h(2), '2026-02-01T10:11:00Z'::timestamptz, 1, null::timestamptz) $$,
  'that claim clears not_before and counts an attempt again (0 → 1)');
-- Renew: only our own lease.
select is_empty(
  $$ select * from public.renew_sync_slice_lease(pg_temp.jid(14), 1, pg_temp.h(1), 300, '2026-02-01T10:10:30Z') $$,
  'H1, who no longer holds slice 1, cannot renew it');
select results_eq(
  $$ select slice_no, holder, expires_at from public.renew_sync_slice_lease(pg_temp.jid(14), 1, pg_temp.h(2), 300,
                                                                            '2026-02-01T10:10:30Z') $$,
  $$ values (1, pg_temp.h(2), '2026-02-01T10:15:30Z'::timestamptz) $$,
  'H2 renews its lease on slice 1 to 10:10:30 + 300 s');
select results_eq(
  $$ select slice_no, expires_at from public.historical_sync_job_slices where job_id = pg_temp.jid(14) order by 1 $$,
  $$ values (1, '2026-02-01T10:15:30Z'::timestamptz), (2, '2026-02-01T11:09:59.999999Z'::timestamptz) $$,
  'the renewal extended slice 1 only');
-- A transient error: noted, the slice released, the job goes on; at p_max_attempts it fails.
select is_empty(
  $$ select * from public.record_sync_slice_error(pg_temp.jid(14), 1, pg_temp.h(1), null, 'x', 2, '2026-02-01T10:10:40Z') $$,
  'an error from H1, who does not hold slice 1, returns no row');
select is_empty(
  $$ select * from public.record_sync_slice_error(pg_temp.jid(14), 1, pg_temp.h(2), 'c9', 'x', 2, '2026-02-01T10:10:40Z') $$,
  'an error at a cursor the slice is not at returns no row');
select results_eq(
  $$ select status::text, error_message, last_error_at, completed_at
       from public.record_sync_slice_error(pg_temp.jid(14), 1, pg_temp.h(2), null, 'Ultravox answered HTTP 503', 2,
                                           '2026-02-01T10:10:40Z') $$,
  $$ values ('in_progress', 'Ultravox answered HTTP 503', '2026-02-01T10:10:40Z'::timestamptz, null::timestamptz) $$,
  'an error in attempt 1 of 2 is noted on the job, which stays in progress');
select results_eq(
  $$ select s.holder, s.expires_at, s.failed_attempts, s.last_problem
       from public.historical_sync_job_slices s where s.job_id = pg_temp.jid(14) and s.slice_no = 1 $$,
  $$ values (null::uuid, null::timestamptz, 1, 'Ultravox answered HTTP 503') $$,
  'slice 1 is released, keeps the problem as last_problem and its 1 attempt');
select results_eq(
  $$ select slice_no from public.claim_sync_work(pg_temp.h(3), 1, 60, pg_temp.jid(14), '2026-02-01T10:11:00Z') $$,
  $$ values (1) $$,
  'H3 claims slice 1 again (slice 2 is H2''s)');
select is((select failed_attempts from pg_temp.slice(14, 1)), 2, 'that claim is slice 1''s attempt 2');
select results_eq(
  $$ select status::text, error_message, last_error_at, completed_at
       from public.record_sync_slice_error(pg_temp.jid(14), 1, pg_temp.h(3), null, 'connection reset', 2,
                                           '2026-02-01T10:11:01Z') $$,
  $$ values ('failed', 'connection reset (gave up after 2 attempts)', '2026-02-01T10:11:01Z'::timestamptz,
             '2026-02-01T10:11:01Z'::timestamptz) $$,
  'an error in attempt 2 of 2 fails the job, saying it gave up');
select results_eq(
  $$ select holder, failed_attempts from pg_temp.slice(14, 1) $$,
  $$ values (null::uuid, 2) $$,
  'and releases slice 1');
-- A permanent problem of one slice fails the whole job. Job 15: 2 slices, H1 holds slice 1.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(15), '2026-01-01Z', '2026-01-03Z', null, '2026-02-01T09:00:00Z',
                                   'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 1, 60, pg_temp.jid(15), '2026-02-01T10:00:00Z') $$,
  'job 15: slice 1 leased to H1');
select is_empty(
  $$ select * from public.fail_sync_slice(pg_temp.jid(15), 1, pg_temp.h(2), null, 'x', '2026-02-01T10:00:01Z') $$,
  'H2, who does not hold slice 1, cannot fail the job through it');
select is(
  (select status::text from public.historical_sync_jobs where id = pg_temp.jid(15)),
  'in_progress', 'so job 15 is still in progress');
select results_eq(
  $$ select status::text, error_message, last_error_at, completed_at
       from public.fail_sync_slice(pg_temp.jid(15), 1, pg_temp.h(1), null, 'Ultravox answered HTTP 401: the key was revoked',
                                   '2026-02-01T10:00:02Z') $$,
  $$ values ('failed', 'Ultravox answered HTTP 401: the key was revoked', '2026-02-01T10:00:02Z'::timestamptz,
             '2026-02-01T10:00:02Z'::timestamptz) $$,
  'H1 fails job 15 through slice 1: failed, completed_at and the message');
select results_eq(
  $$ select holder, expires_at from pg_temp.slice(15, 1) $$,
  $$ values (null::uuid, null::timestamptz) $$,
  'the failing slice is released');
select is_empty(
  $$ select * from public.claim_sync_work(pg_temp.h(3), 4, 60, pg_temp.jid(15), '2026-02-01T10:05:00Z') $$,
  'no slice of the failed job is claimed');

-- sync_slice_is_claimable on rows built in memory, T = 2026-02-01 10:00:00Z.
select is(
  public.sync_slice_is_claimable(jsonb_populate_record(null::public.historical_sync_jobs, c.job),
                                 jsonb_populate_record(null::public.historical_sync_job_slices, c.slice),
                                 '2026-02-01T10:00:00Z'),
  c.expected, c.name)
  from (values
    (1, '{"status": "pending"}'::jsonb, '{"done": false}'::jsonb, true, 'claimable: a fresh slice of a pending job'),
    (2, '{"status": "in_progress"}', '{"done": false, "holder": "090d0000-0000-4000-8000-000000000009", "expires_at": "2026-02-01T09:59:59.999999Z"}',
     true, 'claimable: a slice whose lease expired a microsecond ago'),
    (3, '{"status": "in_progress"}', '{"done": false, "holder": "090d0000-0000-4000-8000-000000000009", "expires_at": "2026-02-01T10:00:00Z"}',
     false, 'not claimable: a lease expiring at exactly now is still live'),
    (4, '{"status": "in_progress"}', '{"done": false, "not_before": "2026-02-01T10:00:00Z"}', true,
     'claimable: a not_before of exactly now has passed'),
    (5, '{"status": "in_progress"}', '{"done": false, "not_before": "2026-02-01T10:00:00.000001Z"}', false,
     'not claimable: a not_before one microsecond ahead'),
    (6, '{"status": "in_progress"}', '{"done": true}', false, 'not claimable: a done slice'),
    (7, '{"status": "completed"}', '{"done": false}', false, 'not claimable: a slice of a completed job'),
    (8, '{"status": "cancelled"}', '{"done": false}', false, 'not claimable: a slice of a cancelled job')
  ) as c(n, job, slice, expected, name)
 order by c.n;

-- ══ 6b. objects that cannot be stored, by range ═══════════════════════════════════════
-- Job 17 (2 slices of 1 and 2 January): slice 1's page lists three unstorable objects: one
-- of 1 January, one of 2 January (slice 2's: a split's stale page can list it), one whose
-- created is unreadable. The second is left to slice 2.
select lives_ok(
  $$ select public.create_sync_job(pg_temp.ag(17), '2026-01-01Z', '2026-01-02T23:59:59.999999Z', null,
                                   '2026-02-01T09:00:00Z', 'user', false, 2);
     select public.claim_sync_work(pg_temp.h(1), 1, 120, pg_temp.jid(17), '2026-02-01T10:00:00Z') $$,
  'job 17: slice 1 leased to H1');
select results_eq(
  $$ select page_failed, failed_calls, processed_calls
       from public.record_sync_slice_page(pg_temp.jid(17), 1, pg_temp.h(1), null, 'q1', '[]'::jsonb,
         jsonb_build_array(
           jsonb_build_object('ord', 0, 'call_id', 'in-range', 'reason', 'bad', 'created', '2026-01-01T08:00:00Z'),
           jsonb_build_object('ord', 1, 'call_id', 'slice-2s', 'reason', 'bad', 'created', '2026-01-02T08:00:00Z'),
           jsonb_build_object('ord', 2, 'call_id', 'no-created', 'reason', 'bad')),
         null, 120, 2, p_now => '2026-02-01T10:00:05Z') $$,
  $$ values (2, 2, 2) $$,
  'slice 1 counts 2 failed: the one of its day and the one without a readable created, not slice 2''s');

-- ══ 7. definitions and privileges ═══════════════════════════════════════════════════
-- The steps are security definer; the two pure helpers (like sync_job_is_claimable) are
-- security invoker. Every one has an empty search_path.
select is(
  (select array_agg(p.proname::text || ':' || case when p.prosecdef then 'definer' else 'invoker' end
                    || ':' || coalesce(array_to_string(p.proconfig, ','), 'no config') order by p.proname)
     from pg_proc p
    where p.pronamespace = 'public'::regnamespace
      and p.proname in ('plan_sync_slices', 'create_sync_job', 'sync_slice_is_claimable', 'claim_sync_slice',
                        'claim_sync_work', 'sync_import_page', 'sync_count_page', 'record_sync_slice_page',
                        'renew_sync_slice_lease', 'release_sync_slice', 'sync_slice_fence',
                        'record_sync_slice_error', 'fail_sync_slice')),
  array['claim_sync_slice:definer:search_path=""', 'claim_sync_work:definer:search_path=""',
        'create_sync_job:definer:search_path=""', 'fail_sync_slice:definer:search_path=""',
        'plan_sync_slices:invoker:search_path=""', 'record_sync_slice_error:definer:search_path=""',
        'record_sync_slice_page:definer:search_path=""', 'release_sync_slice:definer:search_path=""',
        'renew_sync_slice_lease:definer:search_path=""', 'sync_count_page:definer:search_path=""',
        'sync_import_page:definer:search_path=""', 'sync_slice_fence:definer:search_path=""',
        'sync_slice_is_claimable:invoker:search_path=""'],
  'exactly one of each new function; the steps security definer, the pure helpers invoker; all with an empty search_path');
select function_privs_are('public', f.name, f.args, r.role, e.expected,
                          format('%s %s execute %s', r.role, case when e.expected = '{}' then 'may not' else 'may' end, f.name))
  from (values
    (1, 'plan_sync_slices', array['timestamp with time zone', 'timestamp with time zone', 'integer']),
    (2, 'create_sync_job', array['uuid', 'timestamp with time zone', 'timestamp with time zone', 'integer',
                                 'timestamp with time zone', 'text', 'boolean', 'integer']),
    (3, 'sync_slice_is_claimable', array['historical_sync_jobs', 'historical_sync_job_slices', 'timestamp with time zone']),
    (4, 'claim_sync_slice', array['uuid', 'uuid', 'integer', 'integer', 'timestamp with time zone', 'integer']),
    (5, 'claim_sync_work', array['uuid', 'integer', 'integer', 'uuid', 'timestamp with time zone', 'integer']),
    (6, 'sync_import_page', array['historical_sync_jobs', 'timestamp with time zone', 'timestamp with time zone',
                                  'timestamp with time zone', 'uuid[]', 'text[]', 'text', 'jsonb', 'jsonb',
                                  'timestamp with time zone']),
    (7, 'sync_count_page', array['uuid', 'sync_page_import', 'text', 'integer', 'boolean', 'timestamp with time zone']),
    (8, 'record_sync_slice_page', array['uuid', 'integer', 'uuid', 'text', 'text', 'jsonb', 'jsonb', 'integer',
                                        'integer', 'integer', 'integer', 'boolean', 'timestamp with time zone']),
    (9, 'renew_sync_slice_lease', array['uuid', 'integer', 'uuid', 'integer', 'timestamp with time zone']),
    (10, 'release_sync_slice', array['uuid', 'integer', 'uuid', 'timestamp with time zone']),
    (11, 'sync_slice_fence', array['uuid', 'integer', 'uuid', 'text']),
    (12, 'record_sync_slice_error', array['uuid', 'integer', 'uuid', 'text', 'text', 'integer', 'timestamp with time zone']),
    (13, 'fail_sync_slice', array['uuid', 'integer', 'uuid', 'text', 'text', 'timestamp with time zone'])
  ) as f(n, name, args)
  cross join (values (1, 'service_role'::name, array['EXECUTE']), (2, 'anon', '{}'::text[]),
                     (3, 'authenticated', '{}'::text[])) as r(k, role, privs)
 -- the two unfenced helpers are for the page steps alone: no API role may execute them
 cross join lateral (select case when f.name in ('sync_import_page', 'sync_count_page')
                                 then '{}'::text[] else r.privs end as expected) e
 order by f.n, r.k;
select table_privs_are('public', 'historical_sync_job_slices', r.role, '{}'::text[],
                       format('%s has no privilege on historical_sync_job_slices', r.role))
  from (values ('anon'::name), ('authenticated')) as r(role);

select * from finish();
rollback;
