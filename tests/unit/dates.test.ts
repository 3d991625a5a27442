import assert from "node:assert/strict";
import {
  instantFromDate,
  isoFromMicros,
  microsFromIso,
  parseDateBound,
} from "../../supabase/functions/_shared/time.ts";

const iso = (text: string, bound: "from" | "to" = "from") => parseDateBound(text, bound)?.iso;

Deno.test("a bare date_from is midnight UTC and a bare date_to the last microsecond", () => {
  assert.equal(iso("2025-03-22", "from"), "2025-03-22T00:00:00.000000Z");
  assert.equal(iso("2025-03-22", "to"), "2025-03-22T23:59:59.999999Z");
});

Deno.test("a date-time keeps its microseconds", () => {
  assert.equal(iso("2025-03-22T15:48:32.997123Z"), "2025-03-22T15:48:32.997123Z");
  assert.equal(iso("2025-03-22T15:48:32.5Z"), "2025-03-22T15:48:32.500000Z");
  assert.equal(iso("2025-03-22T15:48:32Z"), "2025-03-22T15:48:32.000000Z");
  assert.equal(iso("2025-03-22T15:48Z"), "2025-03-22T15:48:00.000000Z");
});

Deno.test("an offset is converted to UTC, across a day boundary", () => {
  assert.equal(iso("2025-03-22T01:30:00.000001+02:00"), "2025-03-21T23:30:00.000001Z");
  assert.equal(iso("2025-12-31T23:00:00.999999-05:30"), "2026-01-01T04:30:00.999999Z");
  assert.equal(iso("2025-03-22T10:00:00+00:00"), "2025-03-22T10:00:00.000000Z");
});

Deno.test("digits beyond the microsecond round inward", () => {
  assert.equal(iso("2025-03-22T10:00:00.1234561Z", "from"), "2025-03-22T10:00:00.123457Z");
  assert.equal(iso("2025-03-22T10:00:00.1234569Z", "to"), "2025-03-22T10:00:00.123456Z");
  assert.equal(iso("2025-03-22T23:59:59.9999991Z", "from"), "2025-03-23T00:00:00.000000Z");
});

Deno.test("a leap day exists only in leap years", () => {
  assert.equal(iso("2024-02-29"), "2024-02-29T00:00:00.000000Z");
  assert.equal(parseDateBound("2025-02-29", "from"), null);
});

Deno.test("anything that is not a date with an offset or a bare date is refused", () => {
  for (
    const text of [
      "2025-03-22T10:00:00", // no offset
      "2025-03-22 10:00:00Z",
      "2025-13-01",
      "2025-04-31",
      "2025-03-22T24:00:00Z",
      "2025-03-22T10:60:00Z",
      "2025-03-22T10:00:60Z",
      "2025-03-22T10:00:00+24:00",
      "2025-03-22T10:00:00+0200",
      "0000-01-01",
      "22/03/2025",
      "",
      "now",
    ]
  ) {
    assert.equal(parseDateBound(text, "from"), null, text);
  }
});

Deno.test("instants compare at microsecond precision", () => {
  const a = parseDateBound("2025-03-22T10:00:00.000001Z", "from")!;
  const b = parseDateBound("2025-03-22T10:00:00.000002Z", "to")!;
  assert.equal(b.micros - a.micros, 1n);
});

Deno.test("a JS Date becomes an instant with three zero micro digits", () => {
  assert.equal(
    instantFromDate(new Date("2026-11-29T10:00:00.123Z")).iso,
    "2026-11-29T10:00:00.123000Z",
  );
});

Deno.test("isoFromMicros and microsFromIso round-trip, before 1970 too", () => {
  for (const text of ["1969-12-31T23:59:59.999999Z", "2026-11-29T10:00:00.000001Z"]) {
    const micros = microsFromIso(text);
    assert.equal(isoFromMicros(BigInt(micros)), text);
  }
  assert.equal(microsFromIso("1970-01-01T00:00:01.000002Z"), 1_000_002);
});
