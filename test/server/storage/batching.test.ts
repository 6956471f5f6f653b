import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { rowsPerInsert } from '../../../server-stub/storage/batching.ts';
import { FairSqliteDialect } from '../../../server-stub/storage/sqlite-dialect.ts';

describe('rowsPerInsert', () => {
  it('keeps a SQLite insert under the 1,000 parameters of the statement cache, and lets PostgreSQL carry many more', async () => {
    const sqlite = new Kysely<any>({ dialect: new FairSqliteDialect(new SQLite(':memory:')) });
    const postgres = new Kysely<any>({ dialect: new PostgresDialect({ pool: {} as never }) }); // never connects: only its adapter is asked
    try {
      for (const columns of [1, 3, 5, 9, 17]) {
        expect(rowsPerInsert(sqlite, columns) * columns).toBeLessThan(1000);
        expect(rowsPerInsert(sqlite, columns) * columns).toBeGreaterThan(1000 - 2 * columns);
        expect(rowsPerInsert(postgres, columns) * columns).toBeLessThanOrEqual(65_535);
        expect(rowsPerInsert(postgres, columns)).toBeGreaterThan(10 * rowsPerInsert(sqlite, columns));
      }
      expect(rowsPerInsert(sqlite, 5000)).toBe(1);
    } finally {
      await sqlite.destroy();
    }
  });
});
