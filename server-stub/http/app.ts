/**
 * `createApp(services, deps)`: the whole HTTP API as a fetch handler. It binds no port, so tests
 * call `app.request()` and msw handlers forward to `app.fetch`.
 */
import { Hono } from 'hono';
import { sql } from 'kysely';
import { ServiceError, type Services } from '../services/context.ts';
import { adminRoutes } from './admin-routes.ts';
import type { HttpDeps } from './deps.ts';
import { messengerRoutes } from './messenger-routes.ts';
import { problem } from './problem.ts';

export function createApp(s: Services, deps: HttpDeps): Hono {
  const app = new Hono();

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    // Path only: query strings may carry emails, which stay out of info logs.
    deps.log({ level: 'info', method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 });
  });

  app.onError((error, c) => {
    if (error instanceof ServiceError) return problem(c, error.status, error.slug, error.message, error.headers);
    deps.log({ level: 'error', method: c.req.method, path: c.req.path, error: error instanceof Error ? error.stack ?? error.message : String(error) });
    return problem(c, 500, 'internal', 'the server failed; nothing was changed');
  });

  app.notFound((c) => problem(c, 404, 'not-found', `no route for ${c.req.method} ${c.req.path}`));

  // PostgreSQL text cannot hold NUL, and a malformed %-escape cannot be decoded: refuse both up
  // front, for every route, instead of letting them reach a query.
  app.use('*', async (c, next) => {
    const raw = c.req.url;
    let decoded: string;
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      throw new ServiceError(400, 'invalid-url', 'the URL has a malformed %-escape');
    }
    if (decoded.includes('\u0000')) throw new ServiceError(400, 'invalid-url', 'the URL contains a NUL character');
    await next();
  });

  app.get('/healthz', async (c) => {
    await sql`select 1`.execute(s.db);
    return c.json({ ok: true });
  });

  app.route('/v1/messenger', messengerRoutes(s, deps));
  app.route('/v1', adminRoutes(s, deps));
  return app;
}
