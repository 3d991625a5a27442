// Request plumbing shared by the four functions, in the check order of docs/ARCHITECTURE.md §6:
// OPTIONS preflight → method (405) → size and type (413, 415) → credentials (401, auth.ts)
// → body (400) → existence and membership → state. `withCors` answers the preflight, puts
// the CORS headers on every reply and turns anything thrown into the error envelope.
import { ApiError, errorResponse } from "./errors.ts";
import { preflightResponse, withCorsHeaders } from "./cors.ts";

export type Handler = (req: Request) => Promise<Response>;

/** Bodies are JSON of at most 64 KiB. */
export const MAX_BODY_BYTES = 64 * 1024;

/** Wraps a handler: OPTIONS first (2xx, no auth), CORS on every reply, errors → envelope. */
export function withCors(handler: Handler): Handler {
  return async (req) => {
    if (req.method === "OPTIONS") return preflightResponse();
    let response: Response;
    try {
      response = await handler(req);
    } catch (e) {
      response = errorResponse(e);
    }
    return withCorsHeaders(response);
  };
}

/**
 * Builds the real handler on first use, so importing a function module (the local router,
 * tests) neither reads the environment nor opens a connection.
 */
export function lazyHandler(make: () => Handler): Handler {
  let handler: Handler | null = null;
  return (req) => {
    // The preflight needs nothing built: it answers even when the configuration is broken.
    if (req.method === "OPTIONS") return Promise.resolve(preflightResponse());
    try {
      handler ??= make();
    } catch (e) {
      return Promise.resolve(withCorsHeaders(errorResponse(e)));
    }
    return handler(req);
  };
}

/** 405 unless the method is one of `methods`; returns the method. */
export function requireMethod<M extends string>(req: Request, ...methods: M[]): M {
  if ((methods as string[]).includes(req.method)) return req.method as M;
  throw new ApiError(
    405,
    "method_not_allowed",
    `Use ${methods.join(" or ")} for this endpoint.`,
    undefined,
    { Allow: [...methods, "OPTIONS"].join(", ") },
  );
}

/** The raw bytes of a request body, read (bounded) before the credentials are checked. */
export class RawBody {
  constructor(readonly bytes: Uint8Array) {}

  /**
   * The body as a JSON object, or 400 invalid_json. `emptyAs` lets an endpoint whose fields
   * are all optional accept an empty body.
   */
  json(opts: { emptyAs?: Record<string, unknown> } = {}): Record<string, unknown> {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(this.bytes);
    } catch {
      throw invalidJson("The body is not valid UTF-8.");
    }
    if (text.trim() === "" && opts.emptyAs) return { ...opts.emptyAs };
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw invalidJson("The body is not valid JSON.");
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw invalidJson("The body must be a JSON object.");
    }
    return value as Record<string, unknown>;
  }
}

function invalidJson(message: string) {
  return new ApiError(400, "invalid_json", message);
}

function tooLarge() {
  return new ApiError(
    413,
    "payload_too_large",
    `The body must be at most ${MAX_BODY_BYTES} bytes.`,
  );
}

/**
 * Size (413: declared Content-Length or bytes actually sent) then type (415: a Content-Type
 * that is present and, parameters ignored, not application/json). Reads at most
 * MAX_BODY_BYTES + 1 bytes. Call it before the credentials; parse with `json()` after.
 */
export async function readBody(req: Request): Promise<RawBody> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const bytes = await readBounded(req);
  const type = req.headers.get("content-type");
  if (type !== null && mediaType(type) !== "application/json") {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "Send the body as application/json.",
    );
  }
  return new RawBody(bytes);
}

/** "Application/JSON; charset=utf-8" → "application/json". */
export function mediaType(contentType: string): string {
  return contentType.split(";")[0].trim().toLowerCase();
}

async function readBounded(req: Request): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

/**
 * Query parameters as an object: one value → string, a repeated name → string[] (which a
 * schema then refuses).
 */
export function queryObject(url: string): Record<string, string | string[]> {
  const params = new URL(url).searchParams;
  const out: Record<string, string | string[]> = {};
  for (const name of new Set(params.keys())) {
    const values = params.getAll(name);
    out[name] = values.length === 1 ? values[0] : values;
  }
  return out;
}

/** 201/200 JSON reply. */
export function json(body: unknown, status = 200): Response {
  return Response.json(body, { status });
}
