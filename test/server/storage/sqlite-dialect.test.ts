import SQLite from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FairSqliteDialect, FifoLock } from '../../../server-stub/storage/sqlite-dialect.ts';

describe('FifoLock', () => {
  it('hands the lock to waiters in the order they asked, one at a time', async () => {
    const lock = new FifoLock();
    const order: number[] = [];
    await lock.acquire();
    const waiters = [1, 2, 3].map((n) => lock.acquire().then(() => {
      order.push(n);
      lock.release();
    }));
    expect(lock.waiting).toBe(3);
    lock.release();
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
    await lock.acquire(); // free again
    lock.release();
  });
});

describe('FairSqliteDialect', () => {
  let sqlite: SQLite.Database;
  let db: Kysely<{ t: { id: number; v: string } }>;
  let writes: string[];
  beforeEach(async () => {
    sqlite = new SQLite(':memory:');
    writes = [];
    db = new Kysely({ dialect: new FairSqliteDialect(sqlite, (text) => writes.push(text)) });
    await sql`create table t (id integer primary key, v text not null)`.execute(db);
    writes.length = 0;
  });
  afterEach(async () => db.destroy());

  it('tells the observer of every statement that may write, also one that returns rows, and of no read', async () => {
    await db.insertInto('t').values({ id: 1, v: 'a' }).execute();
    await db.insertInto('t').values({ id: 2, v: 'b' }).returning('id').execute();
    await db.selectFrom('t').selectAll().execute();
    await db.updateTable('t').set({ v: 'c' }).where('id', '=', 1).execute();
    expect(writes.map((w) => w.split(' ')[0])).toEqual(['insert', 'insert', 'update']);
  });

  it('a failed transaction rolls back and frees the connection for the next caller', async () => {
    await expect(db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ id: 1, v: 'a' }).execute();
      await trx.insertInto('t').values({ id: 1, v: 'duplicate' }).execute();
    })).rejects.toThrow();
    expect(sqlite.inTransaction).toBe(false);
    expect(await db.selectFrom('t').selectAll().execute()).toEqual([]);
  });

  it('queries from other callers wait for an open transaction instead of running inside it', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const trx = db.transaction().execute(async (t) => {
      await t.insertInto('t').values({ id: 1, v: 'uncommitted' }).execute();
      await held;
      throw new Error('roll back');
    });
    await new Promise((r) => setTimeout(r, 10));
    const outside = db.selectFrom('t').selectAll().execute();
    release();
    await expect(trx).rejects.toThrow('roll back');
    expect(await outside).toEqual([]); // it ran after the rollback, never seeing the uncommitted row
  });
});
