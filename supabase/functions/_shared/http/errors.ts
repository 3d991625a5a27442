// The one error envelope of docs/ARCHITECTURE.md §6: {"error": {"code", "message", "details"?}}.
// Everything a handler throws ends up here; only ApiError and ZodError say anything
// specific, the rest is a 500 whose message reveals nothing internal.
import { ZodError } from "zod";

export type ErrorCode =
  | "invalid_json"
  | "validation_failed"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "method_not_allowed"
  | "sync_already_active"
  | "job_already_finished"
  | "payload_too_large"
  | "unsupported_media_type"
  | "ultravox_key_missing"
  | "rate_limited"
  | "internal_error";

/** An error a client may see, with a stable `code`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Extra response headers (e.g. `Allow` on a 405). */
    readonly headers?: HeadersInit,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export interface FieldIssue {
  /** Dotted path of the bad field ("" for the body itself). */
  path: string;
  message: string;
}

/** One `{path, message}` per bad field; an unknown key is reported under its own name. */
export function fieldIssues(error: ZodError): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const issue of error.issues) {
    const base = issue.path.map(String);
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        issues.push({ path: [...base, key].join("."), message: "Unknown field." });
      }
    } else {
      issues.push({ path: base.join("."), message: issue.message });
    }
  }
  return issues;
}

export function errorBody(code: ErrorCode, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Maps anything thrown to the envelope. Unknown errors are logged (redacted) and hidden. */
export function errorResponse(e: unknown): Response {
  if (e instanceof ApiError) {
    return Response.json(errorBody(e.code, e.message, e.details), {
      status: e.status,
      headers: e.headers,
    });
  }
  if (e instanceof ZodError) {
    return Response.json(
      errorBody("validation_failed", "The request has invalid fields.", fieldIssues(e)),
      { status: 400 },
    );
  }
  logUnexpected(e);
  return Response.json(
    errorBody("internal_error", "Something went wrong on our side. Please try again later."),
    { status: 500 },
  );
}

/** Logs an unexpected error: name, message, code and stack only (never query parameters). */
export function logUnexpected(e: unknown, context?: string) {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: unknown }).code;
  console.error(JSON.stringify({
    level: "error",
    event: context ?? "unhandled_error",
    name: err.name,
    message: redact(err.message),
    ...(typeof code === "string" ? { code } : {}),
    stack: err.stack ? redact(err.stack) : undefined,
  }));
}

/** Blanks anything that looks like a credential: API keys, JWTs, passwords in URLs. */
export function redact(text: string): string {
  return text
    .replace(/\bsb_(secret|publishable)_[A-Za-z0-9_-]+/g, "sb_$1_***")
    .replace(/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, "<jwt>")
    .replace(/(\/\/[^:/@\s]+:)[^@\s]+@/g, "$1***@");
}
