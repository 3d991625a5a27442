import assert from "node:assert/strict";
import { z } from "zod";
import { ApiError, errorResponse, redact } from "../../supabase/functions/_shared/http/errors.ts";
import {
  lazyHandler,
  MAX_BODY_BYTES,
  mediaType,
  queryObject,
  readBody,
  requireMethod,
  withCors,
} from "../../supabase/functions/_shared/http/request.ts";

const url = "http://127.0.0.1/functions/v1/x";
const JSON_TYPE = { "content-type": "application/json" };

async function statusAndCode(promise: Promise<unknown>): Promise<[number, string]> {
  try {
    await promise;
  } catch (e) {
    const res = errorResponse(e);
    return [res.status, (await res.json()).error.code];
  }
  return [0, "accepted"];
}

Deno.test("withCors answers OPTIONS with 204 and CORS headers, never calling the handler", async () => {
  let called = false;
  const handler = withCors(() => {
    called = true;
    return Promise.resolve(new Response("x"));
  });
  const res = await handler(new Request(url, { method: "OPTIONS" }));
  assert.equal(res.status, 204);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(
    res.headers.get("access-control-allow-headers"),
    "authorization, x-client-info, apikey, content-type",
  );
  assert.equal(called, false);
});

Deno.test("withCors puts CORS on errors and turns unknown errors into a bland 500", async () => {
  const logged: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => logged.push(args.join(" "));
  try {
    const handler = withCors(() => {
      throw new Error("connection to postgresql://postgres:hunter2@db/x failed");
    });
    const res = await handler(new Request(url, { method: "POST" }));
    assert.equal(res.status, 500);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const body = await res.json();
    assert.equal(body.error.code, "internal_error");
    assert.doesNotMatch(body.error.message, /postgres|hunter2/);
    assert.equal(logged.length, 1);
    assert.doesNotMatch(String(logged[0]), /hunter2/);
  } finally {
    console.error = original;
  }
});

Deno.test("an ApiError keeps its status, code, details and headers", async () => {
  const res = errorResponse(new ApiError(409, "sync_already_active", "busy", { job_id: "j" }));
  assert.equal(res.status, 409);
  assert.deepEqual(await res.json(), {
    error: { code: "sync_already_active", message: "busy", details: { job_id: "j" } },
  });
});

Deno.test("a ZodError is 400 validation_failed with one {path, message} per bad field", async () => {
  const schema = z.strictObject({ a: z.object({ b: z.number() }), c: z.string() });
  const res = errorResponse(schema.safeParse({ a: { b: "x" }, c: "ok", d: 1, e: 2 }).error);
  assert.equal(res.status, 400);
  const body = await res.json();
  assert.equal(body.error.code, "validation_failed");
  assert.deepEqual(body.error.details.map((d: { path: string }) => d.path), ["a.b", "d", "e"]);
  assert.equal(body.error.details[1].message, "Unknown field.");
});

Deno.test("requireMethod refuses other methods with 405 and an Allow header", () => {
  assert.equal(requireMethod(new Request(url, { method: "POST" }), "POST"), "POST");
  try {
    requireMethod(new Request(url, { method: "PUT" }), "GET", "POST");
    assert.fail("accepted");
  } catch (e) {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 405);
    assert.equal(new Headers(e.headers).get("allow"), "GET, POST, OPTIONS");
  }
});

Deno.test("a body of exactly 64 KiB is read; one byte more is 413", async () => {
  const exact = new Uint8Array(MAX_BODY_BYTES).fill(32);
  const body = await readBody(new Request(url, { method: "POST", body: exact }));
  assert.equal(body.bytes.byteLength, MAX_BODY_BYTES);
  const over = new Uint8Array(MAX_BODY_BYTES + 1).fill(32);
  assert.deepEqual(
    await statusAndCode(readBody(new Request(url, { method: "POST", body: over }))),
    [413, "payload_too_large"],
  );
});

Deno.test("a streamed body without Content-Length is cut off at 64 KiB", async () => {
  const chunk = new Uint8Array(16 * 1024).fill(32);
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (let i = 0; i < 5; i++) controller.enqueue(chunk);
      controller.close();
    },
  });
  const req = new Request(url, { method: "POST", body: stream });
  assert.equal(req.headers.get("content-length"), null);
  assert.deepEqual(await statusAndCode(readBody(req)), [413, "payload_too_large"]);
});

