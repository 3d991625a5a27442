// The facts a reader needs to compare these figures with their own.
import type { Sql } from "../supabase/functions/_shared/platform/db.ts";

export interface MachineFacts {
  cpu: string;
  cores: number;
  memoryGb: number;
  os: string;
  deno: string;
  v8: string;
  postgres: string;
  postgresSettings: Record<string, string>;
}

export async function machineFacts(sql: Sql): Promise<MachineFacts> {
  let cpu = "unknown";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(await Deno.readTextFile("/proc/cpuinfo"))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  const [{ version }] = await sql<{ version: string }[]>`select version()`;
  const settings = await sql<{ name: string; setting: string; unit: string | null }[]>`
    select name, setting, unit from pg_settings
     where name in ('shared_buffers', 'synchronous_commit', 'fsync', 'wal_level',
                    'max_wal_size', 'work_mem', 'max_connections')
     order by name`;
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGb: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    postgres: version.split(" on ")[0],
    postgresSettings: Object.fromEntries(
      settings.map((s) => [s.name, s.unit ? `${s.setting} × ${s.unit}` : s.setting]),
    ),
  };
}
