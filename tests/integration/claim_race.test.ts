// claim_sync_jobs under real concurrency: claimers that start at the same moment must not
// both lease one job (the loser's snapshot still sees the lease free; its upsert must not
// overwrite the winner's lease).
import assert from "node:assert/strict";
import { TestDb } from "../support/db.ts";

const CLAIMERS = 4;
const ROUNDS = 100;

Deno.test("of four claimers racing for one job, exactly one gets the lease, every time", async () => {
  await using db = await TestDb.open();
  const { id: agencyId } = await db.createAgency();
  let doubleLeases = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const [{ id: jobId }] = await db.sql<{ id: string }[]>`
      select id from public.create_sync_job(${agencyId}, null, now(), null)`;
    const holders: string[] = Array.from({ length: CLAIMERS }, () => crypto.randomUUID());
    const claims = await Promise.all(holders.map((holder) =>
      db.sql<{ id: string }[]>`
        select id from public.claim_sync_jobs(${holder}, 1, 120, ${jobId})`
    ));
    const winners = holders.filter((_, i) => claims[i].length === 1);
    if (winners.length > 1) doubleLeases++;
    assert.ok(winners.length >= 1, `round ${round}: nobody claimed the job`);
    const [lease] = await db.sql<{ holder: string }[]>`
      select holder from public.historical_sync_job_leases where job_id = ${jobId}`;
    assert.ok(winners.includes(lease.holder), `round ${round}: the lease holder did not claim`);
    await db.sql`select 1 from public.cancel_sync_job(${jobId})`;
  }
  assert.equal(doubleLeases, 0, `${doubleLeases} of ${ROUNDS} rounds leased one job twice`);
});
