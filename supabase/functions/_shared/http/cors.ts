// CORS for browser callers (supabase-js `functions.invoke` sends these headers).
export const corsHeaders: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
  "Access-Control-Max-Age": "86400",
};

/** The same response with the CORS headers set (headers of a fetched Response are immutable). */
export function withCorsHeaders(response: Response): Response {
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(corsHeaders)) headers.set(name, value);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

/** The answer to a preflight: always 204 with the CORS headers, before any other check. */
export function preflightResponse(): Response {
  return new Response(null, { status: 204, headers: corsHeaders });
}
