/**
 * PostgreSQL plans from table statistics; a bulk import and a bulk merge refresh the contacts'
 * statistics themselves rather than wait for autovacuum (storage/planner-statistics.ts).
 */
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { importUsers } from '../../../server-stub/services/user-import.ts';
import { bulkMerge } from '../../../server-stub/services/bulk-merge.ts';
import { statisticsRefresher } from '../../../server-stub/storage/planner-statistics.ts';
import { startTestServer, testDialect, type TestServer } from '../../support/server-app.ts';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** How many times contacts has been analyzed by hand in this test's schema. */
async function analyzeCount(server: TestServer): Promise<number> {
  const r = await sql<{ n: string }>`select analyze_count::text as n from pg_stat_user_tables where relname = 'contacts' and schemaname = current_schema()`.execute(server.parley.services.db);
  return Number(r.rows[0]?.n ?? 0);
}

describe('planner statistics', () => {
  it('the refresher runs at the first threshold, then each time the rows written have grown fourfold', async () => {
    const calls: string[] = [];
    // A stand-in kysely that is PostgreSQL and records what it is asked to run.
    const { PostgresAdapter, PostgresQueryCompiler } = await import('kysely');
    const db = {
      getExecutor: () => ({
        adapter: new PostgresAdapter(),
        compileQuery: (node: never) => new PostgresQueryCompiler().compileQuery(node, { queryId: 'q' } as never),
        transformQuery: (node: unknown) => node,
        executeQuery: async (q: { sql: string }) => (calls.push(q.sql), { rows: [] }),
      }),
    };
    const refresh = statisticsRefresher(db as never, 'contacts', 1000);
    for (const rows of [500, 1000, 3000, 3999, 4000, 20_000, 64_000, 64_001]) await refresh(rows);
    // 1,000 (next 4,000), 4,000 (next 16,000), 20,000 (next 64,000), 64,000 (next 256,000).
    expect(calls).toEqual(Array(4).fill('analyze "contacts"'));
  });

  it.skipIf(testDialect !== 'postgres')('a CSV import that grows the contacts refreshes their statistics, and so does a bulk merge', async () => {
    t = await startTestServer();
    const app = await t.createApp();
    const before = await analyzeCount(t);
    const rows = Array.from({ length: 1200 }, (_, i) => `u${i},user${i}@example.com`).join('\n');
    await importUsers(t.parley.services, app, `user_id,email\n${rows}\n`, { batchSize: 500 });
    const afterImport = await analyzeCount(t);
    expect(afterImport).toBe(before + 1);
    await bulkMerge(t.parley.services, app, { dry_run: true });
    expect(await analyzeCount(t)).toBe(afterImport + 1);
  });
});
