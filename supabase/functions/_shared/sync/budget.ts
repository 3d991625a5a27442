// What one invocation may spend: wall clock (SYNC_TIME_BUDGET_MS) and pages
// (SYNC_MAX_PAGES_PER_RUN, which keeps CPU inside the edge platform's allowance).
// Shared by every job the invocation runs.

export interface Budget {
  /** Takes one page if both budgets allow it. */
  takePage(): boolean;
  /** Gives back a page taken for a prefetch that was never used. */
  returnPage(): void;
  pagesTaken(): number;
}

export function invocationBudget(opts: {
  maxPages: number;
  timeBudgetMs: number;
  clock?: () => number;
}): Budget {
  const clock = opts.clock ?? (() => performance.now());
  const deadline = clock() + opts.timeBudgetMs;
  let taken = 0;
  return {
    takePage() {
      if (taken >= opts.maxPages || clock() >= deadline) return false;
      taken++;
      return true;
    },
    returnPage() {
      taken = Math.max(0, taken - 1);
    },
    pagesTaken: () => taken,
  };
}
