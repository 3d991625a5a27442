-- The engine's state transitions, revised (docs/ARCHITECTURE.md §5). Replaces the functions of
-- 20261129000600 (released migrations are never edited: docs/DECISIONS.md "Migrations").
--
--   * "claimable" is said once (sync_job_is_claimable), for the claim and the dispatcher;
--   * a claim counts as an attempt; only a page that lands resets the count, so an invocation
--     that dies (out of memory or CPU, killed) still counts, and the claim after the last
--     allowed attempt fails the job, quoting the last problem seen;
--   * every fence locks the lease row as well as the job row, and a worker fenced out of a
--     page step drops its own lease;
--   * record_sync_page reads its JSON input once, refreshes calls the importer wrote that
--     changed upstream, keeps the oldest counted `created` (resuming by time after a rejected
--     cursor) and what could not be read; the validation message is built from stored data;
--   * a Retry-After too long to wait out releases the lease with not_before.
--
-- All are security definer with an empty search_path and executable by service_role only.

-- ── engine state beside the seed table ─────────────────────────────────────────────
alter table public.historical_sync_job_leases
  add column not_before timestamptz,
  add column oldest_counted_at timestamptz,
  add column oldest_counted_ids uuid[] not null default '{}',
  add column refreshed_calls integer not null default 0,
  add column unreadable_calls integer not null default 0,
  add column unreadable_fields text[] not null default '{}',
  add column latest_failure text,
  add column last_problem text,
  add column trigger text not null default 'user',
  add constraint sync_job_leases_refreshed_positive check (refreshed_calls >= 0),
  add constraint sync_job_leases_unreadable_positive check (unreadable_calls >= 0),
  add constraint sync_job_leases_trigger_valid check (trigger in ('user', 'schedule')),
  add column catch_up boolean not null default false,
  add column phase text not null default 'calls',
  add column deleted_cursor text,
  add column deleted_marked integer not null default 0,
  add constraint sync_job_leases_phase_valid check (phase in ('calls', 'deleted_calls')),
  add constraint sync_job_leases_phase_needs_catch_up check (phase = 'calls' or catch_up),
  add constraint sync_job_leases_deleted_marked_positive check (deleted_marked >= 0);
comment on column public.historical_sync_job_leases.catch_up is
  'A catch-up job: after its calls it also walks GET /api/deleted_calls for its range.';
comment on column public.historical_sync_job_leases.phase is
  'Which walk the job is in: calls, then (catch-up only) deleted_calls.';
comment on column public.historical_sync_job_leases.deleted_cursor is
  'The cursor of the next /api/deleted_calls page (the calls walk keeps its own in the job row).';
comment on column public.historical_sync_job_leases.deleted_marked is
  'Calls of the agency this job marked ultravox_deleted_at.';

comment on table public.historical_sync_job_leases is
  'Engine state of a job beside the seed table: the lease, attempts, Retry-After, the oldest counted call, refresh and readability counts, what started it. Backend only.';
comment on column public.historical_sync_job_leases.failed_attempts is
  'Claims in a row without a page landing (an attempt is counted at claim, so an invocation that dies still counts); reset by a page that lands.';
comment on column public.historical_sync_job_leases.not_before is
  'Ultravox asked (Retry-After) not to be called before then: no worker claims the job earlier.';
comment on column public.historical_sync_job_leases.oldest_counted_at is
  'The created of the oldest call this job has counted: where a walk resumes by time when Ultravox rejects the saved cursor.';
comment on column public.historical_sync_job_leases.oldest_counted_ids is
  'The calls counted with created = oldest_counted_at, so a walk resumed at that instant counts none of them twice.';
comment on column public.historical_sync_job_leases.refreshed_calls is
  'Calls this job found changed upstream and refreshed (counted as skipped on the job).';
comment on column public.historical_sync_job_leases.unreadable_calls is
  'Imported calls with at least one field of an unexpected shape, stored as null.';
comment on column public.historical_sync_job_leases.unreadable_fields is
  'The fields (sorted) that were stored as null for an unexpected shape.';
comment on column public.historical_sync_job_leases.latest_failure is
  '"<callId>: <reason>" of the latest call that could not be stored, for error_message.';