Deno.test("a declared Content-Length over 64 KiB is 413 before reading", async () => {
  const req = new Request(url, {
    method: "POST",
    headers: { "content-length": String(MAX_BODY_BYTES + 1) },
    body: "{}",
  });
  assert.deepEqual(await statusAndCode(readBody(req)), [413, "payload_too_large"]);
});

Deno.test("size is checked before type", async () => {
  const req = new Request(url, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: new Uint8Array(MAX_BODY_BYTES + 1),
  });
  assert.deepEqual(await statusAndCode(readBody(req)), [413, "payload_too_large"]);
});

Deno.test("Content-Type: JSON with parameters or any case passes; others are 415; none passes", async () => {
  const bytes = new TextEncoder().encode("{}"); // a bytes body gets no default Content-Type
  for (const type of ["application/json", "Application/JSON; charset=utf-8", undefined]) {
    const headers: Record<string, string> = type ? { "content-type": type } : {};
    const req = new Request(url, { method: "POST", headers, body: bytes });
    assert.equal(req.headers.get("content-type"), type ?? null);
    await readBody(req);
  }
  // fetch labels a string body text/plain unless told otherwise: that is a 415
  assert.deepEqual(
    await statusAndCode(readBody(new Request(url, { method: "POST", body: "{}" }))),
    [
      415,
      "unsupported_media_type",
    ],
  );
  for (
    const type of ["text/plain", "application/x-www-form-urlencoded", "application/json-patch+json"]
  ) {
    const req = new Request(url, { method: "POST", headers: { "content-type": type }, body: "{}" });
    assert.deepEqual(await statusAndCode(readBody(req)), [415, "unsupported_media_type"], type);
  }
  assert.equal(mediaType(" application/json ;charset=utf-8"), "application/json");
});

Deno.test("only a JSON object is a body; everything else is invalid_json", async () => {
  for (const text of ["", "null", "[]", "42", '"x"', "{", "{'a':1}"]) {
    const body = await readBody(
      new Request(url, { method: "POST", headers: JSON_TYPE, body: text }),
    );
    assert.deepEqual(await statusAndCode(Promise.resolve().then(() => body.json())), [
      400,
      "invalid_json",
    ], text);
  }
  const bad = await readBody(
    new Request(url, { method: "POST", body: new Uint8Array([0x7b, 0xff, 0x7d]) }),
  );
  assert.deepEqual(await statusAndCode(Promise.resolve().then(() => bad.json())), [
    400,
    "invalid_json",
  ]);
  const empty = await readBody(new Request(url, { method: "POST" }));
  assert.deepEqual(empty.json({ emptyAs: {} }), {});
});

Deno.test("queryObject keeps single values as strings and repeats as arrays", () => {
  assert.deepEqual(queryObject(`${url}?a=1&b=x&b=y`), { a: "1", b: ["x", "y"] });
});

Deno.test("redact blanks keys, JWTs and URL passwords", () => {
  assert.equal(
    redact("sb_secret_abc-1 eyJa.eyJb.sig postgresql://u:pw@h/db"),
    "sb_secret_*** <jwt> postgresql://u:***@h/db",
  );
});

Deno.test("the preflight is answered before the handler is built, even when the configuration is broken", async () => {
  let built = 0;
  const handler = lazyHandler(() => {
    built++;
    throw new Error("SUPABASE_PUBLISHABLE_KEYS is not set");
  });
  const res = await handler(
    new Request("http://localhost/functions/v1/get-sync-status", { method: "OPTIONS" }),
  );
  assert.ok(res.status >= 200 && res.status < 300, `preflight answered ${res.status}`);
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(built, 0, "nothing was built for the preflight");
  // Any other request still meets the broken configuration, in the envelope.
  const post = await handler(
    new Request("http://localhost/functions/v1/get-sync-status", { method: "POST" }),
  );
  assert.equal(post.status, 500);
  assert.equal((await post.json()).error.code, "internal_error");
  assert.equal(post.headers.get("access-control-allow-origin"), "*");
});
