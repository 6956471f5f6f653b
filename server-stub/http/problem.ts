/** RFC 9457 problem+json answers, the one error shape of the API. */
import type { Context } from 'hono';

const TITLES: Record<number, string> = {
  400: 'Bad request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not found', 409: 'Conflict',
  413: 'Payload too large', 429: 'Too many requests', 500: 'Internal server error',
};

export const PROBLEM_BASE = 'https://parley.dev/problems/';

export function problemBody(status: number, slug: string, detail: string): { type: string; title: string; status: number; detail: string } {
  return { type: `${PROBLEM_BASE}${slug}`, title: TITLES[status] ?? 'Error', status, detail };
}

export function problemResponse(status: number, slug: string, detail: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(problemBody(status, slug, detail)), { status, headers: { 'content-type': 'application/problem+json', ...headers } });
}

/** A problem answer that keeps headers already set on the context (CORS). */
export function problem(c: Context, status: number, slug: string, detail: string, headers: Record<string, string> = {}): Response {
  const res = problemResponse(status, slug, detail, headers);
  c.res.headers.forEach((v, k) => {
    if (k.startsWith('access-control-') || k === 'vary') res.headers.set(k, v);
  });
  return res;
}
