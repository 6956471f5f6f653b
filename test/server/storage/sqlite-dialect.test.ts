import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
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

describe('FairSqliteDialect beside another process writing to the same file', () => {
  // The other process (the CLI importing while the server runs) is played by a worker thread with
  // a connection of its own: SQLite's file locks treat the two exactly as two processes.
  const writer = `
    const { parentPort, workerData } = require('node:worker_threads');
    const SQLite = require(workerData.driver);
    const db = new SQLite(workerData.path);
    db.pragma('busy_timeout = 5000');
    parentPort.on('message', (id) => {
      try { db.prepare('insert into t (id, v) values (?, ?)').run(id, 'other process'); parentPort.postMessage('ok'); }
      catch (error) { parentPort.postMessage(String(error.code)); }
    });`;

  it('a transaction that reads, then writes after the other process committed, still commits (no SQLITE_BUSY_SNAPSHOT)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-dialect-'));
    const path = join(dir, 'shared.db');
    const sqlite = new SQLite(path);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('busy_timeout = 5000');
    const db = new Kysely<{ t: { id: number; v: string } }>({ dialect: new FairSqliteDialect(sqlite) });
    await sql`create table t (id integer primary key, v text not null)`.execute(db);
    const other = new Worker(writer, { eval: true, workerData: { path, driver: createRequire(import.meta.url).resolve('better-sqlite3') } });
    try {
      let otherAnswer!: Promise<string>;
      await db.transaction().execute(async (trx) => {
        await trx.selectFrom('t').selectAll().execute();
        otherAnswer = new Promise((resolve) => other.once('message', resolve));
        other.postMessage(2);
        // Long enough for the other process to commit, had it been let in.
        await new Promise((r) => setTimeout(r, 300));
        await trx.insertInto('t').values({ id: 1, v: 'this process' }).execute();
      });
      // The other process waited for the lock within its busy timeout, then wrote too.
      expect(await otherAnswer).toBe('ok');
      expect((await db.selectFrom('t').select('id').orderBy('id').execute()).map((r) => r.id)).toEqual([1, 2]);
    } finally {
      await other.terminate();
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
