// deno task db:start — installs what is missing, creates and starts the local cluster.
// Idempotent: a running cluster is left alone, a stopped or killed one is restarted.
import {
  ADMIN_ROLE,
  canConnect,
  CLUSTER_NAME,
  DEBIAN_PACKAGES,
  log,
  PG_VERSION,
  PORT,
  psql,
  run,
} from "./local_cluster.ts";

const CONF =
  `# Written by deno task db:start (docs/ARCHITECTURE.md §8): a local development cluster.
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
max_connections = 200
wal_level = logical
`;

async function missingPackages(): Promise<string[]> {
  const missing: string[] = [];
  for (const pkg of DEBIAN_PACKAGES) {
    const r = await run("dpkg-query", ["-W", "-f=${Status}", pkg], { quiet: true })
      .catch(() => ({ code: 1, stdout: "", stderr: "" }));
    if (r.code !== 0 || !r.stdout.includes("install ok installed")) missing.push(pkg);
  }
  return missing;
}

async function installPackages() {
  const missing = await missingPackages();
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new Error(
      `Missing Debian packages: ${missing.join(" ")}.\n` +
        `Install them with: sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}`,
    );
  }
  log(`installing ${missing.join(" ")} with apt-get`);
  await run("apt-get", ["update", "-qq"]);
  await run("env", [
    "DEBIAN_FRONTEND=noninteractive",
    "apt-get",
    "install",
    "-y",
    "-qq",
    ...missing,
  ]);
}

async function clusterStatus(): Promise<"missing" | "online" | "down"> {
  const r = await run("pg_lsclusters", ["--no-header"], { quiet: true });
  const line = r.stdout.split("\n").find((l) => {
    const [ver, name] = l.trim().split(/\s+/);
    return ver === PG_VERSION && name === CLUSTER_NAME;
  });
  if (!line) return "missing";
  return line.includes("online") ? "online" : "down";
}

async function createCluster() {
  if (Deno.uid() !== 0) {
    throw new Error(
      `Creating the cluster needs root: sudo pg_createcluster ${PG_VERSION} ${CLUSTER_NAME} ` +
        `-p ${PORT} -- --auth=trust, then write the settings of docs/ARCHITECTURE.md §8.`,
    );
  }
  log(`creating cluster ${PG_VERSION}/${CLUSTER_NAME} on 127.0.0.1:${PORT} (trust auth, pg_cron)`);
  await run("pg_createcluster", [
    PG_VERSION,
    CLUSTER_NAME,
    "-p",
    String(PORT),
    "--",
    "--auth=trust",
  ]);
}

/** Returns whether the settings changed (a running cluster then needs a restart). */
async function writeConf(): Promise<boolean> {
  const path = `/etc/postgresql/${PG_VERSION}/${CLUSTER_NAME}/conf.d/virsyn.conf`;
  const current = await Deno.readTextFile(path).catch(() => "");
  if (current === CONF) return false;
  await Deno.writeTextFile(path, CONF);
  return true;
}

async function startCluster() {
  log(`starting cluster ${PG_VERSION}/${CLUSTER_NAME}`);
  const args = ["--skip-systemctl-redirect", PG_VERSION, CLUSTER_NAME, "start"];
  // After a crash (postmaster killed) its old backends hold shared memory for a moment,
  // and a start fails until they are gone: try again for a few seconds.
  for (let attempt = 1;; attempt++) {
    const r = await run("pg_ctlcluster", args, { quiet: true });
    if (r.code === 0 || await canConnect()) return;
    if (attempt === 10) throw new Error(`pg_ctlcluster ${args.join(" ")} failed:\n${r.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/**
 * The platform's superuser, supabase_admin, exists (docs/ARCHITECTURE.md §8). A new cluster
 * has only `postgres` as its superuser, so the first start creates supabase_admin through
 * it; db:reset then demotes postgres, as hosted.
 */
async function ensureAdminRole() {
  const probe = ["--tuples-only", "--command", "select 1"];
  if ((await psql(probe, { admin: true, quiet: true })).code === 0) return;
  log(`creating the superuser ${ADMIN_ROLE} (postgres is demoted by db:reset, as hosted)`);
  await psql([
    "--command",
    `create role ${ADMIN_ROLE} superuser createdb createrole replication bypassrls login`,
  ]);
}

async function waitReady(timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `Postgres on 127.0.0.1:${PORT} did not accept connections within ${timeoutMs} ms`,
  );
}

export async function dbStart() {
  if (Deno.env.get("SUPABASE_DB_URL")) {
    if (!(await canConnect())) {
      throw new Error("SUPABASE_DB_URL is set but the database does not accept connections.");
    }
    log("SUPABASE_DB_URL is set: using that database as it is");
    return;
  }
  await installPackages();
  let status = await clusterStatus();
  if (status === "missing") {
    await createCluster();
    status = "down";
  }
  const changed = await writeConf();
  if (status === "online" && changed) {
    log("settings changed: restarting the cluster");
    await run("pg_ctlcluster", ["--skip-systemctl-redirect", PG_VERSION, CLUSTER_NAME, "restart"]);
    await waitReady();
  }
  if (!(status === "online" && await canConnect())) {
    await startCluster();
    await waitReady();
  }
  await ensureAdminRole();
  log(`cluster ${PG_VERSION}/${CLUSTER_NAME} is running on 127.0.0.1:${PORT}`);
}

if (import.meta.main) {
  try {
    await dbStart();
  } catch (e) {
    console.error(`db:start failed: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
