// What went wrong talking to Ultravox, in words a user can act on.
//
// The API key must never leak: messages are built from the status and a short, redacted excerpt
// of the body, never from the request (whose headers carry the key).

export type UltravoxErrorKind = "transient" | "permanent";

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
  /** transient: worth retrying later (5xx, 429, network); permanent: fix something first. */
  readonly kind: UltravoxErrorKind;
  /** HTTP status of the last response, null when none arrived (reset, time-out). */
  readonly status: number | null;
  /** The last wait Ultravox asked for (Retry-After, uncapped), null when it asked for none. */
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