comment on column public.historical_sync_job_leases.last_problem is
  'The latest transient problem of an attempt, quoted when the job gives up; cleared by a page that lands.';
comment on column public.historical_sync_job_leases.trigger is
  'What started the job: user (start-historical-sync) or schedule (automatic catch-up).';

-- What one page step receives per call (the row of calls it maps to, its position in the
-- page, the fields stored as null) and per object that cannot be stored.
create type public.sync_page_call as (
  ord integer,
  ultravox_call_id uuid,
  ultravox_agent_id uuid,
  created_at timestamptz,
  joined_at timestamptz,
  ended_at timestamptz,
  end_reason text,
  duration_seconds numeric,
  billed_duration_seconds numeric,
  short_summary text,
  summary text,
  recording_enabled boolean,
  metadata jsonb,
  raw jsonb,
  unreadable text[]
);
create type public.sync_page_invalid as (ord integer, call_id text, reason text);

-- ── claimable, said once ────────────────────────────────────────────────────────────
create or replace function public.sync_job_is_claimable(
  j public.historical_sync_jobs,
  l public.historical_sync_job_leases,
  p_now timestamptz
) returns boolean
language sql stable set search_path = '' as $$
  select j.status in ('pending', 'in_progress')
     and (l.holder is null or l.expires_at < p_now)            -- no live lease
     and (l.not_before is null or l.not_before <= p_now);      -- no Retry-After pending
$$;
comment on function public.sync_job_is_claimable is
  'True when a worker may take the job now: active, no live lease, and no Retry-After still to wait. The claim and the dispatcher both ask this.';

