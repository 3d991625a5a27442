// Test data on the real local Postgres (docs/ARCHITECTURE.md §8). Every test makes its own agency and
// users, so tests never depend on each other or on what the seed holds, and removes them
// afterwards (`TestDb.close()` / `await using`).
import { connect, type Sql } from "../../supabase/functions/_shared/platform/db.ts";
import { dbUrl } from "../../scripts/db/local_cluster.ts";
import type { JobRow } from "../../supabase/functions/_shared/jobs/view.ts";

export type { Sql };
export type Role = "owner" | "admin" | "member";

export const TEST_DB_URL = dbUrl();

/** A fresh connection (timestamptz as ISO strings, like the functions'); end it yourself. */
export function testSql(max = 4): Sql {
  return connect(TEST_DB_URL, { max });
}

/** Inserts a confirmed user into auth.users; returns its id. */
export async function createUser(sql: Sql, label = "user"): Promise<string> {
  const id = crypto.randomUUID();
  await sql`
    insert into auth.users (id, aud, role, email, email_confirmed_at, created_at, updated_at,
                            raw_app_meta_data, raw_user_meta_data)
    values (${id}::uuid, 'authenticated', 'authenticated', ${`${label}-${id}@example.test`},
            now(), now(), now(), '{"provider":"email"}', '{}')`;
  return id;
}

export interface TestAgency {
  id: string;
  /** User id per member name given to createAgency. */
  users: Record<string, string>;
}

export interface AgencyOptions {
  /** Member name → role, e.g. `{ owner: "owner", viewer: "member" }`. */
  members?: Record<string, Role>;
  name?: string;
  /** Stores this Ultravox key in Vault (set_agency_ultravox_api_key). */
  ultravoxKey?: string;
}

export async function createAgency(sql: Sql, opts: AgencyOptions = {}): Promise<TestAgency> {
  const [{ id }] = await sql<{ id: string }[]>`
    insert into public.agencies (name) values (${opts.name ?? `Test agency ${crypto.randomUUID()}`})
    returning id`;
  const users: Record<string, string> = {};
  for (const [member, role] of Object.entries(opts.members ?? {})) {
    users[member] = await createUser(sql, member);
    await sql`
      insert into public.agency_members (agency_id, user_id, role)
      values (${id}::uuid, ${users[member]}::uuid, ${role})`;
  }
  if (opts.ultravoxKey !== undefined) await setUltravoxKey(sql, id, opts.ultravoxKey);
  return { id, users };
}

export async function setUltravoxKey(sql: Sql, agencyId: string, key: string): Promise<void> {
  await sql`select public.set_agency_ultravox_api_key(${agencyId}::uuid, ${key})`;
}

/** Inserts a job row directly (any state), bypassing the transition functions. */
export async function insertJob(
  sql: Sql,
  agencyId: string,
  fields: Partial<Omit<JobRow, "id" | "agency_id">> = {},
): Promise<JobRow> {
  const row = { date_to: new Date().toISOString(), ...fields, agency_id: agencyId };
  const [job] = await sql<JobRow[]>`
    insert into public.historical_sync_jobs ${sql(row as Record<string, unknown>)}
    returning *`;
  return job;
}

export async function loadJobRow(sql: Sql, jobId: string): Promise<JobRow | null> {
  const [job] = await sql<
    JobRow[]
  >`select * from public.historical_sync_jobs where id = ${jobId}::uuid`;
  return job ?? null;
}

export async function countJobs(sql: Sql, agencyId: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }[]>`
    select count(*)::int as n from public.historical_sync_jobs where agency_id = ${agencyId}::uuid`;
  return n;
}

/** Removes agencies (their jobs, calls and members cascade), their keys, and users. */
export async function removeTestData(
  sql: Sql,
  data: { agencyIds?: string[]; userIds?: string[] },
): Promise<void> {
  const agencyIds = data.agencyIds ?? [];
  const userIds = data.userIds ?? [];
  if (agencyIds.length > 0) {
    await sql`
      delete from vault.secrets
       where name = any (${agencyIds.map((id) => `ultravox_api_key:${id}`)}::text[])`;
    await sql`delete from public.agencies where id = any (${agencyIds}::uuid[])`;
  }
  if (userIds.length > 0) await sql`delete from auth.users where id = any (${userIds}::uuid[])`;
}

/**
 * One test's database handle: creates what the test needs and removes exactly that when
 * closed. `await using db = await TestDb.open();`
 */
export class TestDb {
  private agencyIds: string[] = [];
  private userIds: string[] = [];

  private constructor(readonly sql: Sql) {}

  static open(): Promise<TestDb> {
    return Promise.resolve(new TestDb(testSql()));
  }

  async createUser(label?: string): Promise<string> {
    const id = await createUser(this.sql, label);
    this.userIds.push(id);
    return id;
  }

  async createAgency(opts: AgencyOptions = {}): Promise<TestAgency> {
    const agency = await createAgency(this.sql, opts);
    this.agencyIds.push(agency.id);
    this.userIds.push(...Object.values(agency.users));
    return agency;
  }

  insertJob(agencyId: string, fields?: Parameters<typeof insertJob>[2]): Promise<JobRow> {
    return insertJob(this.sql, agencyId, fields);
  }

  loadJob(jobId: string): Promise<JobRow | null> {
    return loadJobRow(this.sql, jobId);
  }

  countJobs(agencyId: string): Promise<number> {
    return countJobs(this.sql, agencyId);
  }

  async close(): Promise<void> {
    try {
      await removeTestData(this.sql, { agencyIds: this.agencyIds, userIds: this.userIds });
    } finally {
      await this.sql.end({ timeout: 5 });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
