/**
 * The real server app on a real SQLite file in a temp folder, for tests. No port is bound:
 * `fetch` is the app's own fetch handler, which msw handlers can forward widget requests to.
 *
 * @example
 * const t = await startTestServer();
 * const app = await t.createApp({ require_verification: true });
 * const res = await t.fetch(new Request('http://parley.test/v1/messenger/ping', { method: 'POST', body: JSON.stringify({ app_id: app.id, visitor_id: 'v1234567' }) }));
 * await t.close();
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createParley, type Parley, type ParleyOptions } from '../../server-stub/server.ts';
import type { DatabaseOptions } from '../../server-stub/storage/database.ts';
import { createApp as createAppRecord, type App, type NewApp } from '../../server-stub/storage/apps.ts';
import { userHash } from '../../server-stub/domain/verification.ts';

export const BASE = 'http://parley.test';

export interface TestServer {
  parley: Parley;
  dbPath: string;
  /** How to open the same database again (a restart within a test). */
  databaseOptions: DatabaseOptions;
  /** The app's fetch handler: absolute URLs on any host work. */
  fetch(request: Request): Promise<Response>;
  /** Creates an app (workspace); any origin allowed unless `allowed_origins` says otherwise. */
  createApp(input?: Partial<NewApp>): Promise<App>;
  /** JSON call helper: `call('POST', '/v1/messenger/ping', body, { token })`. */
  call(method: string, path: string, body?: unknown, options?: { token?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  /** Waits until no merge job is runnable. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Which database the server tests run on: the `server-pg` test project sets PARLEY_TEST_DIALECT=postgres. */
export const testDialect = process.env['PARLEY_TEST_DIALECT'] === 'postgres' ? 'postgres' : 'sqlite';
export const testPostgresUrl = process.env['PARLEY_TEST_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function startTestServer(options: ParleyOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-test-'));
  const dbPath = join(dir, 'parley.db');
  // On PostgreSQL each test server gets a schema of its own, dropped on close.
  const schema = testDialect === 'postgres' ? `parley_test_${randomBytes(6).toString('hex')}` : undefined;
  const database = schema ? { postgresUrl: testPostgresUrl, postgresSchema: schema } : { sqlitePath: dbPath };
  const parley = await createParley({ ...database, rateLimits: 'off', log: () => undefined, workerPollMs: 50, ...options });
  const fetch = async (request: Request) => parley.app.fetch(request);
  return {
    parley,
    dbPath,
    databaseOptions: database,
    fetch,
    createApp: (input = {}) => createAppRecord(parley.services.db, parley.services.clock, { name: 'Test app', allowed_origins: ['*'], ...input }),
    async call(method, path, body, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (body !== undefined && !('content-type' in headers)) headers['content-type'] = 'application/json';
      if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
      const res = await fetch(new Request(`${BASE}${path}`, { method, headers, body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body) }));
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = text; // not JSON (CSV, SSE): the raw text is the body
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    drain: () => parley.worker.drain(),
    async close() {
      await parley.close();
      rmSync(dir, { recursive: true, force: true });
      if (schema) await dropSchema(schema);
    },
  };
}

export { userHash };

async function dropSchema(schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: testPostgresUrl });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