-- ── create ──────────────────────────────────────────────────────────────────────────
drop function public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz);
create function public.create_sync_job(
  p_agency_id uuid,
  p_date_from timestamptz,
  p_date_to timestamptz,
  p_max_calls integer,
  p_now timestamptz default now(),
  p_trigger text default 'user',
  p_catch_up boolean default false
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with job as (
    insert into public.historical_sync_jobs (agency_id, date_from, date_to, max_calls, created_at)
    values (p_agency_id, p_date_from, p_date_to, p_max_calls, p_now)
    on conflict (agency_id) where status in ('pending', 'in_progress') do nothing
    returning *
  ), state as (
    insert into public.historical_sync_job_leases (job_id, trigger, catch_up)
    select id, p_trigger, p_catch_up from job
  )
  select * from job;
$$;
comment on function public.create_sync_job is
  'Inserts a pending job and its engine state (what started it); empty when the agency already has an active one (the unique partial index decides, so two racing starts cannot both succeed).';

-- ── claim ───────────────────────────────────────────────────────────────────────────
drop function public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz);
create function public.claim_sync_jobs(
  p_holder uuid,
  p_limit integer,
  p_lease_seconds integer,
  p_job_id uuid default null,
  p_now timestamptz default now(),
  p_max_attempts integer default 10   -- SYNC_MAX_ATTEMPTS
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with picked as (
    select j.id, coalesce(l.failed_attempts, 0) >= p_max_attempts as exhausted,
           l.failed_attempts, l.last_problem
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.status in ('pending', 'in_progress')   -- lets the planner use the active-jobs index
       and public.sync_job_is_claimable(j, l, p_now)
       and (p_job_id is null or j.id = p_job_id)
     order by j.created_at, j.id
     limit p_limit
       for update of j skip locked
  ), given_up as (
    -- The attempts ran out without a page landing: fail instead of trying once more.
    update public.historical_sync_jobs j
       set status = 'failed', completed_at = p_now, last_error_at = p_now,
           error_message = format(
             'Gave up after %s attempts in a row without a page landing; the last problem: %s',
             p.failed_attempts,
             coalesce(p.last_problem,
               'an invocation ended without reporting one (out of memory or CPU time, or killed)'))
      from picked p
     where j.id = p.id and p.exhausted
  ), given_up_lease as (
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
      from picked p
     where l.job_id = p.id and p.exhausted
  ), leased as (
    insert into public.historical_sync_job_leases as l (job_id, holder, expires_at, failed_attempts)
    select id, p_holder, p_now + make_interval(secs => p_lease_seconds), 1
      from picked where not exhausted
    on conflict (job_id) do update
      set holder = excluded.holder, expires_at = excluded.expires_at,
          failed_attempts = l.failed_attempts + 1, not_before = null
      -- a claim that lost the race takes nothing, nor one that a Retry-After release just beat
      where (l.holder is null or l.expires_at < p_now)
        and (l.not_before is null or l.not_before <= p_now)
    returning l.job_id
  )
  update public.historical_sync_jobs j
     set status = 'in_progress',
         started_at = coalesce(j.started_at, p_now),
         last_activity_at = p_now
    from leased
   where j.id = leased.job_id
  returning j.*;
$$;
comment on function public.claim_sync_jobs is
  'Leases up to p_limit claimable jobs (oldest first), skipping rows another claimer has locked, and counts an attempt on each; a job whose p_max_attempts attempts ran out is failed instead. With p_job_id only that job.';

-- ── page step ───────────────────────────────────────────────────────────────────────
drop function public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz);
create function public.record_sync_page(
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
  v_calls public.sync_page_call[];
  v_invalid public.sync_page_invalid[];
  v_counted integer[];      -- positions (ord) that count: in range, not counted at the mark before
  v_first integer[];        -- of those, the first position of each call id
  v_inserted integer[];     -- positions this transaction really inserted
  v_remaining integer;
  v_cut integer;            -- last position of the page that counts (max_calls)
  v_imported integer;
  v_refreshed integer;
  v_failed integer;
  v_failure text;
  v_unreadable integer;
  v_unreadable_fields text[];
  v_page_oldest timestamptz;
  v_mark timestamptz;
  v_mark_ids uuid[];
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
  if found then
    select l.* into v_state from public.historical_sync_job_leases l where l.job_id = p_job_id;
  else
    -- Fenced out: nothing from the page lands, and a lease still in our name is dropped.
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
     where l.job_id = p_job_id and l.holder = p_holder;
    return;
  end if;

  -- The input, read once.
  v_calls := array(select c from jsonb_populate_recordset(null::public.sync_page_call,
                                                          coalesce(p_calls, '[]')) c);
  v_invalid := array(select i from jsonb_populate_recordset(null::public.sync_page_invalid,
                                                            coalesce(p_invalid, '[]')) i);

  -- What counts: calls inside the job's range that this job has not counted at its oldest
  -- mark already (a walk resumed by time lists those again). A call repeated within the
  -- page counts at each position (skipped after the first), so processed_calls keeps
  -- pace with the objects Ultravox listed.
  select coalesce(array_agg(c.ord order by c.ord), '{}') into v_counted
    from unnest(v_calls) c
   where c.created_at <= v_job.date_to
     and (v_job.date_from is null or c.created_at >= v_job.date_from)
     and not (c.created_at = v_state.oldest_counted_at
              and c.ultravox_call_id = any (v_state.oldest_counted_ids));
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
    select v_job.agency_id, c.ultravox_call_id, c.ultravox_agent_id, c.created_at, c.joined_at,
           c.ended_at, c.end_reason, c.duration_seconds, c.billed_duration_seconds,
           c.short_summary, c.summary, coalesce(c.recording_enabled, false),
           coalesce(c.metadata, '{}'), c.raw, 'historical_sync', v_job.id, p_now
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
  v_remaining := v_job.max_calls - v_job.imported_calls;  -- null: no cap
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
  v_imported := cardinality(v_inserted);

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
     and t.source = 'historical_sync' and t.agency_id = v_job.agency_id
     and t.raw is distinct from c.raw
     and not (t.ended_at is not null and c.ended_at is null)
     and not (coalesce(t.raw ->> 'billingStatus', 'BILLING_STATUS_PENDING') <> 'BILLING_STATUS_PENDING'
              and c.raw ->> 'billingStatus' = 'BILLING_STATUS_PENDING');
  get diagnostics v_refreshed = row_count;

  -- Objects that cannot be stored, up to the cut; the latest in API order is named.
  select count(*), (array_agg(coalesce(i.call_id, 'a call without a valid callId') || ': ' || i.reason
                              order by i.ord desc))[1]
    into v_failed, v_failure
    from unnest(v_invalid) i
   where v_cut is null or i.ord <= v_cut;

  -- Fields stored as null for an unexpected shape, of the calls this page imported (a call
  -- skipped, e.g. re-listed or another agency's, was not stored here and is not counted
  -- again), and the oldest counted call.
  select count(*) filter (where c.ord = any (v_inserted) and cardinality(c.unreadable) > 0),
         min(c.created_at)
    into v_unreadable, v_page_oldest
    from unnest(v_calls) c
   where c.ord = any (v_first);
  select coalesce(array_agg(f order by f), '{}') into v_unreadable_fields
    from (select unnest(v_state.unreadable_fields) f
          union
          select unnest(c.unreadable) from unnest(v_calls) c
           where c.ord = any (v_inserted)) u;

  v_mark := v_state.oldest_counted_at;
  v_mark_ids := v_state.oldest_counted_ids;
  if v_page_oldest is not null and (v_mark is null or v_page_oldest <= v_mark) then
    v_mark_ids := array(
      select distinct i from unnest(
        case when v_page_oldest = v_mark then v_mark_ids else '{}' end ||
        array(select c.ultravox_call_id from unnest(v_calls) c
               where c.ord = any (v_counted) and c.created_at = v_page_oldest)) i);
    v_mark := v_page_oldest;
  end if;

  v_done := v_cut is not null or p_next_cursor is null;
  -- A catch-up's calls walk is followed by its deleted-calls walk: the job goes on.
  v_next_phase := v_done and v_state.catch_up;
  v_done := v_done and not v_next_phase;
  v_failure := coalesce(v_failure, v_state.latest_failure);

  return query
  with job as (
    update public.historical_sync_jobs j
       set cursor = p_next_cursor,
           processed_calls = j.processed_calls + cardinality(v_counted) + v_failed,
           imported_calls = j.imported_calls + v_imported,
           skipped_calls = j.skipped_calls + cardinality(v_counted) - v_imported,
           failed_calls = j.failed_calls + v_failed,
           total_calls = coalesce(j.total_calls, p_total),
           last_activity_at = p_now,
           status = case when v_done then 'completed'::public.sync_job_status else j.status end,
           completed_at = case when v_done then p_now else j.completed_at end,
           -- Built from stored counts and the stored latest failure, on every page that adds
           -- one and at completion, so it always says how many and why.
           error_message = case
             when (v_failed > 0 or v_done) and j.failed_calls + v_failed > 0 then
               format('%s call(s) failed validation and were not imported', j.failed_calls + v_failed)
               || coalesce(format(' (latest: %s)', v_failure), '')
             else j.error_message end,
           last_error_at = case when v_failed > 0 then p_now else j.last_error_at end
     where j.id = p_job_id
    returning j.*
  ), state as (
    update public.historical_sync_job_leases l
       set holder = case when v_done then null else l.holder end,
           expires_at = case when v_done then null
                             else p_now + make_interval(secs => p_lease_seconds) end,
           failed_attempts = 0,
           last_problem = null,
           phase = case when v_next_phase then 'deleted_calls' else l.phase end,
           refreshed_calls = l.refreshed_calls + v_refreshed,
           unreadable_calls = l.unreadable_calls + v_unreadable,
           unreadable_fields = v_unreadable_fields,
           latest_failure = v_failure,
           oldest_counted_at = v_mark,
           oldest_counted_ids = v_mark_ids
     where l.job_id = p_job_id
  )
  select job.status, job.processed_calls, job.imported_calls, job.skipped_calls,
         job.failed_calls, job.total_calls, v_imported, cardinality(v_counted) - v_imported,
         v_failed, v_refreshed
    from job;
end;
$$;
comment on function public.record_sync_page is
  'One page step in one transaction: inserts the page''s new calls, applies max_calls from the rows really inserted, refreshes changed calls the importer wrote, advances cursor and counters, keeps the oldest counted call and the unreadable fields, renews the lease and resets the attempts, and completes the job at the end of the range or the cap. Fenced on status, lease holder and cursor (both rows locked): empty, with nothing written and our lease dropped, when the job was cancelled or moved by another worker.';

-- ── release ─────────────────────────────────────────────────────────────────────────
drop function public.release_sync_job(uuid, uuid);
create function public.release_sync_job(
  p_job_id uuid,
  p_holder uuid,
  p_not_before timestamptz default null
) returns setof public.historical_sync_job_leases
language sql security definer set search_path = '' as $$
  update public.historical_sync_job_leases l
     set holder = null, expires_at = null,
         not_before = p_not_before,
         -- Waiting for a Retry-After is not an attempt: take back the one the claim counted.
         failed_attempts = case when p_not_before is null then l.failed_attempts
                                else greatest(l.failed_attempts - 1, 0) end
   where l.job_id = p_job_id and l.holder = p_holder
  returning l.*;
$$;
comment on function public.release_sync_job is
  'Drops our lease after an invocation that stopped cleanly (budget spent), so the next invocation can continue at once; with p_not_before (a Retry-After too long to wait out) no worker claims the job before then, and the attempt is not counted.';

-- ── the fence of an error or a failure ───────────────────────────────────────────────
-- Still in progress, still ours, from the cursor we read; job row, then lease row, as every
-- step and the cancel lock them (no deadlock). Empty when the caller was fenced out.
create function public.sync_step_fence(p_job_id uuid, p_holder uuid, p_cursor text)
returns setof uuid
language sql security definer set search_path = '' as $$
  select j.id
    from public.historical_sync_jobs j
    join public.historical_sync_job_leases l on l.job_id = j.id
   where j.id = p_job_id and j.status = 'in_progress'
     and j.cursor is not distinct from p_cursor and l.holder = p_holder
     for update of j, l;
$$;
comment on function public.sync_step_fence is
  'Locks the job and its lease (in that order) when the job is in progress, held by p_holder and still at p_cursor; empty otherwise. The fence of record_sync_error and fail_sync_job.';

-- ── transient error ─────────────────────────────────────────────────────────────────
drop function public.record_sync_error(uuid, uuid, text, text, integer, timestamptz);
create function public.record_sync_error(
  p_job_id uuid,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_max_attempts integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with fence as (
    select id from public.sync_step_fence(p_job_id, p_holder, p_cursor) as id
  ), state as (
    -- The attempt was counted at claim; this keeps the problem and releases the lease.
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null, last_problem = p_message
      from fence
     where l.job_id = fence.id
    returning l.failed_attempts
  )
  update public.historical_sync_jobs j
     set error_message = case when state.failed_attempts >= p_max_attempts
                              then format('%s (gave up after %s attempts)', p_message, state.failed_attempts)
                              else p_message end,
         last_error_at = p_now,
         status = case when state.failed_attempts >= p_max_attempts
                       then 'failed'::public.sync_job_status else j.status end,
         completed_at = case when state.failed_attempts >= p_max_attempts then p_now
                             else j.completed_at end
    from state
   where j.id = p_job_id
  returning j.*;
$$;
comment on function public.record_sync_error is
  'Notes a transient problem and releases the lease so a later tick retries; fails the job when this was attempt p_max_attempts in a row without a page landing.';

-- ── permanent failure ───────────────────────────────────────────────────────────────
-- As in 20261129000600, but fenced with sync_step_fence: job row, then lease row.
create or replace function public.fail_sync_job(
  p_job_id uuid,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with fence as (
    select id from public.sync_step_fence(p_job_id, p_holder, p_cursor) as id
  ), lease as (
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
      from fence
     where l.job_id = fence.id
    returning l.job_id
  )
  update public.historical_sync_jobs j
     set status = 'failed', completed_at = p_now, error_message = p_message, last_error_at = p_now
    from lease
   where j.id = lease.job_id
  returning j.*;
$$;

-- ── privileges ──────────────────────────────────────────────────────────────────────
revoke execute on function
  public.sync_job_is_claimable(public.historical_sync_jobs, public.historical_sync_job_leases, timestamptz),
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean),
  public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz, integer),
  public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz),
  public.release_sync_job(uuid, uuid, timestamptz),
  public.record_sync_error(uuid, uuid, text, text, integer, timestamptz),
  public.sync_step_fence(uuid, uuid, text)
from public, anon, authenticated;
grant execute on function
  public.sync_job_is_claimable(public.historical_sync_jobs, public.historical_sync_job_leases, timestamptz),
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz, text, boolean),
  public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz, integer),
  public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz),
  public.release_sync_job(uuid, uuid, timestamptz),
  public.record_sync_error(uuid, uuid, text, text, integer, timestamptz),
  public.sync_step_fence(uuid, uuid, text)
to service_role;
