// Case 8 — tenant isolation in the database, with RLS applied as PostgREST applies it:
// `set local role authenticated` (or anon) and `request.jwt.claims` in a transaction. A member
// of agency A reads A's jobs and calls and nothing else (not B's, not anyone's in the shared
// database); writes nothing, not even its own rows; reads no lease, cron log, cron view or
// Vault secret; executes no backend function (the key setter included, and the functions that
// post to the processor with the secret key from Vault). `net` is open to PUBLIC on the
// platform (docs/ARCHITECTURE.md §7 "pg_net's real privileges") and the bootstrap mirrors
// that, so nothing here expects it closed: what the code relies on is that the secret key
// and project URL stay in Vault and only backend functions read them. Every probe runs in
// its own transaction, rolled back; B's rows are checked unchanged at the end.
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";
import { inRolledBackTransaction, pauseCron, type Sql } from "./support/harness.ts";
import { recordFigures } from "./support/results.ts";

type Who = { role: "authenticated"; sub: string } | { role: "anon" };
/** "denied": an insufficient_privilege error (42501). A number: exactly that many rows. */
type Expect = "denied" | number | ((rows: Record<string, unknown>[]) => boolean);

interface Probe {
  name: string;
  who: Who;
  query: (tx: Sql) => Promise<Record<string, unknown>[]>;
  expect: Expect;
  /** An allowed action (a positive control), not an attack. */
  control?: boolean;
}

async function attempt(sql: Sql, who: Who, query: Probe["query"]) {
  return await inRolledBackTransaction(sql, async (tx) => {
    const claims = who.role === "anon" ? { role: "anon" } : { sub: who.sub, role: who.role };
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    await tx.unsafe(`set local role ${who.role}`);
    try {
      return { rows: [...await query(tx)] as Record<string, unknown>[], code: null };
    } catch (e) {
      return { rows: null, code: (e as { code?: string }).code ?? String(e) };
    }
  });
}

async function fingerprintOf(sql: Sql, agencyId: string): Promise<string> {
  const [{ f }] = await sql<{ f: string }[]>`
    select md5(
      coalesce((select string_agg(j::text, '|' order by j.id) from public.historical_sync_jobs j
                 where j.agency_id = ${agencyId}::uuid), '') ||
      coalesce((select string_agg(c::text, '|' order by c.id) from public.calls c
                 where c.agency_id = ${agencyId}::uuid), '') ||
      coalesce((select string_agg(m::text, '|' order by m.user_id) from public.agency_members m
                 where m.agency_id = ${agencyId}::uuid), '') ||
      coalesce((select string_agg(l::text, '|') from public.historical_sync_job_leases l
                 join public.historical_sync_jobs j on j.id = l.job_id
                 where j.agency_id = ${agencyId}::uuid), '') ||
      coalesce((select s::text from public.agency_sync_settings s
                 where s.agency_id = ${agencyId}::uuid), '') ||
      coalesce((select decrypted_secret from vault.decrypted_secrets
                 where name = ${`ultravox_api_key:${agencyId}`}), '')) as f`;
  return f;
}

async function seedCalls(sql: Sql, agencyId: string, jobId: string, n: number) {
  for (let i = 0; i < n; i++) {
    await sql`
      insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source,
                                historical_sync_job_id)
      values (${agencyId}::uuid, gen_random_uuid(), '2026-09-01T00:00:00.000001Z', '{}',
              'historical_sync', ${jobId}::uuid)`;
  }
}

