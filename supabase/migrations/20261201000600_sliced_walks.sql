-- Sliced walks (docs/ARCHITECTURE.md §5 "Sliced walks") and claims that go to the work
-- touched least recently (§7). Replaces record_sync_page, create_sync_job and
-- sync_job_is_claimable of 20261201000200 (released migrations are never edited).
--
--   * An uncapped job started with slices > 1 is walked as disjoint, inclusive time slices,
--     each with its own cursor, lease, attempts, Retry-After and oldest counted mark, in
--     historical_sync_job_slices. The job row keeps the sums; its own cursor stays null.
--   * What one page imports is said once (sync_import_page), for a job's walk and a slice's.
--   * Lock order, everywhere: the job row, then slice rows, then the engine-state row. A page
--     step locks the job row first (so a cancel waits for it, and steps of one job never
--     interleave their counter updates); a claim locks only slices (skip locked) and touches
--     the job row only while it is pending, when no step can hold it.

-- ── the slices ──────────────────────────────────────────────────────────────────────
alter table public.historical_sync_job_leases
  add column sliced boolean not null default false,
  add constraint sync_job_leases_sliced_not_catch_up check (not (sliced and catch_up));
comment on column public.historical_sync_job_leases.sliced is
  'The job is walked as time slices (historical_sync_job_slices); its own lease and cursor are unused.';

create table public.historical_sync_job_slices (
  job_id uuid not null references public.historical_sync_jobs (id) on delete cascade,
  slice_no integer not null,
  date_from timestamptz,
  date_to timestamptz not null,
  cursor text,
  done boolean not null default false,
  holder uuid,
  expires_at timestamptz,
  not_before timestamptz,
  failed_attempts integer not null default 0,
  last_problem text,
  oldest_counted_at timestamptz,
  oldest_counted_ids uuid[] not null default '{}',
  processed_calls integer not null default 0,
  reported_total integer,
  expected_calls integer,
  in_job_total boolean not null default true,
  last_claimed_at timestamptz,
  primary key (job_id, slice_no),
  constraint sync_slices_range_valid check (date_from is null or date_from <= date_to),
  constraint sync_slices_holder_has_expiry check ((holder is null) = (expires_at is null)),
  constraint sync_slices_done_unleased check (not (done and holder is not null)),
  constraint sync_slices_counts_positive check (processed_calls >= 0 and failed_attempts >= 0)
);
comment on table public.historical_sync_job_slices is
  'The time slices a sliced job is walked in, each claimed and walked on its own. Backend only.';
comment on column public.historical_sync_job_slices.date_from is
  'Inclusive lower bound on created; null: open-ended (the oldest slice of a job without date_from).';
comment on column public.historical_sync_job_slices.date_to is 'Inclusive upper bound on created.';
comment on column public.historical_sync_job_slices.cursor is 'The cursor of the slice''s next page.';
comment on column public.historical_sync_job_slices.done is 'The slice''s walk reached its end.';
comment on column public.historical_sync_job_slices.reported_total is
  'The first total Ultravox reported for the slice''s range.';
comment on column public.historical_sync_job_slices.expected_calls is
  'The calls the slice is expected to hold (its total, less what a split moved away): sizes splits.';
comment on column public.historical_sync_job_slices.in_job_total is
  'Its reported_total is part of the job''s total_calls (false for a split''s new slice: its calls were counted in the total of the slice it came from).';
comment on column public.historical_sync_job_slices.last_claimed_at is
  'When a worker last claimed the slice: claims go to the work touched least recently.';
alter table public.historical_sync_job_slices enable row level security;
revoke all on public.historical_sync_job_slices from anon, authenticated;

-- ── claimable, said once ────────────────────────────────────────────────────────────
create or replace function public.sync_job_is_claimable(
  j public.historical_sync_jobs,
  l public.historical_sync_job_leases,
  p_now timestamptz
) returns boolean
language sql stable set search_path = '' as $$
  select j.status in ('pending', 'in_progress')
     and l.sliced is not true                                  -- its slices are claimed instead
     and (l.holder is null or l.expires_at < p_now)            -- no live lease
     and (l.not_before is null or l.not_before <= p_now);      -- no Retry-After pending
$$;

create function public.sync_slice_is_claimable(
  j public.historical_sync_jobs,
  s public.historical_sync_job_slices,
  p_now timestamptz
) returns boolean
language sql stable set search_path = '' as $$
  select j.status in ('pending', 'in_progress')
     and not s.done
     and (s.holder is null or s.expires_at < p_now)
     and (s.not_before is null or s.not_before <= p_now);
$$;
comment on function public.sync_slice_is_claimable is
  'True when a worker may take the slice now: its job active, the slice not done, no live lease, no Retry-After still to wait.';

