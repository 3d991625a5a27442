// What went wrong talking to Ultravox, in words a user can act on.
//
// The API key must never leak: messages are built from the status and a short, redacted excerpt
// of the body, never from the request (whose headers carry the key).

/**
 * - `transient`: worth retrying on a later attempt (5xx, 429/503 without a usable Retry-After,
 *   resets, time-outs, a body that is not a page or is over the size limit); counts as an attempt.
 * - `permanent`: retrying the same request cannot help (401/403, 400, other 4xx, a 404 without a
 *   cursor, a redirect); fail the job.
 * - `cursor_rejected`: a 404 on a request that carried a cursor (Django REST Framework's answer
 *   to a cursor it cannot decode): continue the walk without it, by time.
 * - `rate_limited`: a 429/503 whose Retry-After is longer than this invocation may wait;
 *   `retryAfterMs` says how long Ultravox asked. Release the job until then; not an attempt.
 */
export type UltravoxErrorKind = "transient" | "permanent" | "cursor_rejected" | "rate_limited";

/** The longest body excerpt kept on an error. */
export const EXCERPT_MAX_CHARS = 200;

export interface UltravoxErrorInit {
  kind: UltravoxErrorKind;
  message: string;
  status?: number | null;
  retryAfterMs?: number | null;
  bodyExcerpt?: string;
  attempts: number;
}

export class UltravoxError extends Error {
  override readonly name = "UltravoxError";
  /** What the caller should do about it: see UltravoxErrorKind. */
  readonly kind: UltravoxErrorKind;
  /** HTTP status of the last response, null when none arrived (reset, time-out). */
  readonly status: number | null;
  /**
   * The last wait Ultravox asked for (Retry-After, uncapped, in ms from when the answer came),
   * null when it asked for none. Always set for `rate_limited`.
   */
  readonly retryAfterMs: number | null;
  /** At most 200 chars of the last response body, whitespace collapsed, key redacted. */
  readonly bodyExcerpt: string;
  /** HTTP requests made for the page that failed, this one included. */
  readonly attempts: number;

  constructor(init: UltravoxErrorInit) {
    super(init.message);
    this.kind = init.kind;
    this.status = init.status ?? null;
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.bodyExcerpt = init.bodyExcerpt ?? "";
    this.attempts = init.attempts;
  }
}

/**
 * Text cut at an arbitrary byte may end with the start of the key: drop any such tail, so an
 * excerpt of a cut body never shows part of the key (excerptOf only replaces whole keys).
 */
export function withoutKeyPrefixAtEnd(text: string, apiKey: string): string {
  for (let n = Math.min(apiKey.length - 1, text.length); n > 0; n--) {
    if (text.endsWith(apiKey.slice(0, n))) return text.slice(0, text.length - n);
  }
  return text;
}

/**
 * A body excerpt safe to store and show: the key is replaced before cutting, so no prefix of it
 * can survive the cut either.
 */
export function excerptOf(body: string, apiKey: string): string {
  let text = body;
  if (apiKey !== "") text = text.replaceAll(apiKey, "[redacted]");
  text = text.replace(/\s+/g, " ").trim();
  if (text.length <= EXCERPT_MAX_CHARS) return text;
  return text.slice(0, EXCERPT_MAX_CHARS - 1) + "…";
}

/** A 4xx (other than 429) or a redirect: retrying the same request cannot help. */
export function permanentError(
  init: { status: number; bodyExcerpt: string; attempts: number; path: string },
): UltravoxError {
  return new UltravoxError({
    kind: "permanent",
    status: init.status,
    bodyExcerpt: init.bodyExcerpt,
    attempts: init.attempts,
    message: permanentMessage(init.status, init.bodyExcerpt, init.path),
  });
}