Deno.test("as authenticated and anon, nobody reads or writes another agency's rows or any backend-only data", async () => {
  const started = performance.now();
  await using db = await TestDb.open();
  const restoreCron = await pauseCron(db.sql);
  let cronLog: string | null = null;
  try {
    const a = await db.createAgency({
      members: { member: "member", admin: "admin" },
      ultravoxKey: "AAAAAAAA.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    });
    const b = await db.createAgency({
      members: { owner: "owner" },
      ultravoxKey: "BBBBBBBB.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
    });
    const aJob = await db.insertJob(a.id, {
      status: "completed",
      completed_at: "2026-10-01T00:00:00Z",
    });
    const bJob = await db.insertJob(b.id, { status: "in_progress", cursor: "c1" });
    await db.sql`
      insert into public.historical_sync_job_leases (job_id, holder, expires_at)
      values (${bJob.id}::uuid, gen_random_uuid(), now() + interval '1 hour')`;
    await seedCalls(db.sql, a.id, aJob.id, 3);
    await seedCalls(db.sql, b.id, bJob.id, 4);
    await db.sql`
      insert into public.agency_sync_settings (agency_id, auto_catch_up)
      values (${a.id}::uuid, false), (${b.id}::uuid, true)`;
    [{ id: cronLog }] = await db.sql<{ id: string }[]>`
      insert into public.cron_job_logs (job_name, status)
      values (${`reliability:tenancy-${crypto.randomUUID()}`}, 'running') returning id`;
    const bBefore = await fingerprintOf(db.sql, b.id);

    const member: Who = { role: "authenticated", sub: a.users.member };
    const admin: Who = { role: "authenticated", sub: a.users.admin };
    const anon: Who = { role: "anon" };
    const onlyAgency = (id: string) => (rows: Record<string, unknown>[]) =>
      rows.length > 0 && rows.every((r) => r.agency_id === id);
    const B = b.id;
    const jobB = bJob.id;
    const probes: Probe[] = [];
    const probe = (
      name: string,
      who: Who,
      expect: Expect,
      query: Probe["query"],
      control = false,
    ) => probes.push({ name, who, expect, query, control });

    for (const [label, who] of [["member", member], ["admin", admin]] as const) {
      // controls: its own agency is readable
      probe(
        `${label}: all jobs are A's`,
        who,
        onlyAgency(a.id),
        (tx) => tx`select agency_id::text from public.historical_sync_jobs`,
        true,
      );
      probe(
        `${label}: all calls are A's (3)`,
        who,
        (r) => r.length === 3 && onlyAgency(a.id)(r),
        (tx) => tx`select agency_id::text from public.calls`,
        true,
      );
      probe(
        `${label}: agencies = A`,
        who,
        (r) => r.length === 1 && r[0].id === a.id,
        (tx) => tx`select id::text from public.agencies`,
        true,
      );
      probe(
        `${label}: members are A's`,
        who,
        onlyAgency(a.id),
        (tx) => tx`select agency_id::text from public.agency_members`,
        true,
      );
      probe(
        `${label}: my_agency_ids() = A`,
        who,
        (r) => r.length === 1 && r[0].id === a.id,
        (tx) => tx`select id::text from public.my_agency_ids() as id`,
        true,
      );
      probe(
        `${label}: sync settings are A's`,
        who,
        (r) => r.length === 1 && r[0].agency_id === a.id,
        (tx) => tx`select agency_id::text from public.agency_sync_settings`,
        true,
      );
      probe(
        `${label}: has_agency_role(B) is false`,
        who,
        (r) => r[0]?.ok === false,
        (tx) => tx`select public.has_agency_role(${B}::uuid) as ok`,
        true,
      );
      // reads of another agency
      probe(
        `${label}: B's jobs`,
        who,
        0,
        (tx) => tx`select 1 from public.historical_sync_jobs where agency_id = ${B}::uuid`,
      );
      probe(
        `${label}: B's job by id`,
        who,
        0,
        (tx) => tx`select 1 from public.historical_sync_jobs where id = ${jobB}::uuid`,
      );
      probe(
        `${label}: B's calls`,
        who,
        0,
        (tx) => tx`select 1 from public.calls where agency_id = ${B}::uuid`,
      );
      probe(
        `${label}: B's agency row`,
        who,
        0,
        (tx) => tx`select 1 from public.agencies where id = ${B}::uuid`,
      );
      probe(
        `${label}: B's members`,
        who,
        0,
        (tx) => tx`select 1 from public.agency_members where agency_id = ${B}::uuid`,
      );
      // writes, to B and to A alike
      for (const [agency, tag] of [[B, "B"], [a.id, "A"]] as const) {
        probe(
          `${label}: insert a job for ${tag}`,
          who,
          "denied",
          (tx) =>
            tx`insert into public.historical_sync_jobs (agency_id, date_to)
             values (${agency}::uuid, now()) returning 1`,
        );
        probe(
          `${label}: update ${tag}'s jobs`,
          who,
          0,
          (tx) =>
            tx`update public.historical_sync_jobs set status = 'cancelled', imported_calls = 999
              where agency_id = ${agency}::uuid returning 1`,
        );
        probe(
          `${label}: delete ${tag}'s jobs`,
          who,
          0,
          (tx) =>
            tx`delete from public.historical_sync_jobs where agency_id = ${agency}::uuid returning 1`,
        );
        probe(
          `${label}: insert a call for ${tag}`,
          who,
          "denied",
          (tx) =>
            tx`insert into public.calls (agency_id, ultravox_call_id, created_at, raw, source)
             values (${agency}::uuid, gen_random_uuid(), now(), '{}', 'x') returning 1`,
        );
        probe(
          `${label}: delete ${tag}'s calls`,
          who,
          0,
          (tx) => tx`delete from public.calls where agency_id = ${agency}::uuid returning 1`,
        );
      }
      probe(
        `${label}: move B's calls to A`,
        who,
        0,
        (tx) =>
          tx`update public.calls set agency_id = ${a.id}::uuid where agency_id = ${B}::uuid returning 1`,
      );
      probe(
        `${label}: join B as owner`,
        who,
        "denied",
        (tx) =>
          tx`insert into public.agency_members (agency_id, user_id, role)
           values (${B}::uuid, ${(who as { sub: string }).sub}::uuid, 'owner') returning 1`,
      );
      probe(
        `${label}: promote itself to owner`,
        who,
        0,
        (tx) =>
          tx`update public.agency_members set role = 'owner'
            where user_id = ${(who as { sub: string }).sub}::uuid returning 1`,
      );
      probe(
        `${label}: create an agency`,
        who,
        "denied",
        (tx) => tx`insert into public.agencies (name) values ('mine') returning 1`,
      );
      // agency_sync_settings: owners and admins change their own agency's (docs/ARCHITECTURE.md
      // §4), nobody another agency's, and nobody deletes a row.
      probe(
        `${label}: turn B's auto catch-up off`,
        who,
        0,
        (tx) =>
          tx`update public.agency_sync_settings set auto_catch_up = false
              where agency_id = ${B}::uuid returning 1`,
      );
      probe(
        `${label}: delete B's sync settings`,
        who,
        "denied",
        (tx) =>
          tx`delete from public.agency_sync_settings where agency_id = ${B}::uuid returning 1`,
      );
      probe(
        `${label}: delete A's sync settings`,
        who,
        "denied",
        (tx) =>
          tx`delete from public.agency_sync_settings where agency_id = ${a.id}::uuid returning 1`,
      );
      for (const [agency, tag] of [[B, "B"], ...(label === "member" ? [[a.id, "A"]] : [])]) {
        probe(
          `${label}: add sync settings for ${tag}`,
          who,
          "denied",
          (tx) =>
            tx`insert into public.agency_sync_settings (agency_id, auto_catch_up)
               values (${agency}::uuid, true) on conflict do nothing returning 1`,
        );
      }
      probe(
        `${label}: turn A's auto catch-up on`,
        who,
        label === "admin" ? 1 : 0,
        (tx) =>
          tx`update public.agency_sync_settings set auto_catch_up = true
              where agency_id = ${a.id}::uuid returning 1`,
        label === "admin",
      );
      // backend-only data
      probe(
        `${label}: leases`,
        who,
        "denied",
        (tx) => tx`select * from public.historical_sync_job_leases`,
      );
      probe(
        `${label}: slices`,
        who,
        "denied",
        (tx) => tx`select * from public.historical_sync_job_slices`,
      );
      probe(
        `${label}: dispatch settings`,
        who,
        "denied",
        (tx) => tx`update public.sync_dispatch_settings set max_invocations = 64 returning 1`,
      );
      probe(
        `${label}: cron_job_logs`,
        who,
        "denied",
        (tx) => tx`select * from public.cron_job_logs`,
      );
      probe(
        `${label}: write cron_job_logs`,
        who,
        "denied",
        (tx) => tx`insert into public.cron_job_logs (job_name) values ('x') returning 1`,
      );
      probe(
        `${label}: the cron view`,
        who,
        "denied",
        (tx) => tx`select * from public.virsyn_cron_jobs`,
      );
      probe(
        `${label}: cron.job`,
        who,
        (r) => r === null || r.length === 0,
        (tx) => tx`select * from cron.job`,
      );
      probe(
        `${label}: cron.job_run_details`,
        who,
        (r) => r === null || r.length === 0,
        (tx) => tx`select * from cron.job_run_details`,
      );
      probe(`${label}: vault.secrets`, who, "denied", (tx) => tx`select * from vault.secrets`);
      probe(
        `${label}: vault.decrypted_secrets`,
        who,
        "denied",
        (tx) => tx`select * from vault.decrypted_secrets`,
      );
      probe(
        `${label}: the Vault secrets the dispatcher posts with`,
        who,
        "denied",
        (tx) =>
          tx`select decrypted_secret from vault.decrypted_secrets
              where name in ('project_url', 'functions_secret_key')`,
      );
      probe(
        `${label}: sync_user_actions`,
        who,
        "denied",
        (tx) => tx`select * from public.sync_user_actions`,
      );
      // backend functions
      const fns: [string, (tx: Sql) => Promise<Record<string, unknown>[]>][] = [
        [
          "set B's key",
          (tx) => tx`select public.set_agency_ultravox_api_key(${B}::uuid, 'stolen')`,
        ],
        [
          "set A's key",
          (tx) => tx`select public.set_agency_ultravox_api_key(${a.id}::uuid, 'mine')`,
        ],
        ["read B's key", (tx) => tx`select public.get_agency_ultravox_api_key(${B}::uuid)`],
        [
          "ask whether B has a key",
          (tx) => tx`select public.agency_has_ultravox_api_key(${B}::uuid)`,
        ],
        [
          "create a job for B",
          (tx) => tx`select * from public.create_sync_job(${B}::uuid, null, now(), 1)`,
        ],
        ["cancel B's job", (tx) => tx`select * from public.cancel_sync_job(${jobB}::uuid)`],
        ["claim jobs", (tx) => tx`select * from public.claim_sync_jobs(gen_random_uuid(), 10, 60)`],
        [
          "record a page",
          (tx) =>
            tx`select * from public.record_sync_page(${jobB}::uuid, gen_random_uuid(), 'c1', null,
                                                    '[]', '[]', null, 60)`,
        ],
        [
          "fail B's job",
          (tx) =>
            tx`select * from public.fail_sync_job(${jobB}::uuid, gen_random_uuid(), 'c1', 'x')`,
        ],
        ["dispatch", (tx) => tx`select public.dispatch_historical_sync()`],
        [
          "post to the processor with the secret key",
          (tx) => tx`select public.post_process_historical_sync('{}'::jsonb)`,
        ],
        ["request a continuation", (tx) => tx`select public.request_sync_continuation()`],
        [
          "kick B's job",
          (tx) => tx`select public.request_sync_continuation(${jobB}::uuid)`,
        ],
        [
          "complete a cron log",
          (tx) => tx`select public.complete_cron_log(${cronLog}::uuid, 'completed')`,
        ],
        ["clean up cron logs", (tx) => tx`select public.cleanup_cron_job_logs()`],
        [
          "vault.create_secret",
          (tx) => tx`select vault.create_secret('x', ${`ultravox_api_key:${B}`})`,
        ],
      ];
      for (const [name, query] of fns) {
        probe(`${label}: ${name}`, who, "denied", query);
      }
    }
    // anon: nothing at all
    for (const table of ["historical_sync_jobs", "calls", "agencies", "agency_members"]) {
      probe(
        `anon: ${table}`,
        anon,
        (r) => r === null || r.length === 0,
        (tx) => tx.unsafe(`select * from public.${table}`),
      );
    }
    probe(
      "anon: insert a job",
      anon,
      "denied",
      (tx) =>
        tx`insert into public.historical_sync_jobs (agency_id, date_to) values (${B}::uuid, now())
         returning 1`,
    );
    probe(
      "anon: update jobs",
      anon,
      (r) => r === null || r.length === 0,
      (tx) => tx`update public.historical_sync_jobs set status = 'cancelled' returning 1`,
    );
    for (
      const table of [
        "historical_sync_job_leases",
        "historical_sync_job_slices",
        "sync_dispatch_settings",
        "cron_job_logs",
        "virsyn_cron_jobs",
        "sync_user_actions",
        "agency_sync_settings",
      ]
    ) {
      probe(`anon: ${table}`, anon, "denied", (tx) => tx.unsafe(`select * from public.${table}`));
    }
    probe(
      "anon: vault.decrypted_secrets",
      anon,
      "denied",
      (tx) => tx`select * from vault.decrypted_secrets`,
    );
    probe(
      "anon: the Vault secrets the dispatcher posts with",
      anon,
      "denied",
      (tx) =>
        tx`select decrypted_secret from vault.decrypted_secrets
            where name in ('project_url', 'functions_secret_key')`,
    );
    probe("anon: my_agency_ids", anon, "denied", (tx) => tx`select public.my_agency_ids()`);
    probe(
      "anon: post to the processor",
      anon,
      "denied",
      (tx) => tx`select public.post_process_historical_sync('{}'::jsonb)`,
    );
    probe(
      "anon: request a continuation",
      anon,
      "denied",
      (tx) => tx`select public.request_sync_continuation()`,
    );
    probe("anon: dispatch", anon, "denied", (tx) => tx`select public.dispatch_historical_sync()`);
    probe(
      "anon: has_agency_role",
      anon,
      "denied",
      (tx) => tx`select public.has_agency_role(${B}::uuid)`,
    );
    probe(
      "anon: set a key",
      anon,
      "denied",
      (tx) => tx`select public.set_agency_ultravox_api_key(${B}::uuid, 'stolen')`,
    );
    probe(
      "anon: read a key",
      anon,
      "denied",
      (tx) => tx`select public.get_agency_ultravox_api_key(${B}::uuid)`,
    );
    probe(
      "anon: cancel a job",
      anon,
      "denied",
      (tx) => tx`select * from public.cancel_sync_job(${jobB}::uuid)`,
    );

    const leaks: string[] = [];
    for (const p of probes) {
      const { rows, code } = await attempt(db.sql, p.who, p.query);
      let ok: boolean;
      if (p.expect === "denied") ok = code === "42501";
      else if (typeof p.expect === "number") ok = rows !== null && rows.length === p.expect;
      else {ok = code === null || code === "42501"
          ? p.expect(rows as Record<string, unknown>[])
          : false;}
      if (!ok) leaks.push(`${p.name}: ${code ?? `${rows?.length} row(s)`}`);
    }

    // The catalogue: no function but the membership helpers the policies and a dashboard use
    // (has_agency_role, my_agency_ids, my_agency_ids_as; authenticated only) is executable by
    // the API roles, every table has RLS, and no policy lets the API roles write but the
    // insert and update of agency_sync_settings by owners and admins (probed above).
    const catalogue = await db.sql<{ problem: string }[]>`
      select 'executable by ' || r.role || ': ' || p.oid::regprocedure::text as problem
        from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace and n.nspname = 'public'
        cross join (values ('anon'), ('authenticated')) as r(role)
       where has_function_privilege(r.role, p.oid, 'execute')
         and not (r.role = 'authenticated'
                  and p.proname in ('has_agency_role', 'my_agency_ids', 'my_agency_ids_as'))
      union all
      select 'no RLS on ' || c.relname
        from pg_class c join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
       where c.relkind = 'r' and not c.relrowsecurity
      union all
      select 'a write policy: ' || tablename || ' / ' || policyname
        from pg_policies where schemaname = 'public' and cmd <> 'SELECT'
         and not (tablename = 'agency_sync_settings' and cmd in ('INSERT', 'UPDATE')
                  and roles = '{authenticated}')`;
    leaks.push(...catalogue.map((c) => c.problem));
    const bAfter = await fingerprintOf(db.sql, b.id);
    if (bAfter !== bBefore) leaks.push("agency B's rows changed");

    await recordFigures({
      suite: "tenancy",
      test: "RLS and grants as authenticated (member, admin) and anon",
      cases: probes.length + 3,
      faults: probes.filter((p) => !p.control).length,
      calls_expected: 0,
      calls_lost: 0,
      calls_duplicated: 0,
      counter_mismatches: leaks.length,
      notes: { controls: probes.filter((p) => p.control).length, leaks },
    }, started);
    assert.deepEqual(leaks, []);
  } finally {
    if (cronLog) await db.sql`delete from public.cron_job_logs where id = ${cronLog}::uuid`;
    await restoreCron();
  }
});
