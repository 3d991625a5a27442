// How the demo shows a job's progress: a redrawn bar on a terminal, plain lines otherwise.

export interface JobView {
  id: string;
  status: string;
  total_calls: number | null;
  processed_calls: number;
  imported_calls: number;
  skipped_calls: number;
  failed_calls: number;
  max_calls: number | null;
  error_message: string | null;
  date_from: string | null;
  refreshed_calls: number;
  deleted_calls_marked: number;
  /** A sliced walk's slices (absent when the job walks as one). */
  slices?: { total: number; done: number };
  progress: {
    fraction: number | null;
    calls_per_minute: number | null;
    eta_seconds: number | null;
    stalled: boolean;
  };
}

const WIDTH = 30;
const fmt = (n: number) => n.toLocaleString("en-US");

export function bar(fraction: number | null): string {
  const f = Math.max(0, Math.min(1, fraction ?? 0));
  const full = Math.round(f * WIDTH);
  return `[${"█".repeat(full)}${"░".repeat(WIDTH - full)}]`;
}

export function describe(job: JobView): string {
  const p = job.progress;
  const pct = p.fraction === null ? "  ?  " : `${(p.fraction * 100).toFixed(1).padStart(5)}%`;
  const of = job.total_calls === null ? "" : ` of ${fmt(job.total_calls)}`;
  const rate = p.calls_per_minute === null
    ? ""
    : ` · ${fmt(Math.round(p.calls_per_minute))} calls/min`;
  const eta = p.eta_seconds === null ? "" : ` · ETA ${Math.ceil(p.eta_seconds)}s`;
  const stalled = p.stalled ? " · STALLED" : "";
  const slices = job.slices ? ` · slices ${job.slices.done}/${job.slices.total} done` : "";
  return `${bar(p.fraction)} ${pct} ${job.status}${slices} · processed ${
    fmt(job.processed_calls)
  }${of}` +
    ` (imported ${fmt(job.imported_calls)}, skipped ${fmt(job.skipped_calls)}, failed ${
      fmt(job.failed_calls)
    })${rate}${eta}${stalled}`;
}

/** Writes progress: redraws one line on a terminal; otherwise a line per 10 % or change of status. */
export function progressPrinter(interactive: boolean, write: (s: string) => void) {
  let lastDecile = -1;
  let lastStatus = "";
  return {
    update(job: JobView) {
      if (interactive) {
        write(`\r\x1b[2K${describe(job)}`);
        return;
      }
      const decile = Math.floor((job.progress.fraction ?? 0) * 10);
      if (decile !== lastDecile || job.status !== lastStatus) {
        write(`${describe(job)}\n`);
        lastDecile = decile;
        lastStatus = job.status;
      }
    },
    done() {
      if (interactive) write("\n");
    },
  };
}
