import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startWalCheckpointer, type WalCheckpointer } from '../../../server-stub/storage/wal-checkpointer.ts';
import { openDatabase } from '../../../server-stub/storage/database.ts';

const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
};

describe('WAL checkpoints on a worker thread', () => {
  let dir: string;
  let path: string;
  let db: SQLite.Database;
  let checkpointer: WalCheckpointer | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-wal-'));
    path = join(dir, 'db.sqlite');
    db = new SQLite(path);
    db.pragma('journal_mode = WAL');
    // This connection never checkpoints by itself: only the worker can move pages into the file.
    db.pragma('wal_autocheckpoint = 0');
    db.exec('create table t (id integer primary key, v text not null)');
  });
  afterEach(async () => {
    await checkpointer?.stop();
    checkpointer = undefined;
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const writeMegabytes = (n: number) => {
    const insert = db.prepare('insert into t (v) values (?)');
    db.transaction(() => {
      for (let i = 0; i < n * 256; i++) insert.run('x'.repeat(4000));
    })();
  };

  it('copies committed pages into the database file while the writer never checkpoints', async () => {
    checkpointer = startWalCheckpointer(path, { intervalMs: 20 });
    const before = statSync(path).size;
    writeMegabytes(2);
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(2_000_000);
    // Only a checkpoint grows the main file: the commit itself went to the WAL.
    expect(await until(() => statSync(path).size > before + 2_000_000)).toBe(true);
    expect(db.prepare('select count(*) as n from t').get()).toEqual({ n: 512 });
  });

  it('without it the pages stay in the WAL (what the test above relies on)', async () => {
    const before = statSync(path).size;
    writeMegabytes(2);
    await new Promise((r) => setTimeout(r, 300));
    expect(statSync(path).size).toBe(before);
  });

  it('stops on request, and a stopped worker checkpoints nothing more', async () => {
    checkpointer = startWalCheckpointer(path, { intervalMs: 20 });
    await checkpointer.stop();
    await checkpointer.stop(); // twice is harmless
    const before = statSync(path).size;
    writeMegabytes(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(statSync(path).size).toBe(before);
  });

  it('tells its owner when it stops by itself (here: it cannot open the file), so the owner checkpoints again', async () => {
    const reasons: string[] = [];
    checkpointer = startWalCheckpointer(join(dir, 'missing.sqlite'), { intervalMs: 20, onFailure: (reason) => reasons.push(reason) });
    expect(await until(() => reasons.length > 0)).toBe(true);
    expect(reasons).toHaveLength(1);
  });

  it('does not call a stop on request a failure', async () => {
    const reasons: string[] = [];
    checkpointer = startWalCheckpointer(path, { intervalMs: 20, onFailure: (reason) => reasons.push(reason) });
    await checkpointer.stop();
    expect(reasons).toEqual([]);
  });

  it('a database opened on a file runs one, and closing the database stops it', async () => {
    const handle = await openDatabase({ sqlitePath: join(dir, 'parley.db') });
    const file = join(dir, 'parley.db');
    const sizeAfterMigrations = statSync(file).size;
    await handle.db.schema.createTable('big').addColumn('v', 'text').execute();
    for (let i = 0; i < 300; i++) await handle.db.insertInto('big' as never).values({ v: 'y'.repeat(4000) } as never).execute();
    expect(await until(() => statSync(file).size > sizeAfterMigrations + 1_000_000)).toBe(true);
    await handle.close();
  });
});