function permanentMessage(status: number, excerpt: string, path: string): string {
  const detail = excerpt === "" ? "" : `: ${excerpt}`;
  if (status === 401 || status === 403) {
    return `Ultravox rejected the API key (HTTP ${status}). ` +
      "Set a valid key for this agency with set_agency_ultravox_api_key.";
  }
  if (status === 400) return `Ultravox rejected the request (HTTP 400)${detail}`;
  if (status === 404) {
    return `Ultravox has no ${path} (HTTP 404). ` +
      "Check ULTRAVOX_API_BASE: it must be the API root, ending with /api.";
  }
  if (status >= 300 && status < 400) {
    return `Ultravox answered ${path} with a redirect (HTTP ${status}), which is not followed ` +
      "so the API key stays with ULTRAVOX_API_BASE. Check ULTRAVOX_API_BASE.";
  }
  return `Ultravox refused the request (HTTP ${status})${detail}`;
}

/**
 * Every attempt failed for a reason that might pass (5xx, 429, reset, time-out, a body that was
 * not a page). `problem` names the last one, e.g. "HTTP 503" or "timed out after 30000 ms".
 */
export function transientError(
  init: {
    problem: string;
    status: number | null;
    retryAfterMs: number | null;
    bodyExcerpt: string;
    attempts: number;
  },
): UltravoxError {
  return new UltravoxError({
    kind: "transient",
    status: init.status,
    retryAfterMs: init.retryAfterMs,
    bodyExcerpt: init.bodyExcerpt,
    attempts: init.attempts,
    message: `Ultravox kept failing (${init.problem}) after ${init.attempts} ` +
      (init.attempts === 1 ? "attempt" : "attempts"),
  });
}

/**
 * A 404 on a request that carried a cursor: Django REST Framework's CursorPagination answers
 * 404 {"detail": "Invalid cursor"} to a cursor it cannot decode (docs/ULTRAVOX.md), so the
 * cursor, not the base URL, is what Ultravox refused. The engine resumes by time.
 */
export function cursorRejectedError(
  init: { status: number; bodyExcerpt: string; attempts: number },
): UltravoxError {
  const detail = init.bodyExcerpt === "" ? "" : `: ${init.bodyExcerpt}`;
  return new UltravoxError({
    kind: "cursor_rejected",
    status: init.status,
    bodyExcerpt: init.bodyExcerpt,
    attempts: init.attempts,
    message: `Ultravox no longer accepts the saved page cursor (HTTP ${init.status}${detail}); ` +
      "the import continues from the oldest call it has counted.",
  });
}

/**
 * Ultravox asked (429/503 Retry-After) for a longer wait than this invocation may spend:
 * nothing was waited or retried, and the job should not be claimed before `retryAfterMs`.
 */
export function rateLimitedError(
  init: { status: number; retryAfterMs: number; bodyExcerpt: string; attempts: number },
): UltravoxError {
  const what = init.status === 429
    ? "Ultravox is rate limiting this API key (HTTP 429)"
    : `Ultravox is unavailable (HTTP ${init.status})`;
  return new UltravoxError({
    kind: "rate_limited",
    status: init.status,
    retryAfterMs: init.retryAfterMs,
    bodyExcerpt: init.bodyExcerpt,
    attempts: init.attempts,
    message: `${what} and asked to wait ${formatWait(init.retryAfterMs)} (Retry-After); ` +
      "the import continues after that.",
  });
}

/**
 * A page body larger than SYNC_MAX_PAGE_BYTES: reading stopped at the limit. Asking again would
 * bring the same page, so the attempt ends here; the caller counts it.
 */
export function oversizedPageError(
  init: { limitBytes: number; status: number; attempts: number },
): UltravoxError {
  return new UltravoxError({
    kind: "transient",
    status: init.status,
    attempts: init.attempts,
    message: `Ultravox sent a page over ${formatBytes(init.limitBytes)} (SYNC_MAX_PAGE_BYTES); ` +
      "lower SYNC_PAGE_SIZE or raise the limit",
  });
}

/** 16777216 → "16 MiB", 65536 → "64 KiB", 1000 → "1000 bytes". */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/** 1500 → "2 s", 90000 → "90 s", 600000 → "10 min", 3600000 → "1 h". */
function formatWait(ms: number): string {
  const seconds = Math.ceil(ms / 1000);
  if (seconds >= 3600 && seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds >= 120 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
