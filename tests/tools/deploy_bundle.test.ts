// Deploy hygiene (docs/ARCHITECTURE.md §8): `supabase functions deploy` bundles everything a
// function's index.ts imports, and reads neither deno.lock nor anything we do not import. So,
// from `deno info --json` of each function (run as a subprocess, as the deploy resolves it):
// - no module lies outside supabase/functions/: never supabase/dev-keys.json (the dev
//   PRIVATE key), supabase/dev-signing-keys.json, tools/, scripts/ or tests/;
// - only the processor bundles the sync engine (_shared/sync/);
// - every import is exact: a local file, a `node:` built-in, or `npm:name@x.y.z`.
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const FUNCTIONS = new URL("supabase/functions/", ROOT).href;
const NAMES = [
  "start-historical-sync",
  "process-historical-sync",
  "cancel-historical-sync",
  "get-sync-status",
];
/** `npm:name@1.2.3` or `npm:@scope/name@1.2.3-rc.1`, optionally with a subpath. */
const EXACT_NPM =
  /^npm:(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*@\d+\.\d+\.\d+(-[\w.]+)?(\/[\w./-]*)?$/i;

interface Dependency {
  specifier: string;
  code?: { specifier?: string };
  type?: { specifier?: string };
}
interface ModuleInfo {
  specifier: string;
  dependencies?: Dependency[];
}

async function graph(name: string): Promise<ModuleInfo[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", `supabase/functions/${name}/index.ts`],
    cwd: ROOT.pathname,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)).modules;
}

const relative = (specifier: string) => specifier.replace(ROOT.href, "");
const graphs = new Map<string, ModuleInfo[]>();
async function modulesOf(name: string) {
  if (!graphs.has(name)) graphs.set(name, await graph(name));
  return graphs.get(name)!;
}

for (const name of NAMES) {
  Deno.test(`${name}: its bundle holds nothing outside supabase/functions/ (no dev keys, tools, scripts, tests)`, async () => {
    const local = (await modulesOf(name)).filter((m) => m.specifier.startsWith("file:"));
    assert.ok(local.some((m) => m.specifier.endsWith(`/${name}/index.ts`)));
    const outside = local.map((m) => relative(m.specifier)).filter((p) =>
      !p.startsWith("supabase/functions/")
    );
    assert.deepEqual(outside, [], `modules outside supabase/functions/: ${outside.join(", ")}`);
    for (const m of local) {
      const path = relative(m.specifier);
      assert.doesNotMatch(path, /dev-keys\.json|dev-signing-keys\.json|^(tools|scripts|tests)\//);
    }
  });

  Deno.test(`${name}: every import is pinned exactly (local, node: or npm:name@x.y.z)`, async () => {
    const loose: string[] = [];
    for (const m of await modulesOf(name)) {
      if (!m.specifier.startsWith("file:")) continue;
      for (const dep of m.dependencies ?? []) {
        for (const resolved of [dep.code?.specifier, dep.type?.specifier]) {
          if (resolved === undefined) continue;
          const ok = resolved.startsWith(FUNCTIONS) || resolved.startsWith("node:") ||
            EXACT_NPM.test(resolved);
          if (!ok) loose.push(`${relative(m.specifier)}: "${dep.specifier}" → ${resolved}`);
        }
      }
    }
    assert.deepEqual(loose, []);
  });
}

Deno.test("only process-historical-sync bundles the sync engine (_shared/sync/)", async () => {
  for (const name of NAMES) {
    const engine = (await modulesOf(name)).some((m) => m.specifier.includes("/_shared/sync/"));
    assert.equal(engine, name === "process-historical-sync", name);
  }
});

Deno.test("deno.json pins every import to an exact npm version", async () => {
  const { imports } = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const loose = Object.entries(imports as Record<string, string>).filter(([, v]) =>
    !EXACT_NPM.test(v)
  );
  assert.deepEqual(loose, []);
});

Deno.test("the pinning check itself refuses ranges, tags, jsr: and https: imports", () => {
  for (
    const bad of ["npm:zod", "npm:zod@4", "npm:zod@^4.6.7", "npm:zod@latest", "npm:@a/b@~1.2.3"]
  ) {
    assert.equal(EXACT_NPM.test(bad), false, bad);
  }
  for (const bad of ["jsr:@std/assert@1.0.0", "https://esm.sh/zod@4.6.7"]) {
    assert.equal(EXACT_NPM.test(bad) || bad.startsWith(FUNCTIONS), false, bad);
  }
  for (const ok of ["npm:zod@4.6.7", "npm:@supabase/server@1.8.1/core", "npm:x@1.0.0-rc.1"]) {
    assert.equal(EXACT_NPM.test(ok), true, ok);
  }
});
