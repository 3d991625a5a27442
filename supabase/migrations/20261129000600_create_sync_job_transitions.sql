-- Every state change of a historical sync job, one function each (River's style): each
-- update names the state it expects and the lease and cursor it was given, so a caller
-- that lost a race changes nothing and sees an empty result instead of an error.
--
--   create_sync_job     → pending                 (one active job per agency, race-free)
--   claim_sync_jobs     pending/in_progress → in_progress, lease taken
--   record_sync_page    calls upserted + checkpoint, in one transaction; completes the job
--                       when the range is exhausted or max_calls is reached
--   release_sync_job    lease dropped so the next invocation continues at once
--   renew_sync_lease    heartbeat while waiting on Ultravox
--   record_sync_error   transient problem noted; failed after too many attempts in a row
--   fail_sync_job       → failed (permanent problem)
--   cancel_sync_job     → cancelled
--
-- All are security definer with an empty search_path and executable by service_role only.

-- ── create ──────────────────────────────────────────────────────────────────────────
create or replace function public.create_sync_job(
  p_agency_id uuid,
  p_date_from timestamptz,
  p_date_to timestamptz,
  p_max_calls integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  insert into public.historical_sync_jobs (agency_id, date_from, date_to, max_calls, created_at)
  values (p_agency_id, p_date_from, p_date_to, p_max_calls, p_now)
  on conflict (agency_id) where status in ('pending', 'in_progress') do nothing
  returning *;
$$;
comment on function public.create_sync_job is
  'Inserts a pending job; empty when the agency already has an active one (the unique partial index decides, so two racing starts cannot both succeed).';

-- ── claim ───────────────────────────────────────────────────────────────────────────
create or replace function public.claim_sync_jobs(
  p_holder uuid,
  p_limit integer,
  p_lease_seconds integer,
  p_job_id uuid default null,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with picked as (
    select j.id
      from public.historical_sync_jobs j
      left join public.historical_sync_job_leases l on l.job_id = j.id
     where j.status in ('pending', 'in_progress')
       and (p_job_id is null or j.id = p_job_id)
       and (l.holder is null or l.expires_at < p_now)        -- no live lease
     order by j.created_at, j.id
     limit p_limit
       for update of j skip locked
  ), leased as (
    insert into public.historical_sync_job_leases as l (job_id, holder, expires_at)
    select id, p_holder, p_now + make_interval(secs => p_lease_seconds) from picked
    on conflict (job_id) do update
      set holder = excluded.holder, expires_at = excluded.expires_at
      where l.holder is null or l.expires_at < p_now   -- a claim that lost the race takes nothing
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
  'Leases up to p_limit active jobs that no live lease holds (oldest first), skipping rows another claimer has locked. With p_job_id only that job.';

-- ── page step ───────────────────────────────────────────────────────────────────────
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
  page_failed integer
)
language plpgsql security definer set search_path = '' as $$
declare
  v_job public.historical_sync_jobs;
  v_remaining integer;
  v_inserted integer[];
  v_cut integer;            -- last position (ord) of the page that counts
  v_imported integer;
  v_skipped integer;
  v_failed integer;
  v_done boolean;
  v_failure text;
begin
  -- Fence: still in progress, still ours, and nobody moved the cursor since we read it.
  -- The row lock also orders us against a concurrent cancel.
  select j.* into v_job
    from public.historical_sync_jobs j
    join public.historical_sync_job_leases l on l.job_id = j.id
   where j.id = p_job_id
     and j.status = 'in_progress'
     and j.cursor is not distinct from p_from_cursor
     and l.holder = p_holder
     for update of j;
  if not found then
    return;
  end if;

  v_remaining := v_job.max_calls - v_job.imported_calls;  -- null: no cap

  -- Set-based upsert of the page's valid calls in API order; calls outside the job's range
  -- do not count. RETURNING tells which rows this transaction really inserted.
  with src as (
    select distinct on (r.ultravox_call_id) r.*   -- a call repeated in a page counts once
      from jsonb_to_recordset(coalesce(p_calls, '[]')) as r(
        ord integer, ultravox_call_id uuid, ultravox_agent_id uuid, created_at timestamptz,
        joined_at timestamptz, ended_at timestamptz, end_reason text, duration_seconds numeric,
        billed_duration_seconds numeric, short_summary text, summary text,
        recording_enabled boolean, metadata jsonb, raw jsonb)
     where r.created_at <= v_job.date_to
       and (v_job.date_from is null or r.created_at >= v_job.date_from)
     order by r.ultravox_call_id, r.ord
  ), ins as (
    insert into public.calls (
      agency_id, ultravox_call_id, ultravox_agent_id, created_at, joined_at, ended_at,
      end_reason, duration_seconds, billed_duration_seconds, short_summary, summary,
      recording_enabled, metadata, raw, source, historical_sync_job_id, imported_at)
    select v_job.agency_id, c.ultravox_call_id, c.ultravox_agent_id, c.created_at, c.joined_at,
           c.ended_at, c.end_reason, c.duration_seconds, c.billed_duration_seconds,
           c.short_summary, c.summary, coalesce(c.recording_enabled, false),
           coalesce(c.metadata, '{}'), c.raw, 'historical_sync', v_job.id, p_now
      from src c
     order by c.ord
    on conflict (ultravox_call_id) do nothing
    returning ultravox_call_id
  )
  select coalesce(array_agg(src.ord order by src.ord), '{}')
    into v_inserted
    from ins join src using (ultravox_call_id);

  -- max_calls: cut right after the insert that reaches the cap, decided from what was
  -- actually inserted; rows inserted past the cut are taken back in this transaction.
  if v_remaining is not null and cardinality(v_inserted) >= v_remaining then
    v_cut := v_inserted[greatest(v_remaining, 1)];
    delete from public.calls c
     using jsonb_to_recordset(p_calls) as r(ord integer, ultravox_call_id uuid)
     where c.ultravox_call_id = r.ultravox_call_id
       and r.ord = any (v_inserted) and r.ord > v_cut;
  end if;

  select count(*) filter (where r.ord = any (v_inserted)),
         count(*) filter (where not r.ord = any (v_inserted))
    into v_imported, v_skipped
    from jsonb_to_recordset(coalesce(p_calls, '[]')) as r(ord integer, created_at timestamptz)
   where r.created_at <= v_job.date_to
     and (v_job.date_from is null or r.created_at >= v_job.date_from)
     and (v_cut is null or r.ord <= v_cut);

  select count(*),
         (array_agg(coalesce(i.call_id, 'a call without a valid callId') || ': ' || i.reason
                    order by i.ord desc))[1]
    into v_failed, v_failure
    from jsonb_to_recordset(coalesce(p_invalid, '[]')) as i(ord integer, call_id text, reason text)
   where v_cut is null or i.ord <= v_cut;

  v_done := v_cut is not null or p_next_cursor is null;

  return query
  with job as (
    update public.historical_sync_jobs j
       set cursor = p_next_cursor,
           processed_calls = j.processed_calls + v_imported + v_skipped + v_failed,
           imported_calls = j.imported_calls + v_imported,
           skipped_calls = j.skipped_calls + v_skipped,
           failed_calls = j.failed_calls + v_failed,
           total_calls = coalesce(j.total_calls, p_total),
           last_activity_at = p_now,
           status = case when v_done then 'completed'::public.sync_job_status else j.status end,
           completed_at = case when v_done then p_now else j.completed_at end,
           error_message = case
             when v_failed > 0 then format(
               '%s call(s) failed validation and were not imported (latest: %s)',
               j.failed_calls + v_failed, v_failure)
             -- a validation message carries the running total: keep its "latest" reason
             when v_done and j.failed_calls > 0 and j.error_message like
                  '% call(s) failed validation and were not imported (latest: %'
               then j.error_message
             when v_done and j.failed_calls > 0 then format(
               '%s call(s) failed validation and were not imported', j.failed_calls)
             else j.error_message end,
           last_error_at = case when v_failed > 0 then p_now else j.last_error_at end
     where j.id = p_job_id
    returning j.*
  ), lease as (
    update public.historical_sync_job_leases l
       set holder = case when v_done then null else l.holder end,
           expires_at = case when v_done then null
                             else p_now + make_interval(secs => p_lease_seconds) end,
           failed_attempts = 0
     where l.job_id = p_job_id
  )
  select job.status, job.processed_calls, job.imported_calls, job.skipped_calls,
         job.failed_calls, job.total_calls, v_imported, v_skipped, v_failed
    from job;
end;
$$;
comment on function public.record_sync_page is
  'One page step in one transaction: upserts the page''s calls (on conflict do nothing), applies max_calls from the rows really inserted, advances cursor and counters, renews the lease, and completes the job at the end of the range or the cap. Fenced on status, lease holder and cursor: empty (and nothing written) when the job was cancelled or moved by another worker.';

-- ── release ─────────────────────────────────────────────────────────────────────────
create or replace function public.release_sync_job(p_job_id uuid, p_holder uuid)
returns setof public.historical_sync_job_leases
language sql security definer set search_path = '' as $$
  update public.historical_sync_job_leases l
     set holder = null, expires_at = null, failed_attempts = 0
   where l.job_id = p_job_id and l.holder = p_holder
  returning l.*;
$$;
comment on function public.release_sync_job is
  'Drops our lease after an invocation that stopped cleanly (budget spent), so the next invocation can continue at once.';

-- ── lease renewal ───────────────────────────────────────────────────────────────────
create or replace function public.renew_sync_lease(
  p_job_id uuid,
  p_holder uuid,
  p_lease_seconds integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_job_leases
language sql security definer set search_path = '' as $$
  update public.historical_sync_job_leases l
     set expires_at = p_now + make_interval(secs => p_lease_seconds)
   where l.job_id = p_job_id and l.holder = p_holder
  returning l.*;
$$;
comment on function public.renew_sync_lease is
  'Heartbeat while a worker waits on Ultravox (Retry-After, backoff) between page steps, so a live worker never loses its lease; empty when the lease is no longer ours.';

-- ── transient error ─────────────────────────────────────────────────────────────────
create or replace function public.record_sync_error(
  p_job_id uuid,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_max_attempts integer,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with lease as (
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null, failed_attempts = l.failed_attempts + 1
      from public.historical_sync_jobs j
     where l.job_id = p_job_id and l.holder = p_holder
       and j.id = l.job_id and j.status = 'in_progress'
       and j.cursor is not distinct from p_cursor
    returning l.failed_attempts
  )
  update public.historical_sync_jobs j
     set error_message = case when lease.failed_attempts >= p_max_attempts
                              then format('%s (gave up after %s attempts)', p_message, lease.failed_attempts)
                              else p_message end,
         last_error_at = p_now,
         status = case when lease.failed_attempts >= p_max_attempts
                       then 'failed'::public.sync_job_status else j.status end,
         completed_at = case when lease.failed_attempts >= p_max_attempts then p_now
                             else j.completed_at end
    from lease
   where j.id = p_job_id
  returning j.*;
$$;
comment on function public.record_sync_error is
  'Notes a transient problem and releases the lease so a later tick retries; fails the job once p_max_attempts invocations in a row ended this way.';

-- ── permanent failure ───────────────────────────────────────────────────────────────
create or replace function public.fail_sync_job(
  p_job_id uuid,
  p_holder uuid,
  p_cursor text,
  p_message text,
  p_now timestamptz default now()
) returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with lease as (
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
      from public.historical_sync_jobs j
     where l.job_id = p_job_id and l.holder = p_holder
       and j.id = l.job_id and j.status = 'in_progress'
       and j.cursor is not distinct from p_cursor
    returning l.job_id
  )
  update public.historical_sync_jobs j
     set status = 'failed', completed_at = p_now, error_message = p_message, last_error_at = p_now
    from lease
   where j.id = lease.job_id
  returning j.*;
$$;
comment on function public.fail_sync_job is
  'Fails the job for a reason retrying cannot fix (key rejected, bad request); fenced like a page step.';

-- ── cancel ──────────────────────────────────────────────────────────────────────────
create or replace function public.cancel_sync_job(p_job_id uuid, p_now timestamptz default now())
returns setof public.historical_sync_jobs
language sql security definer set search_path = '' as $$
  with job as (
    update public.historical_sync_jobs j
       set status = 'cancelled', completed_at = p_now, last_activity_at = p_now
     where j.id = p_job_id and j.status in ('pending', 'in_progress')
    returning j.*
  ), lease as (
    update public.historical_sync_job_leases l
       set holder = null, expires_at = null
      from job
     where l.job_id = job.id
  )
  select * from job;
$$;
comment on function public.cancel_sync_job is
  'Cancels an active job; empty when it was not active. Waits for a page step in flight (row lock), and that step''s fence fails afterwards, so no call lands for the job once this returns.';

-- ── privileges ──────────────────────────────────────────────────────────────────────
revoke execute on function
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz),
  public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz),
  public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz),
  public.release_sync_job(uuid, uuid),
  public.renew_sync_lease(uuid, uuid, integer, timestamptz),
  public.record_sync_error(uuid, uuid, text, text, integer, timestamptz),
  public.fail_sync_job(uuid, uuid, text, text, timestamptz),
  public.cancel_sync_job(uuid, timestamptz)
from public, anon, authenticated;
grant execute on function
  public.create_sync_job(uuid, timestamptz, timestamptz, integer, timestamptz),
  public.claim_sync_jobs(uuid, integer, integer, uuid, timestamptz),
  public.record_sync_page(uuid, uuid, text, text, jsonb, jsonb, integer, integer, timestamptz),
  public.release_sync_job(uuid, uuid),
  public.renew_sync_lease(uuid, uuid, integer, timestamptz),
  public.record_sync_error(uuid, uuid, text, text, integer, timestamptz),
  public.fail_sync_job(uuid, uuid, text, text, timestamptz),
  public.cancel_sync_job(uuid, timestamptz)
to service_role;
