/**
 * Opens the database behind one kysely instance: embedded SQLite by default, PostgreSQL when a
 * connection URL is given. Every query in storage/ is written once and runs on both.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import { migrationProvider } from './migrations.ts';
import { FairSqliteDialect } from './sqlite-dialect.ts';
import { startWalCheckpointer } from './wal-checkpointer.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** The PostgreSQL pool, for LISTEN/NOTIFY (absent on SQLite). */
  pool?: import('pg').Pool;
  /** SQLite only (this process is then the database's one server): every write it makes, and other processes' commits. */
  changes?: {
    onWrite(listener: (sql: string) => void): void;
    dataVersion(): number;
  };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** SQLite file path (created with its folder). Ignored when `postgresUrl` is set. */
  sqlitePath?: string;
  postgresUrl?: string;
  /** PostgreSQL schema to use (tests run in a schema of their own). */
  postgresSchema?: string;
}

export const DEFAULT_SQLITE_PATH = 'data/parley.db';

export async function openDatabase(options: DatabaseOptions = {}): Promise<DatabaseHandle> {
  const handle = options.postgresUrl ? await openPostgres(options.postgresUrl, options.postgresSchema) : openSqlite(options.sqlitePath ?? DEFAULT_SQLITE_PATH);
  if (handle.pool) {
    // kysely creates its migration tables without a lock, so instances starting together would
    // race there: one advisory lock (per schema) around the whole migration serialises them.
    const client = await handle.pool.connect();
    try {
      await client.query('select pg_advisory_lock(hashtext($1))', [`parley-migrate:${options.postgresSchema ?? 'public'}`]);
      await migrate(handle.db, options.postgresSchema ?? 'public');
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [`parley-migrate:${options.postgresSchema ?? 'public'}`]);
      client.release();
    }
  } else {
    await migrate(handle.db);
  }
  return handle;
}

function openSqlite(path: string): DatabaseHandle {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SQLite(path);
  sqlite.pragma('journal_mode = WAL');
  // Another process (the CLI during an import) may hold the write lock for a moment: wait, do not fail.
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  // Bulk imports and merges touch many index pages: a 32 MiB page cache (default 2 MiB) keeps them
  // in memory (64 MiB was no faster on the benchmark's 100,000 users and cost the import process
  // most of its margin under 300 MB).
  sqlite.pragma('cache_size = -32768');
  // Checkpoints run on a worker thread (wal-checkpointer.ts). This connection checkpoints only
  // when the WAL reaches 65,536 pages (256 MiB), which the worker normally never lets happen (at a
  // lower threshold the worker fell behind a bulk merge's back-to-back batches often enough that
  // this connection synced to disk inside their commits again); should the worker stop, every
  // 4,000 pages (16 MiB) again. A WAL file that grew is cut back to 64 MiB.
  const file = path !== ':memory:' && path !== '';
  sqlite.pragma(`wal_autocheckpoint = ${file ? 65_536 : 4000}`);
  sqlite.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
  const checkpointer = file ? startWalCheckpointer(path, { onFailure: () => sqlite.open && sqlite.pragma('wal_autocheckpoint = 4000') }) : undefined;

  // Every query and transaction runs on this one connection behind a first-come, first-served lock,
  // so concurrent requests in this process queue up instead of meeting SQLITE_BUSY.
  const listeners: ((sql: string) => void)[] = [];
  const db = new Kysely<Database>({ dialect: new FairSqliteDialect(sqlite, (text) => listeners.forEach((l) => l(text))) });
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  return {
    db,
    dialect: 'sqlite',
    changes: { onWrite: (l) => void listeners.push(l), dataVersion: () => dataVersion.get() as number },
    close: async () => {
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

async function openPostgres(url: string, schema: string | undefined): Promise<DatabaseHandle> {
  const { default: pg } = await import('pg');
  if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error('postgresSchema must be a plain lower-case identifier');
  if (schema) {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${schema}`);
    } finally {
      await admin.end();
    }
  }
  // search_path set at connection start, so every pooled connection is in the schema from its first query.
  const pool = new pg.Pool({ connectionString: url, max: Number(process.env['PARLEY_PG_POOL'] ?? 10), ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return { db, dialect: 'postgres', pool, close: () => db.destroy() };
}

async function migrate(db: Kysely<Database>, schema?: string): Promise<void> {
  // Naming the schema keeps kysely from taking another schema's migration tables for ours.
  const migrator = new Migrator({ db, provider: migrationProvider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error || failed) throw new Error(`database migration failed: ${failed?.migrationName ?? ''} ${String(error)}`);
}
