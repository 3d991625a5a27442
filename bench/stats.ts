// Every figure of the bench is the median of several runs, with the spread (min–max), and
// ends up as one row of the table in docs/PERFORMANCE.md (bench/report.ts fills it).

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error("no runs to summarize");
  const sorted = values.toSorted((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1)!, runs: values.length };
}

/** The median of `values` (no spread). */
export function median(values: number[]): number {
  return spread(values).median;
}

/** A number with `digits` decimals and thousands separators: "9,512.3". */
export function num(x: number, digits = 0): string {
  return x.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** "9,512 (9,101–9,830)" with `digits` decimals; just "9,512" when every run agreed. */
export function formatSpread(s: Spread, digits = 0): string {
  return s.min === s.max
    ? num(s.median, digits)
    : `${num(s.median, digits)} (${num(s.min, digits)}–${num(s.max, digits)})`;
}

/** One row of the figures table: what was measured, the target if there is one, the result. */
export interface Row {
  figure: string;
  /** "—" when the figure has no target. */
  target: string;
  result: string;
  /** Whether the target was met; absent for a figure without one. */
  met?: boolean;
}
