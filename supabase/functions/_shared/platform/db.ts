// The direct SQL connection (postgres.js over SUPABASE_DB_URL).
//
// timestamptz values stay strings both ways: postgres.js would otherwise go through JS
// Dates and drop Ultravox's microseconds (DESIGN.md §5).
import postgres from "postgres";

export type Sql = postgres.Sql;

const TIMESTAMPTZ = 1184;

/** "2025-03-22 15:48:32.997+00" (session time zone UTC) → "2025-03-22T15:48:32.997000Z". */
export function isoFromPg(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?\+00$/.exec(text);
  if (!m) return text;
  return `${m[1]}T${m[2]}.${(m[3] ?? "").padEnd(6, "0")}Z`;
}

export function connect(
  url: string,
  opts: { max?: number; debug?: postgres.Options<never>["debug"] } = {},
): Sql {
  return postgres(url, {
    max: opts.max ?? 5,
    prepare: false, // works through Supabase's transaction pooler
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { TimeZone: "UTC", application_name: "virsyn-historical-sync" },
    types: {
      timestamptz: {
        to: TIMESTAMPTZ,
        from: [TIMESTAMPTZ],
        serialize: (v: unknown) => String(v),
        parse: isoFromPg,
      },
    },
    debug: opts.debug,
  });
}
