// Building requests for the functions' handlers and reading their replies, in tests.
export const FUNCTIONS_BASE = "http://127.0.0.1:54321/functions/v1";

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Query string appended to the URL (without "?"). */
  query?: string;
}

/**
 * A request to `/functions/v1/<name>`. An object body is sent as JSON; an object or string
 * body gets `content-type: application/json` unless the headers name another; a bytes
 * body is sent as is, with no Content-Type.
 */
export function functionRequest(
  name: string,
  body?: unknown,
  opts: RequestOptions = {},
): Request {
  const headers = new Headers(opts.headers);
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) {
    payload = body as BodyInit;
  } else if (typeof body === "string") {
    payload = body;
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    if (!headers.has("content-type")) headers.set("content-type", "application/json");
  }
  const url = `${FUNCTIONS_BASE}/${name}${opts.query ? `?${opts.query}` : ""}`;
  return new Request(url, { method: opts.method ?? "POST", headers, body: payload });
}

export interface Reply {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Runs a handler and parses its JSON reply (null for an empty body). */
export async function call(
  handler: (req: Request) => Promise<Response>,
  req: Request,
): Promise<Reply> {
  const res = await handler(req);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** Asserts the envelope's status and code; returns the reply. */
export function expectError(reply: Reply, status: number, code: string): Reply {
  if (reply.status !== status || reply.body?.error?.code !== code) {
    throw new Error(
      `expected ${status} ${code}, got ${reply.status} ${JSON.stringify(reply.body)}`,
    );
  }
  return reply;
}

/** Microsecond ISO UTC, as every job timestamp must be. */
export const ISO_MICROS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
