/**
 * kysely's SQLite dialect with two changes that matter under load, for the one better-sqlite3
 * connection the whole process shares:
 *
 * - A first-come, first-served lock. kysely's own SqliteDriver wakes every waiter on each release
 *   and lets them race for the connection again, so with 50 requests in flight each query cost ~50
 *   wake-ups. Here a release hands the connection to the next waiter only. The lock is still needed: a transaction holds the connection across
 *   awaits, and a query from another request must not run inside it.
 * - Prepared statements kept and reused: kysely prepares every query anew, and the same SQL text (a
 *   ping's read, a merge batch's statements) runs thousands of times. Bounded, since multi-row
 *   inserts of varying length make many distinct texts.
 */
import type SQLite from 'better-sqlite3';
import {
  CompiledQuery, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler,
  type DatabaseConnection, type DatabaseIntrospector, type Dialect, type DialectAdapter, type Driver, type Kysely, type QueryCompiler, type QueryResult,
} from 'kysely';

const STATEMENT_CACHE_SIZE = 1000;
const MAX_CACHED_PARAMETERS = 1000;

/** Told the SQL text of every statement that is not a read, before it runs. */
export type WriteObserver = (sql: string) => void;

export class FairSqliteDialect implements Dialect {
  readonly #sqlite: SQLite.Database;
  readonly #onWrite: WriteObserver;

  constructor(sqlite: SQLite.Database, onWrite: WriteObserver = () => undefined) {
    this.#sqlite = sqlite;
    this.#onWrite = onWrite;
  }

  createDriver(): Driver {
    return new FairSqliteDriver(this.#sqlite, this.#onWrite);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

/** A lock that hands over to the longest waiter; `acquire` resolves at once when it is free. */
export class FifoLock {
  #held = false;
  readonly #waiters: (() => void)[] = [];

  acquire(): Promise<void> {
    if (!this.#held) {
      this.#held = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#waiters.shift();
    // Still held: ownership passes straight to the next waiter, so nobody can cut in between.
    if (next) next();
    else this.#held = false;
  }

  get waiting(): number {
    return this.#waiters.length;
  }
}

class FairSqliteDriver implements Driver {
  readonly #lock = new FifoLock();
  readonly #connection: FairSqliteConnection;
  readonly #sqlite: SQLite.Database;

  constructor(sqlite: SQLite.Database, onWrite: WriteObserver) {
    this.#sqlite = sqlite;
    this.#connection = new FairSqliteConnection(sqlite, onWrite);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#lock.acquire();
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // IMMEDIATE: the write lock is taken at the start, waiting out another process's writer (the
    // CLI importing into the server's file) within the busy timeout. A plain (deferred) begin reads
    // first and asks for the write lock at its first write; had another process committed in
    // between, SQLite must refuse that upgrade at once (SQLITE_BUSY_SNAPSHOT, "database is
    // locked"), whatever the timeout. In this process the FIFO lock already serialises transactions.
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    // A transaction left open (its rollback failed) must not swallow the next caller's queries.
    if (this.#sqlite.inTransaction) {
      try {
        this.#sqlite.exec('rollback');
      } catch {
        // nothing more can be done here; the next begin will fail loudly rather than nest
      }
    }
    this.#lock.release();
  }

  async destroy(): Promise<void> {
    this.#sqlite.close();
  }
}

/**
 * SQLite's DDL is transactional, but kysely's adapter says otherwise, so its migrator would run a
 * migration step by step: a crash between adding a column and filling it left a database that the
 * next start could not migrate ("duplicate column"). Said so, the migrator runs the pending
 * migrations in one transaction, all or nothing.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class FairSqliteConnection implements DatabaseConnection {
  readonly #sqlite: SQLite.Database;
  readonly #onWrite: WriteObserver;
  readonly #statements = new Map<string, SQLite.Statement>();

  constructor(sqlite: SQLite.Database, onWrite: WriteObserver) {
    this.#sqlite = sqlite;
    this.#onWrite = onWrite;
  }

  #prepare(text: string, parameterCount: number): SQLite.Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = this.#sqlite.prepare(text);
      // Statements with long parameter lists (a batch's IN list, a multi-row insert) differ from
      // batch to batch and each holds a large compiled program: kept, they only cost memory.
      if (parameterCount > MAX_CACHED_PARAMETERS) return statement;
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.delete(this.#statements.keys().next().value!);
      this.#statements.set(text, statement);
    }
    return statement;
  }

  executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const parameters = compiled.parameters as unknown[];
    const statement = this.#prepare(compiled.sql, parameters.length);
    // Before running it: whoever keeps answers derived from the data drops them first. Every
    // statement that may write is told, also one that returns rows (`insert … returning`).
    if (!statement.readonly) this.#onWrite(compiled.sql);
    if (statement.reader) return Promise.resolve({ rows: statement.all(parameters) as R[] });
    const { changes, lastInsertRowid } = statement.run(parameters);
    return Promise.resolve({ numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] });
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not used on SQLite');
  }
}