-- ── create ──────────────────────────────────────────────────────────────────────────
-- A job without date_from is planned over this span back from date_to; its oldest slice is
-- open-ended all the same, and splits even out how the calls really fall.
create function public.plan_sync_slices(
  p_date_from timestamptz,
  p_date_to timestamptz,
  p_slices integer
) returns table (slice_no integer, date_from timestamptz, date_to timestamptz)
language sql immutable set search_path = '' as $$
  with span as (
    -- whole microseconds, exactly (numeric), so cuts never round onto each other
    select coalesce(p_date_from, p_date_to - interval '365 days') as lo,
           extract(epoch from p_date_to - coalesce(p_date_from, p_date_to - interval '365 days')) * 1000000 as micros
  ), n as (
    -- never more slices than microsecond instants in the range
    select lo, micros, least(p_slices, micros + 1)::integer as n from span
  ), cut as (
    -- slice k+1 starts ceil(micros * k / n) µs after lo: distinct, increasing, after lo
    select k, case when k = 0 then null
                   else lo + ceil(micros * k / n)::float8 * interval '1 microsecond' end as at
      from n, generate_series(0, n.n - 1) k
  )
  select k + 1,
         case when k = 0 then p_date_from else at end,
         coalesce(lead(at) over (order by k) - interval '1 microsecond', p_date_to)
    from cut
   order by k;
$$;
comment on function public.plan_sync_slices is
  'Cuts [date_from, date_to] into p_slices disjoint inclusive slices of equal length at microsecond precision (slice 1 the oldest; open-ended when date_from is null).';

