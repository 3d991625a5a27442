// deno task db:start is idempotent: on a running cluster it changes nothing and says so.
import assert from "node:assert/strict";

Deno.test("db:start on a running cluster leaves it running and says where", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../../scripts/db/start.ts", import.meta.url).pathname],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stderr, /^\[db\] cluster 15\/supabase is running on 127\.0\.0\.1:54322$/m);
  assert.doesNotMatch(stderr, /creating|installing|restarting/);
});
