import assert from "node:assert/strict";
import {
  drainBackground,
  runInBackground,
} from "../../supabase/functions/_shared/platform/background.ts";

type Global = { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } };

Deno.test("under the edge runtime, background work is handed to EdgeRuntime.waitUntil", async () => {
  const handed: Promise<unknown>[] = [];
  (globalThis as Global).EdgeRuntime = { waitUntil: (p) => void handed.push(p) };
  try {
    let ran = false;
    runInBackground(() => {
      ran = true;
      return Promise.resolve();
    }, "test");
    assert.equal(handed.length, 1);
    await handed[0];
    assert.equal(ran, true);
  } finally {
    delete (globalThis as Global).EdgeRuntime;
  }
});

Deno.test("elsewhere it runs on its own, and its errors are logged, not thrown", async () => {
  const logged: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
  try {
    runInBackground(() => Promise.reject(new Error("boom")), "kick_failed");
    assert.equal(await drainBackground(1000), true);
    assert.equal(logged.length, 1);
    assert.match(logged[0], /kick_failed/);
    assert.match(logged[0], /boom/);
  } finally {
    console.error = original;
  }
});

Deno.test("drainBackground gives up after its timeout", async () => {
  let release!: () => void;
  runInBackground(() => new Promise<void>((r) => release = r), "slow");
  assert.equal(await drainBackground(20), false);
  release();
  assert.equal(await drainBackground(1000), true);
});