drop function public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean);
create function public.create_sync_job(
  p_agency_id uuid,
  p_date_from timestamptz,
  p_date_to timestamptz,
  p_max_calls integer,
  p_now timestamptz default now(),
  p_trigger text default 'user',
  p_catch_up boolean default false,
  p_slices integer default 1   -- SYNC_SLICES
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with job as (
    insert into public.historical_sync_jobs (agency_id, date_from, date_to, max_calls, created_at)
    values (p_agency_id, p_date_from, p_date_to, p_max_calls, p_now)
    on conflict (agency_id) where status in ('pending', 'in_progress') do nothing
    returning *
  ), state as (
    -- A capped job walks newest first as one walk; so does a catch-up (a short window,
    -- followed by its deleted calls).
    insert into public.historical_sync_job_leases (job_id, trigger, catch_up, sliced)
    select id, p_trigger, p_catch_up, p_max_calls is null and not p_catch_up and p_slices > 1
      from job
    returning job_id, sliced
  ), slices as (
    insert into public.historical_sync_job_slices (job_id, slice_no, date_from, date_to)
    select state.job_id, p.slice_no, p.date_from, p.date_to
      from state, public.plan_sync_slices(p_date_from, p_date_to, p_slices) p
     where state.sliced
  )
  select * from job;
$$;
comment on function public.create_sync_job is
  'Inserts a pending job and its engine state (what started it); an uncapped job other than a catch-up, with p_slices > 1, is planned as that many time slices. Empty when the agency already has an active one (the unique partial index decides, so two racing starts cannot both succeed).';

-- ── what one page imports, said once ────────────────────────────────────────────────
-- An object that cannot be stored carries its `created` when that is readable, so it is
-- counted by the walk whose range holds it (a split's stale page lists it twice otherwise).
alter type public.sync_page_invalid add attribute created timestamptz;

create type public.sync_page_import as (
  counted integer,          -- objects of the page that count (in range, not counted before)
  imported integer,
  failed integer,           -- objects that cannot be stored (counted too)
  refreshed integer,
  unreadable integer,
  unreadable_fields text[], -- the stored fields and the page's, sorted
  failure text,             -- the latest "<callId>: <reason>", or the stored one
  mark_at timestamptz,      -- the oldest counted created, after this page
  mark_ids uuid[],
  capped boolean            -- the page reached max_calls
);

create function public.sync_import_page(
  p_job public.historical_sync_jobs,
  p_from timestamptz,       -- the walk's range (a slice's, or the job's); null: open-ended
  p_to timestamptz,
  p_mark_at timestamptz,
  p_mark_ids uuid[],
  p_stored_fields text[],
  p_stored_failure text,
  p_calls jsonb,
  p_invalid jsonb,
  p_now timestamptz
) returns public.sync_page_import
language plpgsql security definer set search_path = '' as $$
declare
  v_calls public.sync_page_call[];
  v_invalid public.sync_page_invalid[];
  v_counted integer[];      -- positions (ord) that count: in range, not counted at the mark before
  v_first integer[];        -- of those, the first position of each call id
  v_inserted integer[];     -- positions this transaction really inserted
  v_remaining integer;
  v_cut integer;            -- last position of the page that counts (max_calls)
  v_page_oldest timestamptz;
  r public.sync_page_import;
begin
  v_calls := array(select c from jsonb_populate_recordset(null::public.sync_page_call,
                                                          coalesce(p_calls, '[]')) c);
  v_invalid := array(select i from jsonb_populate_recordset(null::public.sync_page_invalid,
                                                            coalesce(p_invalid, '[]')) i);

  -- What counts: calls inside the range that this walk has not counted at its oldest mark
  -- already (a walk resumed by time lists those again). A call repeated within the page
  -- counts at each position (skipped after the first), so processed_calls keeps pace with
  -- the objects Ultravox listed.
  select coalesce(array_agg(c.ord order by c.ord), '{}') into v_counted
    from unnest(v_calls) c
   where c.created_at <= p_to
     and (p_from is null or c.created_at >= p_from)
     and not (c.created_at = p_mark_at and c.ultravox_call_id = any (p_mark_ids));
  select coalesce(array_agg(c.ord order by c.ord), '{}') into v_first
    from (select distinct on (c.ultravox_call_id) c.ord
            from unnest(v_calls) c
           where c.ord = any (v_counted)
           order by c.ultravox_call_id, c.ord) c;

  -- Set-based insert in API order; RETURNING tells which rows this transaction inserted.
  with ins as (
    insert into public.calls (
      agency_id, ultravox_call_id, ultravox_agent_id, created_at, joined_at, ended_at,
      end_reason, duration_seconds, billed_duration_seconds, short_summary, summary,
      recording_enabled, metadata, raw, source, historical_sync_job_id, imported_at)
    select p_job.agency_id, c.ultravox_call_id, c.ultravox_agent_id, c.created_at, c.joined_at,
           c.ended_at, c.end_reason, c.duration_seconds, c.billed_duration_seconds,
           c.short_summary, c.summary, coalesce(c.recording_enabled, false),
           coalesce(c.metadata, '{}'), c.raw, 'historical_sync', p_job.id, p_now
      from unnest(v_calls) c
     where c.ord = any (v_first)
     order by c.ord
    on conflict (ultravox_call_id) do nothing
    returning ultravox_call_id
  )
  select coalesce(array_agg(c.ord order by c.ord), '{}') into v_inserted
    from ins join unnest(v_calls) c using (ultravox_call_id)
   where c.ord = any (v_first);

  -- max_calls: cut right after the insert that reaches the cap, decided from what was
  -- actually inserted; rows inserted past the cut are taken back in this transaction.
  v_remaining := p_job.max_calls - p_job.imported_calls;  -- null: no cap
  if v_remaining is not null and cardinality(v_inserted) >= v_remaining then
    v_cut := v_inserted[greatest(v_remaining, 1)];
    delete from public.calls t
     using unnest(v_calls) c
     where t.ultravox_call_id = c.ultravox_call_id
       and c.ord = any (v_inserted) and c.ord > v_cut;
    v_counted := array(select o from unnest(v_counted) o where o <= v_cut);
    v_first := array(select o from unnest(v_first) o where o <= v_cut);
    v_inserted := array(select o from unnest(v_inserted) o where o <= v_cut);
  end if;
  r.capped := v_cut is not null;
  r.counted := cardinality(v_counted);
  r.imported := cardinality(v_inserted);

  -- Refresh: a counted call that already existed, was written by the importer for this
  -- agency, changed upstream, and would not become less final (ended stays ended, billed
  -- stays billed). Rows of another source or agency are never touched.
  update public.calls t
     set ultravox_agent_id = c.ultravox_agent_id, joined_at = c.joined_at,
         ended_at = c.ended_at, end_reason = c.end_reason,
         duration_seconds = c.duration_seconds,
         billed_duration_seconds = c.billed_duration_seconds,
         short_summary = c.short_summary, summary = c.summary,
         recording_enabled = coalesce(c.recording_enabled, false),
         metadata = coalesce(c.metadata, '{}'), raw = c.raw
    from unnest(v_calls) c
   where c.ord = any (v_first) and not c.ord = any (v_inserted)
     and t.ultravox_call_id = c.ultravox_call_id
     and t.source = 'historical_sync' and t.agency_id = p_job.agency_id
     and t.raw is distinct from c.raw
     and not (t.ended_at is not null and c.ended_at is null)
     and not (coalesce(t.raw ->> 'billingStatus', 'BILLING_STATUS_PENDING') <> 'BILLING_STATUS_PENDING'
              and c.raw ->> 'billingStatus' = 'BILLING_STATUS_PENDING');
  get diagnostics r.refreshed = row_count;

  -- Objects that cannot be stored, up to the cut and (when their created is readable) inside
  -- the range; the latest in API order is named.
  select count(*), (array_agg(coalesce(i.call_id, 'a call without a valid callId') || ': ' || i.reason
                              order by i.ord desc))[1]
    into r.failed, r.failure
    from unnest(v_invalid) i
   where (v_cut is null or i.ord <= v_cut)
     and (i.created is null or (i.created <= p_to and (p_from is null or i.created >= p_from)));
  r.failure := coalesce(r.failure, p_stored_failure);

  -- Fields stored as null for an unexpected shape, of the calls this page imported (a call
  -- skipped, e.g. re-listed or another agency's, was not stored here and is not counted
  -- again), and the oldest counted call.
  select count(*) filter (where c.ord = any (v_inserted) and cardinality(c.unreadable) > 0),
         min(c.created_at)
    into r.unreadable, v_page_oldest
    from unnest(v_calls) c
   where c.ord = any (v_first);
  select coalesce(array_agg(f order by f), '{}') into r.unreadable_fields
    from (select unnest(p_stored_fields) f
          union
          select unnest(c.unreadable) from unnest(v_calls) c
           where c.ord = any (v_inserted)) u;

  r.mark_at := p_mark_at;
  r.mark_ids := p_mark_ids;
  if v_page_oldest is not null and (p_mark_at is null or v_page_oldest <= p_mark_at) then
    r.mark_ids := array(
      select distinct i from unnest(
        case when v_page_oldest = p_mark_at then p_mark_ids else '{}' end ||
        array(select c.ultravox_call_id from unnest(v_calls) c
               where c.ord = any (v_counted) and c.created_at = v_page_oldest)) i);
    r.mark_at := v_page_oldest;
  end if;
  return r;
end;
$$;
comment on function public.sync_import_page is
  'The part of a page step both walks share: counts the page''s calls inside the range (not those counted at the oldest mark), inserts the new ones in API order, applies max_calls from the rows really inserted, refreshes changed calls the importer wrote, and says what could not be stored or read and where the oldest mark moves. Writes calls only; the caller holds the fence and writes the counters.';

-- The job row's side of a page step, said once: counters, completion, the validation message.
create function public.sync_count_page(
  p_job_id uuid,
  r public.sync_page_import,
  p_cursor text,
  p_total integer,
  p_done boolean,
  p_now timestamptz
) returns public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with state as (
    update public.historical_sync_job_leases l
       set refreshed_calls = l.refreshed_calls + r.refreshed,
           unreadable_calls = l.unreadable_calls + r.unreadable,
           unreadable_fields = r.unreadable_fields,
           latest_failure = r.failure
     where l.job_id = p_job_id
  )
  update public.historical_sync_jobs j
     set cursor = p_cursor,
         processed_calls = j.processed_calls + r.counted + r.failed,
         imported_calls = j.imported_calls + r.imported,
         skipped_calls = j.skipped_calls + r.counted - r.imported,
         failed_calls = j.failed_calls + r.failed,
         total_calls = coalesce(j.total_calls, p_total),
         last_activity_at = p_now,
         status = case when p_done then 'completed'::public.sync_job_status else j.status end,
         completed_at = case when p_done then p_now else j.completed_at end,
         -- Built from stored counts and the stored latest failure, on every page that adds
         -- one and at completion, so it always says how many and why.
         error_message = case
           when (r.failed > 0 or p_done) and j.failed_calls + r.failed > 0 then
             format('%s call(s) failed validation and were not imported', j.failed_calls + r.failed)
             || coalesce(format(' (latest: %s)', r.failure), '')
           else j.error_message end,
         last_error_at = case when r.failed > 0 then p_now else j.last_error_at end
   where j.id = p_job_id
  returning j.*;
$$;
comment on function public.sync_count_page is
  'Adds one page''s import to the job row and its engine state (counters, total, completion, the validation message). Called by the page steps with the job row already locked.';

-- ── the job's own walk, one page ────────────────────────────────────────────────────
create or replace function public.record_sync_page(
  p_job_id uuid,
  p_holder uuid,
  p_from_cursor text,
  p_next_cursor text,
  p_calls jsonb,
  p_invalid jsonb,
  p_total integer,
  p_lease_seconds integer,
  p_now timestamptz default now()
) returns table (
  status public.sync_job_status,
  processed_calls integer,
  imported_calls integer,
  skipped_calls integer,
  failed_calls integer,
  total_calls integer,
  page_imported integer,
  page_skipped integer,
  page_failed integer,
  page_refreshed integer
)
language plpgsql security definer set search_path = '' as $$
declare
  v_job public.historical_sync_jobs;
  v_state public.historical_sync_job_leases;
  r public.sync_page_import;
  v_done boolean;
  v_next_phase boolean;
begin
  -- Fence: still in progress, still ours, still walking calls (a catch-up past its calls walk
  -- takes no more calls pages), and nobody moved the cursor since we read it. Both rows are
  -- locked, so neither a cancel nor a claim can change them under us.
  select j.* into v_job
    from public.historical_sync_jobs j
    join public.historical_sync_job_leases l on l.job_id = j.id
   where j.id = p_job_id
     and j.status = 'in_progress'
     and j.cursor is not distinct from p_from_cursor
     and l.holder = p_holder
     and l.phase = 'calls'
     for update of j, l;
  if not found then
    -- Fenced out: nothing from the page lands, and a lease still in our name is dropped.
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
     where l.job_id = p_job_id and l.holder = p_holder;
    return;
  end if;
  select l.* into v_state from public.historical_sync_job_leases l where l.job_id = p_job_id;

  r := public.sync_import_page(v_job, v_job.date_from, v_job.date_to,
                               v_state.oldest_counted_at, v_state.oldest_counted_ids,
                               v_state.unreadable_fields, v_state.latest_failure,
                               p_calls, p_invalid, p_now);

  v_done := r.capped or p_next_cursor is null;
  -- A catch-up's calls walk is followed by its deleted-calls walk: the job goes on.
  v_next_phase := v_done and v_state.catch_up;
  v_done := v_done and not v_next_phase;

  update public.historical_sync_job_leases l
     set holder = case when v_done then null else l.holder end,
         expires_at = case when v_done then null
                           else p_now + make_interval(secs => p_lease_seconds) end,
         failed_attempts = 0,
         last_problem = null,
         phase = case when v_next_phase then 'deleted_calls' else l.phase end,
         oldest_counted_at = r.mark_at,
         oldest_counted_ids = r.mark_ids
   where l.job_id = p_job_id;
  v_job := public.sync_count_page(p_job_id, r, p_next_cursor, p_total, v_done, p_now);

  return query
  select v_job.status, v_job.processed_calls, v_job.imported_calls, v_job.skipped_calls,
         v_job.failed_calls, v_job.total_calls, r.imported, r.counted - r.imported,
         r.failed, r.refreshed;
end;
$$;

-- ── claims: both kinds of work, least recently touched first ────────────────────────
-- A slice: leased (skip locked, rechecked), an attempt counted; the job row is touched only
-- while pending (no step can hold it then). A slice whose attempts ran out fails its job.
create function public.claim_sync_slice(
  p_holder uuid,
  p_job_id uuid,
  p_slice_no integer,
  p_lease_seconds integer,
  p_now timestamptz,
  p_max_attempts integer
) returns setof public.historical_sync_job_slices
language plpgsql security definer set search_path = '' as $$
declare
  s public.historical_sync_job_slices;
  j public.historical_sync_jobs;
begin
  select * into s from public.historical_sync_job_slices
   where job_id = p_job_id and slice_no = p_slice_no
     for update skip locked;
  select * into j from public.historical_sync_jobs where id = p_job_id;
  if s.job_id is null or not public.sync_slice_is_claimable(j, s, p_now) then
    return;
  end if;
  if s.failed_attempts >= p_max_attempts then
    -- The job row, without waiting: a step holding it may be waiting on this slice (lock
    -- order job → slice); then the next claim gives the slice up.
    perform 1 from public.historical_sync_jobs where id = p_job_id for no key update skip locked;
    if not found then
      return;
    end if;
    update public.historical_sync_jobs
       set status = 'failed', completed_at = p_now, last_error_at = p_now,
           error_message = format(
             'Gave up after %s attempts in a row without a page landing (slice %s of the walk); the last problem: %s',
             s.failed_attempts, s.slice_no,
             coalesce(s.last_problem,
               'an invocation ended without reporting one (out of memory or CPU time, or killed)'))
     where id = p_job_id and status in ('pending', 'in_progress');
    update public.historical_sync_job_slices
       set holder = null, expires_at = null
     where job_id = p_job_id and slice_no = p_slice_no;
    return;
  end if;
  update public.historical_sync_jobs
     set status = 'in_progress', started_at = coalesce(started_at, p_now), last_activity_at = p_now
   where id = p_job_id and status = 'pending';
  return query
  update public.historical_sync_job_slices
     set holder = p_holder, expires_at = p_now + make_interval(secs => p_lease_seconds),
         failed_attempts = failed_attempts + 1, not_before = null, last_claimed_at = p_now
   where job_id = p_job_id and slice_no = p_slice_no
     and exists (select 1 from public.historical_sync_jobs
                  where id = p_job_id and status = 'in_progress')
  returning *;
end;
$$;
comment on function public.claim_sync_slice is
  'Leases one claimable slice and counts an attempt (skipping it when another claimer holds it); fails the job instead when the slice''s p_max_attempts attempts ran out. Empty when not claimed.';

create type public.sync_work as (
  id uuid,
  agency_id uuid,
  date_from timestamptz,   -- of the walk: the slice's range, or the job's
  date_to timestamptz,
  cursor text,
  max_calls integer,
  phase text,
  deleted_cursor text,
  slice_no integer         -- null: the job's own walk
);

create function public.claim_sync_work(
  p_holder uuid,
  p_limit integer,
  p_lease_seconds integer,
  p_job_id uuid default null,
  p_now timestamptz default now(),
  p_max_attempts integer default 10   -- SYNC_MAX_ATTEMPTS
) returns setof public.sync_work
language plpgsql security definer set search_path = '' as $$
declare
  c record;
  v_taken integer := 0;
  v_job public.historical_sync_jobs;
  v_slice public.historical_sync_job_slices;
begin
  -- Least recently touched first: a job's last activity (never worked first), then, within a
  -- sliced job, the slice claimed longest ago. Each candidate is claimed by its own function,
  -- which skips what another claimer holds and rechecks, so concurrent claims take distinct work.
  for c in
    select j.id as job_id, null::integer as slice_no, j.last_activity_at, j.created_at,
           null::timestamptz as slice_claimed_at
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.status in ('pending', 'in_progress')   -- the active-jobs index
       and public.sync_job_is_claimable(j, l, p_now)
       and (p_job_id is null or j.id = p_job_id)
    union all
    select j.id, s.slice_no, j.last_activity_at, j.created_at, s.last_claimed_at
      from public.historical_sync_jobs j
      join public.historical_sync_job_slices s on s.job_id = j.id
     where j.status in ('pending', 'in_progress')
       and public.sync_slice_is_claimable(j, s, p_now)
       and (p_job_id is null or j.id = p_job_id)
     order by last_activity_at nulls first, created_at, job_id,
              slice_claimed_at nulls first, slice_no
  loop
    exit when v_taken >= p_limit;
    if c.slice_no is null then
      select * into v_job
        from public.claim_sync_jobs(p_holder, 1, p_lease_seconds, c.job_id, p_now, p_max_attempts);
      if v_job.id is not null and v_job.status = 'in_progress' then
        v_taken := v_taken + 1;
        return query
        select v_job.id, v_job.agency_id, v_job.date_from, v_job.date_to, v_job.cursor,
               v_job.max_calls, coalesce(l.phase, 'calls'), l.deleted_cursor, null::integer
          from (select 1) one
          left join public.historical_sync_job_leases l on l.job_id = v_job.id;
      end if;
      v_job := null;
    else
      select * into v_slice
        from public.claim_sync_slice(p_holder, c.job_id, c.slice_no, p_lease_seconds, p_now,
                                     p_max_attempts);
      if v_slice.job_id is not null then
        v_taken := v_taken + 1;
        return query
        select j.id, j.agency_id, v_slice.date_from, v_slice.date_to, v_slice.cursor,
               j.max_calls, 'calls'::text, null::text, v_slice.slice_no
          from public.historical_sync_jobs j where j.id = v_slice.job_id;
      end if;
      v_slice := null;
    end if;
  end loop;
end;
$$;
comment on function public.claim_sync_work is
  'Leases up to p_limit pieces of work, each a job''s own walk or one slice of a sliced job, least recently touched first (never-worked jobs first, then by last activity; within a job, the slice claimed longest ago), counting an attempt on each. With p_job_id only that job''s work.';

-- ── a slice's page ──────────────────────────────────────────────────────────────────
create function public.record_sync_slice_page(
  p_job_id uuid,
  p_slice_no integer,
  p_holder uuid,
  p_from_cursor text,
  p_next_cursor text,
  p_calls jsonb,
  p_invalid jsonb,
  p_total integer,
  p_lease_seconds integer,
  p_min_split_calls integer default 200,   -- 2 × SYNC_PAGE_SIZE: smaller remainders are not split
  p_max_attempts integer default 10,       -- SYNC_MAX_ATTEMPTS: a slice out of them is not handed on
  p_take_next boolean default true,        -- false: the worker's budget is spent, hand nothing on
  p_now timestamptz default now()
) returns table (
  status public.sync_job_status,
  processed_calls integer,
  imported_calls integer,
  skipped_calls integer,
  failed_calls integer,
  total_calls integer,
  page_imported integer,
  page_skipped integer,
  page_failed integer,
  page_refreshed integer,
  slice_date_from timestamptz,   -- the slice's range now (a split may have narrowed it)
  slice_date_to timestamptz,
  next_slice_no integer,         -- the slice this worker goes on with when this one is done
  next_date_from timestamptz,
  next_date_to timestamptz,
  next_cursor text               -- where that slice goes on (null: from its start)
)
language plpgsql security definer set search_path = '' as $$
declare
  v_job public.historical_sync_jobs;
  v_state public.historical_sync_job_leases;
  v_slice public.historical_sync_job_slices;
  v_next public.historical_sync_job_slices;
  r public.sync_page_import;
  v_total integer;
  v_done boolean;
  v_upper timestamptz;
  v_left integer;
  v_mid timestamptz;
begin
  -- Fence: the job in progress (its row locked first, so a cancel waits for this step and
  -- fences out every later one), and the slice still ours, not done, at the cursor we read.
  select j.* into v_job from public.historical_sync_jobs j
   where j.id = p_job_id and j.status = 'in_progress'
     for no key update;
  if found then
    select s.* into v_slice from public.historical_sync_job_slices s
     where s.job_id = p_job_id and s.slice_no = p_slice_no and s.holder = p_holder
       and not s.done and s.cursor is not distinct from p_from_cursor
       for update;
  end if;
  if v_slice.job_id is null then
    update public.historical_sync_job_slices s
       set holder = null, expires_at = null
     where s.job_id = p_job_id and s.slice_no = p_slice_no and s.holder = p_holder;
    return;
  end if;
  select l.* into v_state from public.historical_sync_job_leases l where l.job_id = p_job_id;

  -- Counted by the slice's range as it is now: calls a split moved away are the new slice's.
  r := public.sync_import_page(v_job, v_slice.date_from, v_slice.date_to,
                               v_slice.oldest_counted_at, v_slice.oldest_counted_ids,
                               v_state.unreadable_fields, v_state.latest_failure,
                               p_calls, p_invalid, p_now);
  v_done := p_next_cursor is null;

  update public.historical_sync_job_slices s
     set cursor = p_next_cursor,
         done = v_done,
         holder = case when v_done then null else s.holder end,
         expires_at = case when v_done then null
                           else p_now + make_interval(secs => p_lease_seconds) end,
         failed_attempts = 0,
         last_problem = null,
         processed_calls = s.processed_calls + r.counted + r.failed,
         reported_total = coalesce(s.reported_total, p_total),
         -- a split's estimate gives way to the slice's own first total
         expected_calls = case when s.reported_total is null then coalesce(p_total, s.expected_calls)
                               else s.expected_calls end,
         oldest_counted_at = r.mark_at,
         oldest_counted_ids = r.mark_ids
   where s.job_id = p_job_id and s.slice_no = p_slice_no
  returning * into v_slice;

  if v_done and p_take_next then
    -- Go on with a slice nobody holds (one never claimed first; one a walker left, at its
    -- cursor), or else split the largest remaining one: its older part becomes a new slice,
    -- leased to us.
    select s.* into v_next from public.historical_sync_job_slices s
     where s.job_id = p_job_id and public.sync_slice_is_claimable(v_job, s, p_now)
       and s.failed_attempts < p_max_attempts   -- a claim gives that one up instead
     order by s.last_claimed_at nulls first, s.slice_no
     limit 1
       for update skip locked;
    if v_next.job_id is not null then
      update public.historical_sync_job_slices s
         set holder = p_holder, expires_at = p_now + make_interval(secs => p_lease_seconds),
             failed_attempts = s.failed_attempts + 1, not_before = null, last_claimed_at = p_now
       where s.job_id = v_next.job_id and s.slice_no = v_next.slice_no
      returning * into v_next;
    else
      -- The remainder of a slice walked newest first is [date_from, oldest counted): its
      -- calls are estimated from its total, its midpoint from its length, or for the
      -- open-ended slice from the pace of calls in what it has walked so far.
      for v_next in
        select s.* from public.historical_sync_job_slices s
         where s.job_id = p_job_id and not s.done and s.expected_calls is not null
           and s.expected_calls - s.processed_calls >= p_min_split_calls
         order by s.expected_calls - s.processed_calls desc, s.slice_no
           for update skip locked
      loop
        v_upper := coalesce(v_next.oldest_counted_at, v_next.date_to);
        v_left := v_next.expected_calls - v_next.processed_calls;
        v_mid := case
          when v_next.date_from is not null then v_next.date_from + (v_upper - v_next.date_from) / 2
          when v_next.processed_calls > 0 and v_next.date_to > v_upper then
            v_upper - (v_next.date_to - v_upper) * (v_left::float8 / v_next.processed_calls / 2)
        end;
        if v_mid is not null and v_mid < v_upper
           and (v_next.date_from is null or v_mid > v_next.date_from) then
          update public.historical_sync_job_slices s
             set date_from = v_mid, expected_calls = s.expected_calls - v_left / 2
           where s.job_id = v_next.job_id and s.slice_no = v_next.slice_no;
          insert into public.historical_sync_job_slices as s (
            job_id, slice_no, date_from, date_to, holder, expires_at, failed_attempts,
            expected_calls, in_job_total, last_claimed_at)
          select p_job_id, max(x.slice_no) + 1, v_next.date_from, v_mid - interval '1 microsecond',
                 p_holder, p_now + make_interval(secs => p_lease_seconds), 1,
                 v_left / 2, false, p_now
            from public.historical_sync_job_slices x where x.job_id = p_job_id
          returning * into v_next;
          exit;
        end if;
        v_next := null;
      end loop;
    end if;
  end if;

  -- total_calls: the sum of each slice's first reported total, once every slice has one
  -- (set once, so progress never goes back).
  select case when bool_and(s.reported_total is not null) then sum(s.reported_total)::integer end
    into v_total
    from public.historical_sync_job_slices s
   where s.job_id = p_job_id and s.in_job_total;
  v_job := public.sync_count_page(
    p_job_id, r, null, v_total,
    v_done and v_next.job_id is null
      and not exists (select 1 from public.historical_sync_job_slices s
                       where s.job_id = p_job_id and not s.done),
    p_now);

  return query
  select v_job.status, v_job.processed_calls, v_job.imported_calls, v_job.skipped_calls,
         v_job.failed_calls, v_job.total_calls, r.imported, r.counted - r.imported,
         r.failed, r.refreshed, v_slice.date_from, v_slice.date_to,
         v_next.slice_no, v_next.date_from, v_next.date_to, v_next.cursor;
end;
$$;
comment on function public.record_sync_slice_page is
  'One page step of a slice in one transaction: imports the page''s calls inside the slice''s current range, advances the slice''s cursor and mark, adds the counts to the job, and when the slice is done goes on with an unclaimed slice or splits the largest remaining one (the new older slice is leased to the caller); completes the job when its last slice is done. Fenced on the job''s status (its row locked first), the slice''s holder and cursor: empty, with nothing written and our lease dropped, when the job was cancelled or the slice moved.';

-- ── a slice's other steps: renew, release, transient error, failure ─────────────────
create function public.renew_sync_slice_lease(
  p_job_id uuid,
  p_slice_no integer,
  p_holder uuid,
  p_lease_seconds integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_job_slices
language sql security definer set search_path = '' as $$
  update public.historical_sync_job_slices s
     set expires_at = p_now + make_interval(secs => p_lease_seconds)
   where s.job_id = p_job_id and s.slice_no = p_slice_no and s.holder = p_holder
  returning s.*;
$$;
comment on function public.renew_sync_slice_lease is
  'Heartbeat of a slice''s walker while it waits on Ultravox; empty when the lease is no longer ours.';

create function public.release_sync_slice(
  p_job_id uuid,
  p_slice_no integer,
  p_holder uuid,
  p_not_before timestamptz default null
) returns setof public.historical_sync_job_slices
language sql security definer set search_path = '' as $$
  update public.historical_sync_job_slices s
     set holder = null, expires_at = null,
         not_before = p_not_before,
         -- Waiting for a Retry-After is not an attempt: take back the one the claim counted.
         failed_attempts = case when p_not_before is null then s.failed_attempts
                                else greatest(s.failed_attempts - 1, 0) end
   where s.job_id = p_job_id and s.slice_no = p_slice_no and s.holder = p_holder
  returning s.*;
$$;
comment on function public.release_sync_slice is
  'Drops our lease on a slice (budget spent); with p_not_before (a Retry-After too long to wait out) no worker claims the slice before then, and the attempt is not counted.';

-- The fence of a slice's error or failure: job row, then slice row, as the page step.
create function public.sync_slice_fence(p_job_id uuid, p_slice_no integer, p_holder uuid, p_cursor text)
returns setof public.historical_sync_job_slices
language sql security definer set search_path = '' as $$
  select s.*
    from public.historical_sync_jobs j
    join public.historical_sync_job_slices s on s.job_id = j.id
   where j.id = p_job_id and j.status = 'in_progress'
     and s.slice_no = p_slice_no and s.holder = p_holder and not s.done
     and s.cursor is not distinct from p_cursor
     for no key update of j for update of s;
$$;
comment on function public.sync_slice_fence is
  'Locks the job, then the slice, when the job is in progress and the slice held by p_holder at p_cursor; empty otherwise.';

create function public.record_sync_slice_error(
  p_job_id uuid,
  p_slice_no integer,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_max_attempts integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with fence as (
    select * from public.sync_slice_fence(p_job_id, p_slice_no, p_holder, p_cursor)
  ), slice as (
    update public.historical_sync_job_slices s
       set holder = null, expires_at = null, last_problem = p_message
      from fence
     where s.job_id = fence.job_id and s.slice_no = fence.slice_no
    returning s.failed_attempts
  )
  update public.historical_sync_jobs j
     set error_message = case when slice.failed_attempts >= p_max_attempts
                              then format('%s (gave up after %s attempts)', p_message, slice.failed_attempts)
                              else p_message end,
         last_error_at = p_now,
         status = case when slice.failed_attempts >= p_max_attempts
                       then 'failed'::public.sync_job_status else j.status end,
         completed_at = case when slice.failed_attempts >= p_max_attempts then p_now
                             else j.completed_at end
    from slice
   where j.id = p_job_id
  returning j.*;
$$;
comment on function public.record_sync_slice_error is
  'Notes a slice''s transient problem on the job and releases the slice so a later run retries it; fails the job when this was the slice''s attempt p_max_attempts in a row without a page landing.';

create function public.fail_sync_slice(
  p_job_id uuid,
  p_slice_no integer,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with fence as (
    select * from public.sync_slice_fence(p_job_id, p_slice_no, p_holder, p_cursor)
  ), slice as (
    update public.historical_sync_job_slices s
       set holder = null, expires_at = null
      from fence
     where s.job_id = fence.job_id and s.slice_no = fence.slice_no
    returning s.job_id
  )
  update public.historical_sync_jobs j
     set status = 'failed', completed_at = p_now, error_message = p_message, last_error_at = p_now
    from slice
   where j.id = slice.job_id
  returning j.*;
$$;
comment on function public.fail_sync_slice is
  'Fails the whole job for a permanent problem met by one of its slices (fenced like its page step).';

-- ── privileges ──────────────────────────────────────────────────────────────────────
revoke execute on function
  public.sync_slice_is_claimable(public.historical_sync_jobs, public.historical_sync_job_slices, timestamptz),
  public.plan_sync_slices(timestamptz, timestamptz, integer),
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean, integer),
  public.sync_import_page(public.historical_sync_jobs, timestamptz, timestamptz, timestamptz, uuid[], text[], text, jsonb, jsonb, timestamptz),
  public.sync_count_page(uuid, public.sync_page_import, text, integer, boolean, timestamptz),
  public.claim_sync_slice(uuid, uuid, integer, integer, timestamptz, integer),
  public.claim_sync_work(uuid, integer, integer, uuid, timestamptz, integer),
  public.record_sync_slice_page(uuid, integer, uuid, text, text, jsonb, jsonb, integer, integer, integer, integer, boolean, timestamptz),
  public.renew_sync_slice_lease(uuid, integer, uuid, integer, timestamptz),
  public.release_sync_slice(uuid, integer, uuid, timestamptz),
  public.sync_slice_fence(uuid, integer, uuid, text),
  public.record_sync_slice_error(uuid, integer, uuid, text, text, integer, timestamptz),
  public.fail_sync_slice(uuid, integer, uuid, text, text, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.sync_slice_is_claimable(public.historical_sync_jobs, public.historical_sync_job_slices, timestamptz),
  public.plan_sync_slices(timestamptz, timestamptz, integer),
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean, integer),
  public.claim_sync_slice(uuid, uuid, integer, integer, timestamptz, integer),
  public.claim_sync_work(uuid, integer, integer, uuid, timestamptz, integer),
  public.record_sync_slice_page(uuid, integer, uuid, text, text, jsonb, jsonb, integer, integer, integer, integer, boolean, timestamptz),
  public.renew_sync_slice_lease(uuid, integer, uuid, integer, timestamptz),
  public.release_sync_slice(uuid, integer, uuid, timestamptz),
  public.sync_slice_fence(uuid, integer, uuid, text),
  public.record_sync_slice_error(uuid, integer, uuid, text, text, integer, timestamptz),
  public.fail_sync_slice(uuid, integer, uuid, text, text, timestamptz)
to service_role;
-- sync_import_page and sync_count_page write calls and counters without a fence of their
-- own: only the fenced page steps (their owner's) call them, and no API role may.
revoke execute on function
  public.sync_import_page(public.historical_sync_jobs, timestamptz, timestamptz, timestamptz, uuid[], text[], text, jsonb, jsonb, timestamptz),
  public.sync_count_page(uuid, public.sync_page_import, text, integer, boolean, timestamptz)
from service_role;
